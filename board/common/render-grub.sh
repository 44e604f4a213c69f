#!/bin/sh
# Renders the shared A/B GRUB script for a board: render-grub.sh META OUT [INITRD]
# META is the board's meta file (KERNEL_IMAGE, CONSOLES, ROOTFS_*_PARTUUID); with INITRD set
# (e.g. initrd.img) each entry loads it from /boot of its slot.
set -eu

render() {
  meta="${1:?meta file}"; out="${2:?output}"; initrd="${3:-}"
  # shellcheck disable=SC1090
  . "$meta"
  : "${KERNEL_IMAGE:?}" "${CONSOLES:?}" "${ROOTFS_A_PARTUUID:?}" "${ROOTFS_B_PARTUUID:?}"
  if [ -n "$initrd" ]; then
    init_a="initrd (hd0,gpt2)/boot/$initrd"; init_b="initrd (hd0,gpt3)/boot/$initrd"
  else
    init_a=""; init_b=""
  fi
  sed -e "s|@KERNEL@|$KERNEL_IMAGE|g" -e "s|@CONSOLE@|$CONSOLES|g" \
      -e "s|@ROOTFS_A_PARTUUID@|$ROOTFS_A_PARTUUID|g" -e "s|@ROOTFS_B_PARTUUID@|$ROOTFS_B_PARTUUID|g" \
      -e "s|@INITRD_A@|$init_a|g" -e "s|@INITRD_B@|$init_b|g" \
      "$(dirname "$0")/grub-ab.cfg.in" > "$out"
}

render "$@"
