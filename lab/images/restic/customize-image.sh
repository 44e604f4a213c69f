#!/bin/sh
# mmdebstrap hook (lab/lab ensure_db_images), after restic, openssh-client and ca-certificates
# are installed: checks that the root file system offers what Homelab uses of the official
# restic/restic:0.14.0 image (restic 0.14.0 as /usr/bin/restic, `ssh` for the sftp backend,
# /bin/sh, the CA bundle for HTTPS endpoints). The official image is Alpine with restic's
# release binary; ENTRYPOINT ["/usr/bin/restic"] is set at `docker import`, and it runs as root.
set -eu
root="${1:?usage: customize-image.sh ROOTFS}"
version="$(chroot "$root" /usr/bin/restic version)"
case "$version" in
  "restic 0.14.0 "*) ;;
  *) echo "customize-image.sh: expected restic 0.14.0, got: $version" >&2; exit 1 ;;
esac
for f in /usr/bin/ssh /bin/sh /etc/ssl/certs/ca-certificates.crt; do
  [ -e "$root$f" ] || { echo "customize-image.sh: $f is missing" >&2; exit 1; }
done
