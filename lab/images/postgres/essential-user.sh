#!/bin/sh
# mmdebstrap hook (lab/lab ensure_db_images), before the packages install: the `postgres` user
# and group with uid and gid 999, as the official image makes them before installing
# PostgreSQL (postgresql-common's postinst keeps an existing system user). Written straight
# into the files because `useradd` (passwd) is not installed yet; passwd's postinst moves the
# entries to the shadow files.
set -eu
root="${1:?usage: essential-user.sh ROOTFS}"
echo 'postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/bash' >>"$root/etc/passwd"
echo 'postgres:x:999:' >>"$root/etc/group"
