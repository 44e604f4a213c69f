#!/bin/sh
# Buildroot post-build script for every board: the keyring update bundles must be signed under
# goes into the image (image.mk passes it: a release keyring, or the development CA).
set -eu

TARGET="${1:?target directory}"
: "${HOMELAB_KEYRING_PEM:?set by image.mk: the CA certificate(s) update bundles are signed under}"
install -D -m 0644 "$HOMELAB_KEYRING_PEM" "$TARGET/etc/rauc/keyring.pem"
