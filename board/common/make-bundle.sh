#!/usr/bin/env bash
# Makes a signed RAUC bundle (verity format) of one root filesystem image.
#
#   board/common/make-bundle.sh ROOTFS_IMAGE COMPATIBLE VERSION CERT KEY OUT.raucb
#
# COMPATIBLE must equal the target image's /etc/rauc/system.conf (a bundle for one board is
# refused by every other). Needs rauc and squashfs-tools.
set -euo pipefail

ROOTFS="${1:?root filesystem image}"
COMPATIBLE="${2:?compatible string}"
VERSION="${3:?version}"
CERT="${4:?signing certificate}"
KEY="${5:?signing key}"
OUT="${6:?output bundle}"

command -v rauc >/dev/null || { echo "make-bundle: install rauc" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/content"
# A hard link when possible: the image can be hundreds of MB.
ln "$ROOTFS" "$WORK/content/rootfs.img" 2>/dev/null || cp "$ROOTFS" "$WORK/content/rootfs.img"
cat > "$WORK/content/manifest.raucm" <<MANIFEST
[update]
compatible=$COMPATIBLE
version=$VERSION
description=Homelab $VERSION
build=$(date -u +%Y%m%dT%H%M%SZ)

[bundle]
format=verity

[image.rootfs]
filename=rootfs.img
# A hash of every 4 KiB block of the image goes into the bundle, so RAUC can take blocks the
# box already has (from either slot) instead of copying or, when streaming, downloading them.
adaptive=block-hash-index
MANIFEST
rm -f "$OUT"
rauc bundle --cert="$CERT" --key="$KEY" "$WORK/content" "$OUT" >&2
echo "bundle $OUT ($(stat -c %s "$OUT") bytes, $COMPATIBLE $VERSION)" >&2
