#!/bin/sh
# Buildroot post-image for the UEFI boards: the EFI partition (GRUB with the shared A/B script
# built in, and its environment), then the GPT disk image from the board's genimage.cfg.
# Usage (from a board's post-image.sh): post-image-efi.sh BOARD_DIR GRUB_TARGET EFI_NAME
set -eu

main() {
  board="$(cd "${1:?board directory}" && pwd)"
  : "${BINARIES_DIR:?}" "${HOST_DIR:?}" "${BUILD_DIR:?}" "${TARGET_DIR:?}"
  make_esp "$board" "$BINARIES_DIR/EFI" "${2:?grub target}" "${3:?EFI file name}"
  run_genimage "$board"
}

make_esp() {
  board="${1:?}"; esp="${2:?}"; target="${3:?}"; name="${4:?}"
  rm -rf "$esp"; mkdir -p "$esp/BOOT"
  "$board/../common/render-grub.sh" "$board/meta" "$BINARIES_DIR/grub-ab.cfg"
  # The modules GRUB's package built for this target (post-build.sh keeps them out of the
  # root filesystem); the same folder Buildroot's own grub-mkimage step uses.
  modules="$(echo "$BUILD_DIR"/grub2-*/build-"$target"/grub-core)"
  [ -f "$modules/linux.mod" ] || { echo "post-image: no GRUB modules in $modules" >&2; exit 1; }
  "$HOST_DIR/bin/grub-mkstandalone" -O "$target" -o "$esp/BOOT/$name" \
    --directory="$modules" \
    --modules="part_gpt fat squash4 normal linux loadenv test echo search configfile" \
    --locales="" --themes="" --fonts="" "boot/grub/grub.cfg=$BINARIES_DIR/grub-ab.cfg"
  "$HOST_DIR/bin/grub-editenv" "$esp/BOOT/grubenv" create
  "$HOST_DIR/bin/grub-editenv" "$esp/BOOT/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
}

run_genimage() {
  board="${1:?}"
  tmp="$BUILD_DIR/genimage.tmp" root="$BUILD_DIR/genimage.root"
  # genimage wants its temporary folder empty, so the (empty) root folder lives beside it.
  rm -rf "$tmp" "$root"; mkdir -p "$tmp" "$root"
  "$HOST_DIR/bin/genimage" --config "$board/genimage.cfg" --rootpath "$root" \
    --inputpath "$BINARIES_DIR" --outputpath "$BINARIES_DIR" --tmppath "$tmp"
}

main "$@"
