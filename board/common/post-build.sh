#!/bin/sh
# Buildroot post-build script for every board: the keyring update bundles must be signed under
# (image.mk passes it: a release keyring, or the development CA), the image's version in
# os-release, GRUB's tools trimmed to the one the box runs, and other files it never uses.
set -eu

TARGET="${1:?target directory}"
: "${HOMELAB_KEYRING_PEM:?set by image.mk: the CA certificate(s) update bundles are signed under}"
install -D -m 0644 "$HOMELAB_KEYRING_PEM" "$TARGET/etc/rauc/keyring.pem"

# The image's version, which homelabd reports and compares update bundles against (it reads
# VERSION_ID). Lines from an earlier pass are replaced, not added to.
: "${HOMELAB_VERSION:?set by image.mk: the version of this image}"
sed -i '/^VERSION_ID=/d; /^VERSION=/d' "$TARGET/usr/lib/os-release"
printf 'VERSION_ID=%s\nVERSION="%s"\n' "$HOMELAB_VERSION" "$HOMELAB_VERSION" >> "$TARGET/usr/lib/os-release"

# GRUB's package installs its whole tool set (grub-install, grub-mkrescue…, 9 MB with their
# modules, manuals and translations, some under /share) so that the image can build its EFI
# binary. At run time the box needs one of them: grub-editenv, with which RAUC and mark-good
# flip the A/B flags. post-image-efi.sh takes its modules from GRUB's build folder instead.
# Removing what is already gone is fine, so a second pass over the target does the same.
trim_grub() {
  for dir in "$TARGET/usr/bin" "$TARGET/usr/sbin"; do
    for tool in "$dir"/grub-*; do
      [ -e "$tool" ] || continue
      [ "${tool##*/}" = grub-editenv ] || rm -f "$tool"
    done
  done
  rm -rf "$TARGET/usr/lib/grub" "$TARGET/etc/grub.d" "$TARGET/share/grub" \
    "$TARGET/share/info" "$TARGET/share/locale"
  rmdir "$TARGET/share" 2>/dev/null || true
}
trim_grub

# What packages install beside what the box runs:
# - OpenSSH's client side beyond `ssh` (restic reaches SFTP backup destinations through it):
#   scp, sftp, the agent, and ssh-keysign, which is setuid root; moduli is for a server, and
#   the image has none;
# - libraries the external toolchain copies in that no program here links (checked below,
#   so a package that starts needing one fails the build instead of the box);
# - zoneinfo's "right/" variant (leap seconds), which nothing here reads.
trim_unused() {
  rm -f "$TARGET/usr/bin/scp" "$TARGET/usr/bin/sftp" "$TARGET/usr/bin/ssh-add" \
    "$TARGET/usr/bin/ssh-agent" "$TARGET/usr/bin/ssh-copy-id" "$TARGET/usr/libexec/ssh-keysign" \
    "$TARGET/usr/libexec/ssh-pkcs11-helper" "$TARGET/usr/libexec/ssh-sk-helper" "$TARGET/etc/ssh/moduli"
  rm -rf "$TARGET/usr/share/zoneinfo/right"
  for lib in libstdc++.so libmvec.so; do
    needed=$(find "$TARGET" -type f \( -perm -u+x -o -name '*.so*' \) -exec sh -c \
      'for f; do readelf -d "$f" 2>/dev/null | grep -q "NEEDED.*\['"$lib"'" && echo "$f"; done' sh {} + | head -1)
    [ -z "$needed" ] || { echo "post-build.sh: $needed links $lib: keep it" >&2; exit 1; }
    rm -f "$TARGET"/usr/lib/"$lib"* "$TARGET"/lib/"$lib"*
  done
}
trim_unused
