#!/bin/sh
# Copies an app's database from its own database container into its new database in Homelab's
# shared one, on the device (the data never leaves it): the dump streams from one container
# into the other. No password is an argument: the shared instance's side connects as the app's
# login over its trusted local socket (PostgreSQL) or with the superuser's settings file
# (MariaDB); the own MariaDB's side reads its root password from that container's own
# environment, inside it.
# $1 postgres|mariadb, $2 the Docker socket, $3 the own database container, $4 its database,
# $5 its user, $6 the shared container, $7 the app's database (and login) in it.
# Prints copied, or dump-failed / restore-failed (with the tools' words on stderr).
engine=$1; export DOCKER_HOST="unix://$2"; from=$3; db=$4; user=$5; to=$6; target=$7
status=$(mktemp) || exit 1
trap 'rm -f "$status"' EXIT
case $engine in
  postgres)
    { docker exec -u postgres "$from" pg_dump -U "$user" --no-owner --no-privileges "$db"; echo $? > "$status"; } \
      | docker exec -i -u postgres "$to" psql -X -q -v ON_ERROR_STOP=1 -U "$target" -d "$target" >/dev/null
    restored=$? ;;
  mariadb)
    # Single quotes on purpose: the variables expand inside the own database container.
    # shellcheck disable=SC2016
    { docker exec "$from" sh -c 'MYSQL_PWD="${MARIADB_ROOT_PASSWORD:-$MYSQL_ROOT_PASSWORD}" exec mariadb-dump -uroot --single-transaction --routines --triggers "$1"' dump "$db"; echo $? > "$status"; } \
      | docker exec -i "$to" mariadb --defaults-extra-file=/run/homelab/client.cnf "$target"
    restored=$? ;;
  *) echo "unknown engine $engine" >&2; exit 2 ;;
esac
if [ "$(cat "$status")" != 0 ]; then echo dump-failed; exit 3; fi
if [ "$restored" != 0 ]; then echo restore-failed; exit 4; fi
echo copied
