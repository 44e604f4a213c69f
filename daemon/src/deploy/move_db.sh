#!/bin/sh
# Copies an app's database from its own database container into its new database in Homelab's
# shared one, on the device (the data never leaves it): the dump streams from one container
# into the other, and the app's own login restores it, so what needs more rights than an app
# gets (a PostgreSQL event trigger, a MariaDB trigger or routine run as another user) is
# refused rather than made with the superuser's rights. No password is an argument: the shared
# PostgreSQL trusts the app's login on its local socket; the shared MariaDB gets the app's
# password from the first line on stdin, through the client's environment; the own MariaDB's
# side reads its root password from that container's own environment, inside it.
engine=$1; export DOCKER_HOST="unix://$2"; from=$3; db=$4; user=$5; to=$6; target=$7
status=$(mktemp) || exit 1
trap 'rm -f "$status"' EXIT
case $engine in
  postgres)
    # The archive format, restored by pg_restore: it runs the dump's statements itself, so no
    # text in the app's data can become a psql meta-command (`\!` runs a shell) in the shared
    # container, whatever version made the dump.
    { docker exec -u postgres "$from" pg_dump -Fc -U "$user" --no-owner --no-privileges "$db"; echo $? > "$status"; } \
      | docker exec -i -u postgres "$to" pg_restore --no-owner --no-privileges --exit-on-error --single-transaction -U "$target" -d "$target"
    restored=$? ;;
  mariadb)
    IFS= read -r pw || { echo "no password on stdin" >&2; exit 2; }
    # --sandbox: the client refuses its own commands (`system`, `source`) in the dump.
    # Single quotes on purpose: the variables expand inside the own database container.
    # shellcheck disable=SC2016
    { docker exec "$from" sh -c 'MYSQL_PWD="${MARIADB_ROOT_PASSWORD:-$MYSQL_ROOT_PASSWORD}" exec mariadb-dump -uroot --single-transaction --routines --triggers "$1"' dump "$db"; echo $? > "$status"; } \
      | MYSQL_PWD=$pw docker exec -i -e MYSQL_PWD "$to" mariadb --sandbox --protocol=TCP -h 127.0.0.1 -u "$target" "$target"
    restored=$? ;;
  *) echo "unknown engine $engine" >&2; exit 2 ;;
esac
if [ "$(cat "$status")" != 0 ]; then echo dump-failed; exit 3; fi
if [ "$restored" != 0 ]; then echo restore-failed; exit 4; fi
echo copied
