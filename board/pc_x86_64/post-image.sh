#!/bin/sh
# Buildroot post-image for pc_x86_64: EFI partition and GPT image (see common/post-image-efi.sh).
set -eu
exec "$(dirname "$0")/../common/post-image-efi.sh" "$(dirname "$0")" x86_64-efi BOOTX64.EFI
