#!/usr/bin/env bash
# Makes a DEVELOPMENT signing key pair for RAUC bundles (a CA, which becomes the image's
# keyring, and a signing certificate it issued). Both names say DEVELOPMENT: an image built
# with these accepts only bundles signed with them, and an image built with a release keyring
# never accepts them. Idempotent: existing keys are kept.
#
#   board/common/dev-keys.sh DIR [LABEL]
#
# Leaves DIR/ca.cert.pem (the keyring), DIR/signing.cert.pem and DIR/signing.key.pem (0600).
set -euo pipefail

DIR="${1:?directory for the keys}"
LABEL="${2:-Homelab DEVELOPMENT}"
mkdir -p "$DIR"
cd "$DIR"
[[ -f ca.cert.pem && -f signing.cert.pem && -f signing.key.pem ]] && exit 0
umask 077
cat > openssl.cnf <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
O = Homelab
CN = $LABEL update CA (not for release)
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[signing]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key.pem \
  -out ca.cert.pem -days 3650 -config openssl.cnf -extensions ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout signing.key.pem \
  -out signing.csr -subj "/O=Homelab/CN=$LABEL bundle signing (not for release)" 2>/dev/null
openssl x509 -req -in signing.csr -CA ca.cert.pem -CAkey ca.key.pem -CAcreateserial \
  -out signing.cert.pem -days 3650 -extfile openssl.cnf -extensions signing 2>/dev/null
rm -f signing.csr ca.cert.srl openssl.cnf
chmod 0644 ca.cert.pem signing.cert.pem
echo "development keys in $DIR (not for release)" >&2
