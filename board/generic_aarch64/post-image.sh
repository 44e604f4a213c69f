#!/bin/sh
# Buildroot post-image for generic_aarch64: EFI partition and GPT image (common/post-image-efi.sh).
set -eu
exec "$(dirname "$0")/../common/post-image-efi.sh" "$(dirname "$0")" arm64-efi BOOTAA64.EFI
