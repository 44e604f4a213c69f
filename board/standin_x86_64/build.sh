#!/usr/bin/env bash
# Builds the CI stand-in image: the pc_x86_64 board's partition layout, GRUB A/B logic and
# the shared overlay/, with a Debian (bookworm) root filesystem instead of Buildroot's, and
# the release homelabd. Needs root and: mmdebstrap genimage grub-efi-amd64-bin
# squashfs-tools dosfstools mtools e2fsprogs xz-utils.
#
#   board/standin_x86_64/build.sh OUT_DIR HOMELABD_BINARY VERSION KEYRING
#
# KEYRING is the CA certificate(s) update bundles must be signed under (RAUC's keyring).
# Leaves OUT_DIR/homelab.img (raw, for qemu), homelab-standin-VERSION.img.xz and its .sha256,
# and rootfs.squashfs (what an update bundle of this version carries).
set -euo pipefail

OUT="${1:?output directory}"
BIN="${2:?homelabd binary}"
VERSION="${3:?version}"
KEYRING="${4:?keyring for update bundles}"
# Bundles for the stand-in are refused by every production board, and theirs by it.
COMPATIBLE=homelab-standin-x86_64
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT_DIR="$(cd "$HERE/../.." && pwd)"
BOARD="$ROOT_DIR/board/pc_x86_64"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# Packages of the stand-in root filesystem: systemd, the kernel, and what the overlay's units
# call (nft, sfdisk/partx/setpriv, e2fsck/resize2fs, grub-editenv), RAUC for updates, and
# restic with OpenSSH's client for the box's own backup.
# No SSH server, no compilers.
PACKAGES=systemd,systemd-sysv,systemd-resolved,systemd-timesyncd,udev,dbus,linux-image-amd64,initramfs-tools,nftables,util-linux,fdisk,e2fsprogs,grub-common,iproute2,ca-certificates,kmod,rauc,rauc-service,restic,openssh-client

# What the initramfs needs to find and mount a squashfs root on common disks (a short list
# keeps it small: GRUB reads it out of the squashfs at every boot).
export INITRD_MODULES="squashfs virtio_blk virtio_pci virtio_scsi ahci sd_mod nvme usb_storage uas xhci_pci ehci_pci mmc_block sdhci_pci sdhci_acpi vfat nls_cp437 nls_iso8859_1"

log() { printf 'standin: %s\n' "$*" >&2; }

# The Debian base depends only on this script, so it is cached (as a tarball) by this
# script's checksum; the overlay and the daemon are applied on top at every build.
make_rootfs() {
  local root="${1:?}" cache key
  cache="${STANDIN_CACHE:-/var/cache/homelab-standin}"
  key="$(sha256sum "$0" | cut -c1-16)"
  if [[ -f "$cache/base-$key.tar" ]]; then
    log "using the cached Debian base ($cache/base-$key.tar)"
    tar -C "$root" -xf "$cache/base-$key.tar"
    return 0
  fi
  log "building the Debian root filesystem (mmdebstrap)"
  mkdir -p "$cache"
  mmdebstrap --mode=root --variant=minbase --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"' \
    --essential-hook='printf "%s\n" $INITRD_MODULES >> "$1/etc/initramfs-tools/modules"' \
    --essential-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/homelab"' \
    bookworm "$root" "$MIRROR" >&2
  tar -C "$root" -cf "$cache/base-$key.tar.tmp" .
  mv "$cache/base-$key.tar.tmp" "$cache/base-$key.tar"
  # Older bases are of no further use.
  find "$cache" -name 'base-*.tar' ! -name "base-$key.tar" -delete
}

customize_rootfs() {
  local root="${1:?}"
  log "applying overlay/ and homelabd $VERSION"
  cp -a "$ROOT_DIR/overlay/." "$root/"
  install -m 0755 "$BIN" "$root/usr/bin/homelabd"
  printf 'VERSION_ID=%s\nVERSION="%s (stand-in)"\n' "$VERSION" "$VERSION" >> "$root/usr/lib/os-release"
  # RAUC: the pc_x86_64 slots (same layout), the stand-in's own compatible, the keyring.
  mkdir -p "$root/etc/rauc"
  sed "s/^compatible=.*/compatible=$COMPATIBLE/" "$BOARD/overlay/etc/rauc/system.conf" > "$root/etc/rauc/system.conf"
  install -m 0644 "$KEYRING" "$root/etc/rauc/keyring.pem"
  rm -f "$root/etc/os-release"; ln -s ../usr/lib/os-release "$root/etc/os-release"
  # Users must exist at build time: the root filesystem is read-only at run time.
  chroot "$root" systemd-sysusers
  # The read-only root: an empty machine-id makes systemd use a transient one.
  : > "$root/etc/machine-id"
  ln -sf /run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
  # Only the consoles the banner and tests use.
  chroot "$root" systemctl enable serial-getty@ttyS0.service >/dev/null 2>&1 || true
  # Kernel modules a small appliance never loads (graphics, sound, wireless, media…).
  local kdir
  for kdir in "$root"/lib/modules/*/kernel; do
    rm -rf "$kdir"/drivers/{gpu,media,net/wireless,infiniband,staging,isdn,bluetooth,iio,hwmon,mfd,input/touchscreen} \
      "$kdir"/sound "$kdir"/net/{bluetooth,wireless,mac80211}
  done
  chroot "$root" sh -c 'depmod -a "$(ls /lib/modules)" && update-initramfs -u -k all' >&2
  # Fixed names for GRUB.
  cp "$(ls "$root"/boot/vmlinuz-* | head -1)" "$root/boot/vmlinuz"
  cp "$(ls "$root"/boot/initrd.img-* | head -1)" "$root/boot/initrd.img"
  rm -f "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* "$root"/boot/System.map-* "$root"/boot/config-*
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
}

make_esp() {
  local esp="${1:?}"
  log "building the EFI system partition (GRUB with the A/B script built in)"
  mkdir -p "$esp/EFI/BOOT"
  # The pc_x86_64 script, with Debian's kernel name and its initramfs.
  sed 's/^KERNEL_IMAGE=.*/KERNEL_IMAGE=vmlinuz/' "$BOARD/meta" > "$WORK/meta"
  "$ROOT_DIR/board/common/render-grub.sh" "$WORK/meta" "$WORK/grub.cfg" initrd.img
  grub-mkstandalone -O x86_64-efi -o "$esp/EFI/BOOT/BOOTX64.EFI" \
    --modules="part_gpt fat squash4 normal linux loadenv test echo search configfile" \
    --locales="" --themes="" --fonts="" \
    "boot/grub/grub.cfg=$WORK/grub.cfg"
  grub-editenv "$esp/EFI/BOOT/grubenv" create
  grub-editenv "$esp/EFI/BOOT/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
}

main() {
  mkdir -p "$OUT"
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  local work="$WORK"
  mkdir -p "$work/root" "$work/input/EFI" "$work/tmp"
  make_rootfs "$work/root"
  customize_rootfs "$work/root"
  log "squashing the root filesystem"
  mksquashfs "$work/root" "$work/input/rootfs.squashfs" -comp xz -noappend -quiet -no-progress >&2
  cp "$work/input/rootfs.squashfs" "$OUT/rootfs.squashfs"
  make_esp "$work/input"
  log "assembling the disk image (genimage, the pc_x86_64 layout)"
  # The data partition starts empty: genimage fills ext4 images from --rootpath.
  mkdir -p "$work/empty"
  genimage --config "$BOARD/genimage.cfg" --rootpath "$work/empty" --inputpath "$work/input" \
    --outputpath "$work/out" --tmppath "$work/tmp" >&2
  mv "$work/out/homelab.img" "$OUT/homelab.img"
  log "compressing"
  xz -T0 -6 -c "$OUT/homelab.img" > "$OUT/homelab-standin-$VERSION.img.xz"
  (cd "$OUT" && sha256sum "homelab-standin-$VERSION.img.xz" > "homelab-standin-$VERSION.img.xz.sha256")
  ls -l "$OUT" >&2
}

main "$@"
