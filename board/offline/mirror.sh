#!/bin/bash
# Fills an offline Buildroot download directory from what this machine can reach, following
# board/offline/sources: Debian's archive (source tarballs of the same or the nearest release,
# and a few binary packages), PyPI, and git repositories already copied to this machine.
#   mirror.sh <sources> <offline folder>
# Every download is checked against the sha256 written in <sources>; files already in place
# are kept, so a warm mirror costs nothing. Files that are not upstream's bytes ("near") get
# hash files of the mirror's own, which <offline folder>/local.mk gives Buildroot instead.
set -euo pipefail

DEBIAN=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Where git repositories were copied (owner+name/repo, as this workplace's fetch leaves them);
# anything else is cloned from GitHub.
GIT_MIRRORS=${GIT_MIRRORS:-/work/.mirror}

die() { echo "mirror.sh: $*" >&2; exit 1; }

# download <url> <sha256> <into>: fetched once, then only checked.
download() {
  local url=${1:?url} sum=${2:?sha256} into=${3:?file}
  if [ ! -f "$into" ] || ! echo "$sum  $into" | sha256sum -c --status; then
    mkdir -p "$(dirname "$into")"
    curl -fsS --retry 3 -o "$into.part" "$url" || die "could not download $url"
    echo "$sum  $into.part" | sha256sum -c --status || die "$url does not have the sha256 in sources ($sum)"
    mv "$into.part" "$into"
  fi
}

# repack <tarball> <into> [folder]: the same files (or only those in <folder>), in the
# compression Buildroot's name asks for. Buildroot drops the top folder when it extracts, so
# its name does not matter, except for host-tar's cpio, which it unpacks into tar-<version>/.
repack() {
  local from=${1:?from} into=${2:?into} sub=${3:-} tmp top
  mkdir -p "$(dirname "$into")"
  if [ -z "$sub" ] && [[ "$into" != *.cpio.gz ]]; then
    if [ "${from##*.}" = "${into##*.}" ]; then cp "$from" "$into.part"
    else decompress "$from" | make_compressed "$into" > "$into.part"
    fi
  else
    tmp=$(mktemp -d)
    if [ -n "$sub" ]; then
      tar -xf "$from" -C "$tmp" --strip-components=1
      tar -C "$tmp" -c "$sub" | make_compressed "$into" > "$into.part"
    else
      top=$(basename "$into" .cpio.gz) && mkdir "$tmp/$top"
      tar -xf "$from" -C "$tmp/$top" --strip-components=1
      (cd "$tmp" && find "$top" | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -n > "$into.part"
    fi
    rm -rf "$tmp"
  fi
  mv "$into.part" "$into"
}

# unpack_once <deb|tar> <file> <folder>: unpacked into the folder once; a marker names the file.
# Debian binary packages add to the folder (several make one tree); a tarball replaces it.
unpack_once() {
  local how=${1:?} from=${2:?} into=${3:?} mark
  mark="$into/.from-$(basename "$from")"
  [ -e "$mark" ] && return 0
  if [ "$how" = deb ]; then mkdir -p "$into" && dpkg-deb -x "$from" "$into"
  else rm -rf "${into:?}" && mkdir -p "$into" && tar -xf "$from" -C "$into" --strip-components=1
  fi
  touch "$mark"
}

# make_compressed <name>: stdin compressed as the name's ending says.
make_compressed() {
  case "$1" in
    *.gz) gzip -n ;; *.xz) xz -T0 ;; *.bz2) bzip2 ;; *.lz) lzip ;;
    *) die "unknown compression: $1" ;;
  esac
}

decompress() {
  case "$1" in
    *.gz) zcat "$1" ;; *.xz) xzcat "$1" ;; *.bz2) bzcat "$1" ;; *.lz) lzip -dc "$1" ;;
    *) die "unknown compression: $1" ;;
  esac
}

mirror() {
  local sources=${1:?sources} offline=${2:?offline folder}
  local dl=$offline/dl cache=$offline/cache near=()
  : "${BUILDROOT_DIR:?the Buildroot checkout (image.mk passes it)}"
  mkdir -p "$dl" "$cache" "$offline/empty"
  local file kind how a b c
  while read -r file kind how a b c; do
    case "$file" in ''|'#'*) continue ;; esac
    case "$how" in
      deb) # a: path in Debian's pool, b: its sha256, c: the folder in it that is the package
        download "$DEBIAN/$a" "$b" "$cache/$(basename "$a")"
        if [ ! -f "$dl/$file" ]; then repack "$cache/$(basename "$a")" "$dl/$file" "$c"; fi ;;
      debx) # a Debian binary package unpacked into a folder of the offline tree (file)
        download "$DEBIAN/$a" "$b" "$cache/$(basename "$a")"
        unpack_once deb "$cache/$(basename "$a")" "$offline/$file" ;;
      src) # a Debian source tarball unpacked into a folder of the offline tree (file)
        download "$DEBIAN/$a" "$b" "$cache/$(basename "$a")"
        unpack_once tar "$cache/$(basename "$a")" "$offline/$file" ;;
      pypi) # a: name, b: version (the sdist; Buildroot checks its hash as always)
        if [ ! -f "$dl/$file" ]; then
          mkdir -p "$cache/pypi"
          pip download -q --no-deps --no-binary :all: -d "$cache/pypi" "$a==$b" \
            || die "could not download $a $b from PyPI"
          mkdir -p "$(dirname "$dl/$file")" && cp "$cache/pypi/$(basename "$file")" "$dl/$file"
        fi ;;
      git|gitgen) # a: owner/name, b: tag, c: folder in the archive ("-" for none)
        # gitgen: a release made from the tag as upstream makes it (autogen.sh: configure and
        # Makefile.in, which a release tarball has and the tag has not).
        if [ ! -f "$dl/$file" ]; then
          local repo=$GIT_MIRRORS/${a/\//+}/repo prefix=()
          [ -d "$repo" ] || { repo=$cache/git/${a/\//+}; [ -d "$repo" ] || git clone -q --bare "https://github.com/$a" "$repo"; }
          [ "$c" = - ] || prefix=(--prefix="$c/")
          mkdir -p "$(dirname "$dl/$file")"
          if [ "$how" = git ]; then
            git -C "$repo" archive --format=tar "${prefix[@]}" "$b" | gzip -n > "$dl/$file.part"
          else
            local tmp; tmp=$(mktemp -d)
            git -C "$repo" archive --format=tar --prefix="$c/" "$b" | tar -x -C "$tmp"
            (cd "$tmp/$c" && { [ -x autogen.sh ] && ./autogen.sh || autoreconf -fi; } >/dev/null 2>&1) \
              || die "could not make configure for $file (autoconf, automake and libtool installed?)"
            # -h: autotools link their helper scripts in; a release carries copies.
            tar -C "$tmp" -ch "$c" | make_compressed "$dl/$file" > "$dl/$file.part"
            rm -rf "$tmp"
          fi
          mv "$dl/$file.part" "$dl/$file"
        fi ;;
      *) die "unknown kind '$how' for $file" ;;
    esac
    [ "$kind" = near ] && near+=("$file")
  done < "$sources"

  # Rust: the toolchain this machine builds homelabd with, laid out as Buildroot's host-rust-bin
  # installs it (board/offline/rust-install.sh stands in for the upstream tarball's install.sh).
  local sysroot; sysroot=$(rustc --print sysroot)
  mkdir -p "$offline/rust/std/rust-std-$RUST_BIN_VERSION-x86_64-unknown-linux-gnu"
  install -m 0755 "$(dirname "$0")/rust-install.sh" "$offline/rust/install.sh"
  printf '#!/bin/sh\n# The standard library came with the toolchain.\nexit 0\n' \
    > "$offline/rust/std/rust-std-$RUST_BIN_VERSION-x86_64-unknown-linux-gnu/install.sh"
  chmod 0755 "$offline/rust/std/rust-std-$RUST_BIN_VERSION-x86_64-unknown-linux-gnu/install.sh"
  echo "$sysroot" > "$offline/rust/toolchain"

  # Go for host-go-bin: one GOROOT from Debian's compiler and standard library packages.
  # Debian links most of it in from /usr/share (relative links): copied as files (-L).
  if [ -d "$offline/go-deb/usr/lib/go-1.26" ] && [ ! -e "$offline/go/pkg/include" ]; then
    rm -rf "${offline:?}/go" && cp -aL "$offline/go-deb/usr/lib/go-1.26" "$offline/go"
  fi

  # Buildroot checks a download against every hash file it is given, and a file named there
  # must match. So for each package with a file that is not upstream's, its list is replaced
  # by one of the mirror's own, with the sha256 of every file in that folder as placed here.
  rm -rf "$offline/hash" && mkdir -p "$offline/hash"
  local dir var
  for dir in $(printf '%s\n' "${near[@]}" | xargs -n1 dirname | sort -u); do
    (cd "$dl/$dir" && find . -maxdepth 1 -type f ! -name '.*' -printf '%f\n' | LC_ALL=C sort | xargs sha256sum \
       | awk '{print "sha256", $1, $2}') > "$offline/hash/$dir.hash"
  done
  { echo "# Made by board/offline/mirror.sh: what the offline build takes from elsewhere."
    for dir in "$offline"/hash/*.hash; do
      dir=$(basename "$dir" .hash); var=$(echo "$dir" | tr 'a-z-' 'A-Z_')
      # override: Buildroot sets these when it reads the package, after this file.
      for pkg in "$var" "HOST_$var" $([ "$dir" = util-linux ] && echo UTIL_LINUX_LIBS); do
        echo "override ${pkg}_HASH_FILES = \$(HOMELAB_OFFLINE)/hash/$dir.hash"
      done
    done
    # Patches that do not apply to another release: the package is read from a copy of
    # Buildroot's folder for it without them (drop-patches).
    local pkg patch
    rm -rf "${offline:?}/pkgdir" && mkdir -p "$offline/pkgdir"
    while read -r pkg patch _; do
      case "$pkg" in ''|'#'*) continue ;; esac
      [ -d "$offline/pkgdir/$pkg" ] || cp -a "$BUILDROOT_DIR/package/$pkg" "$offline/pkgdir/"
      rm "$offline/pkgdir/$pkg/$patch"
      var=$(echo "$pkg" | tr 'a-z-' 'A-Z_')
      echo "override ${var}_PKGDIR = \$(HOMELAB_OFFLINE)/pkgdir/$pkg/"
      echo "override HOST_${var}_PKGDIR = \$(HOMELAB_OFFLINE)/pkgdir/$pkg/"
    done < "$(dirname "$0")/drop-patches"
    cat "$(dirname "$0")/local.mk.in"
  } > "$offline/local.mk"
}

RUST_BIN_VERSION=${RUST_BIN_VERSION:-1.88.0}
mirror "$@"
