#!/bin/sh
# mmdebstrap hook (lab/lab ensure_db_images), after postgresql-15 is installed: the file system
# laid out as the official postgres:15-bookworm's Dockerfile leaves it (docker-library/postgres,
# 15/bookworm/Dockerfile); ENV, ENTRYPOINT, CMD, VOLUME and the rest are set at `docker import`.
set -eu
root="${1:?usage: customize-image.sh ROOTFS}"
here="$(dirname "$0")"
# Debian's install made a cluster 15/main (postgresql-common's default); the image makes its
# own in $PGDATA at first start instead, and makes none at install (as the official image sets).
chroot "$root" pg_dropcluster 15 main
sed -ri 's/^#?(create_main_cluster) .*$/\1 = false/' "$root/etc/postgresql-common/createcluster.conf"
# A snakeoil key made at build would be the same in every container: none (ssl stays off, as
# initdb leaves it).
rm -f "$root/etc/ssl/private/ssl-cert-snakeoil.key" "$root/etc/ssl/certs/ssl-cert-snakeoil.pem"
# Clusters made here listen on every address, as the official image's sample config says.
sed -ri "s!^#?(listen_addresses)[[:space:]]*=[[:space:]]*[^[:space:]]+.*!\1 = '*'!" \
  "$root/usr/share/postgresql/15/postgresql.conf.sample"
# Manual pages are left out of the image (mmdebstrap's path-exclude); these are PostgreSQL's
# own, kept where its update-alternatives calls need them until now.
rm -rf "$root/usr/share/postgresql/15/man"
grep -q "^listen_addresses = '\*'" "$root/usr/share/postgresql/15/postgresql.conf.sample"
install -d -o 999 -g 999 -m 1777 "$root/var/lib/postgresql" "$root/var/lib/postgresql/data"
install -d -o 999 -g 999 -m 3777 "$root/run/postgresql"
install -d -m 755 "$root/docker-entrypoint-initdb.d"
install -m 755 "$here/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
