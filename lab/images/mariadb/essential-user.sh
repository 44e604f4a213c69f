#!/bin/sh
# mmdebstrap hook (lab/lab ensure_db_images), before the packages install: the `mysql` user and
# group with uid and gid 999, as the official image makes them before installing MariaDB
# (mariadb-server's preinst keeps an existing user). Written straight into the files because
# `useradd` (passwd) is not installed yet; passwd's postinst moves them to the shadow files.
# And, as the official image does, a stand-in system table, so that mariadb-server's postinst
# sees a database and makes none at build (the customize hook empties the folder again).
set -eu
root="${1:?usage: essential-user.sh ROOTFS}"
echo 'mysql:x:999:999:MariaDB Server:/var/lib/mysql:/bin/false' >>"$root/etc/passwd"
echo 'mysql:x:999:' >>"$root/etc/group"
mkdir -p "$root/var/lib/mysql/mysql"
touch "$root/var/lib/mysql/mysql/user.frm"
