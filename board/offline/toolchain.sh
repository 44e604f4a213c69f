#!/bin/bash
# Assembles an external toolchain for an offline Buildroot build from Debian's own packages:
# the compilers this machine runs (Debian 12's gcc-12 and binutils) and a sysroot unpacked
# from the matching Debian packages. Buildroot then builds no compiler and no C library
# (hours on two cores); the image carries Debian 12's glibc 2.36 and libstdc++.
#   toolchain.sh <arch: x86_64> <folder>
set -euo pipefail

make_toolchain() {
  local arch=${1:?arch} into=${2:?folder}
  local triple sysroot debs
  case "$arch" in
    x86_64) triple=x86_64-linux-gnu ;;
    *) echo "toolchain.sh: no offline toolchain for '$arch' yet (x86_64 only)" >&2; exit 1 ;;
  esac
  [ -x "/usr/bin/$triple-gcc-12" ] || { echo "toolchain.sh: install gcc-12 and g++-12 first" >&2; exit 1; }
  rm -rf "$into.tmp" && mkdir -p "$into.tmp/bin" "$into.tmp/debs"
  sysroot=$into.tmp/$triple/sysroot
  mkdir -p "$sysroot"
  debs=$into.tmp/debs
  # The same versions as the compiler: gcc's own files (crtbegin.o, libgcc.a) come from this
  # machine's /usr/lib/gcc, so the sysroot's libgcc and libstdc++ must be the same release.
  (cd "$debs" && apt-get download libc6 libc6-dev linux-libc-dev libgcc-s1 libstdc++6 \
     libstdc++-12-dev libgcc-12-dev >/dev/null)
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
  rm -rf "$debs" "$sysroot/usr/share/doc" "$sysroot/usr/share/man" "$sysroot/usr/share/locale"

  # The compilers: Debian's, always told to use this sysroot. Buildroot's own wrapper calls
  # these with --sysroot=<staging> after ours, and gcc keeps the last one given.
  for tool in gcc g++ cpp; do
    printf '#!/bin/sh\nexec /usr/bin/%s-%s-12 --sysroot="$(dirname "$(readlink -f "$0")")/../%s/sysroot" "$@"\n' \
      "$triple" "$tool" "$triple" > "$into.tmp/bin/$triple-$tool"
    chmod 0755 "$into.tmp/bin/$triple-$tool"
  done
  for tool in gcc-ar gcc-nm gcc-ranlib; do ln -s "/usr/bin/$triple-$tool-12" "$into.tmp/bin/$triple-$tool"; done
  for tool in addr2line ar as c++filt elfedit gprof ld ld.bfd nm objcopy objdump ranlib readelf size strings strip; do
    ln -s "/usr/bin/$triple-$tool" "$into.tmp/bin/$triple-$tool"
  done
  rm -rf "$into" && mv "$into.tmp" "$into"
}

make_toolchain "$@"
