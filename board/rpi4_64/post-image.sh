#!/bin/sh
# Buildroot post-image for rpi4_64: the GPT image from genimage.cfg (boot.scr is built by
# host-uboot-tools from boot.cmd, see the defconfig).
set -eu

main() {
  board="$(cd "$(dirname "$0")" && pwd)"
  : "${BINARIES_DIR:?}" "${HOST_DIR:?}" "${BUILD_DIR:?}"
  tmp="$BUILD_DIR/genimage.tmp" root="$BUILD_DIR/genimage.root"
  # genimage wants its temporary folder empty, so the (empty) root folder lives beside it.
  rm -rf "$tmp" "$root"; mkdir -p "$tmp" "$root"
  "$HOST_DIR/bin/genimage" --config "$board/genimage.cfg" --rootpath "$root" \
    --inputpath "$BINARIES_DIR" --outputpath "$BINARIES_DIR" --tmppath "$tmp"
}

main "$@"
