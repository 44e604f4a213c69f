#!/bin/sh
# mmdebstrap hook (lab/lab ensure_db_images), after mariadb-server is installed: the file system
# and configuration as the official mariadb:10.11's Dockerfile leaves them (MariaDB/
# mariadb-docker, 10.11/Dockerfile); ENV, ENTRYPOINT, CMD, VOLUME and the rest are set at
# `docker import`.
set -eu
root="${1:?usage: customize-image.sh ROOTFS}"
here="$(dirname "$0")"
# An empty data folder (the entrypoint makes the database at first start) and a socket folder
# any uid may use.
rm -rf "$root/var/lib/mysql" "$root/etc/mysql/mariadb.conf.d/50-mysqld_safe.cnf"
install -d -o 999 -g 999 -m 755 "$root/var/lib/mysql"
install -d -o 999 -g 999 -m 1777 "$root/run/mysqld"
# Listen on every address and log to stderr: Debian's bind-address, log* and user lines are
# commented out, as in the official image.
# (Inside the chroot: the alternatives links there are absolute.)
chroot "$root" find /etc/mysql -type f -name '*.cnf' \
  -exec sed -Ei 's/^(bind-address|log|user[[:space:]])/#&/' '{}' +
# No reverse lookups of clients' addresses (they are other containers).
printf '[mariadb]\nhost-cache-size=0\nskip-name-resolve\n' >"$root/etc/mysql/mariadb.conf.d/05-skipcache.cnf"
# Read /etc/mysql/conf.d (where users mount their settings) after mariadb.conf.d, so theirs win.
sed -i -e '/includedir/ {N;s/\(.*\)\n\(.*\)/\n\2\n\1/}' "$root/etc/mysql/mariadb.cnf"
grep -A1 'mariadb.conf.d' "$root/etc/mysql/mariadb.cnf" | grep -q 'conf.d/$'
install -d -m 755 "$root/docker-entrypoint-initdb.d"
install -m 755 "$here/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
install -m 755 "$here/healthcheck.sh" "$root/usr/local/bin/healthcheck.sh"
