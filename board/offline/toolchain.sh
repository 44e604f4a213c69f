#!/bin/bash
# Assembles an external toolchain for an offline Buildroot build from Debian's own packages:
# Debian 12's gcc-12 unpacked into the toolchain folder (with this machine's binutils), and a
# sysroot unpacked from the matching Debian packages. Buildroot then builds no compiler and
# no C library (hours on two cores); the image carries Debian 12's glibc 2.36 and libstdc++.
#   toolchain.sh <arch: x86_64> <folder>
set -euo pipefail

make_toolchain() {
  local arch=${1:?arch} into=${2:?folder}
  local triple sysroot debs
  case "$arch" in
    x86_64) triple=x86_64-linux-gnu ;;
    *) echo "toolchain.sh: no offline toolchain for '$arch' yet (x86_64 only)" >&2; exit 1 ;;
  esac
  [ -x "/usr/bin/$triple-ld" ] || { echo "toolchain.sh: install binutils first" >&2; exit 1; }
  rm -rf "$into.tmp" && mkdir -p "$into.tmp/bin" "$into.tmp/debs" "$into.tmp/gcc-debs"
  sysroot=$into.tmp/$triple/sysroot
  mkdir -p "$sysroot"
  debs=$into.tmp/debs
  # The same release as the compiler below (both from this machine's Debian archive): the
  # sysroot's libgcc_s and libstdc++ go into the image beside code gcc-12 compiled.
  (cd "$debs" && apt-get download libc6 libc6-dev linux-libc-dev libgcc-s1 libstdc++6 libgomp1 libatomic1 libcrypt1 \
     libstdc++-12-dev libgcc-12-dev >/dev/null)
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
  # No /etc: Buildroot copies ld*.so.* out of the sysroot, and /etc/ld.so.conf.d matches.
  rm -rf "${sysroot:?}/etc"
  # Debian's packages link some files by absolute path (/lib/...); inside a sysroot those
  # must point into the sysroot, not at this machine's own files.
  local link
  while IFS= read -r link; do
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$sysroot$(readlink "$link")")" "$link"
  done < <(find "$sysroot" -type l -lname '/*')
  # Debian's linker scripts (libc.so, libm.so) name their libraries by multiarch path, which
  # Buildroot's staging folder (it flattens lib/<triple>/ into lib/) does not have: by name,
  # the linker finds them on its search path instead.
  local script
  while IFS= read -r script; do
    if head -c 200 "$script" | grep -q "GNU ld script"; then
      sed -i -E "s#(/usr)?/lib(64)?/($triple/)?##g" "$script"
    fi
  done < <(find "$sysroot/usr/lib" -name '*.so' -type f -size -2k)
  # The compiler unpacked, not the one in /usr: gcc looks for libraries next to itself first,
  # and from /usr it would find this machine's libc instead of the sysroot's.
  (cd "$into.tmp/gcc-debs" && apt-get download gcc-12 cpp-12 g++-12 libgcc-12-dev libstdc++-12-dev >/dev/null)
  for deb in "$into.tmp/gcc-debs"/*.deb; do dpkg-deb -x "$deb" "$into.tmp"; done
  rm -rf "$debs" "$into.tmp/gcc-debs" "$into.tmp/usr/share" "$sysroot/usr/share/doc" "$sysroot/usr/share/man" "$sysroot/usr/share/locale"

  # The compilers: Debian's, always told to use this sysroot. Buildroot's own wrapper calls
  # these with --sysroot=<staging> after ours, and gcc keeps the last one given.
  for tool in gcc g++ cpp; do
    printf '#!/bin/sh\nhere=$(dirname "$(readlink -f "$0")")\nexec "$here/../usr/bin/%s-%s-12" --sysroot="$here/../%s/sysroot" "$@"\n' \
      "$triple" "$tool" "$triple" > "$into.tmp/bin/$triple-$tool"
    chmod 0755 "$into.tmp/bin/$triple-$tool"
  done
  for tool in gcc-ar gcc-nm gcc-ranlib; do ln -s "../usr/bin/$triple-$tool-12" "$into.tmp/bin/$triple-$tool"; done
  for tool in addr2line ar as c++filt elfedit gprof ld ld.bfd nm objcopy objdump ranlib readelf size strings strip; do
    ln -s "/usr/bin/$triple-$tool" "$into.tmp/bin/$triple-$tool"
  done
  rm -rf "$into" && mv "$into.tmp" "$into"
}

make_toolchain "$@"
