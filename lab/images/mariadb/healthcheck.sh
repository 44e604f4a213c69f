#!/bin/bash
# healthcheck.sh of the lab's `mariadb:10.11` (lab/README.md): a small equivalent of the
# official image's script (MariaDB/mariadb-docker, 10.11/healthcheck.sh), written anew. It runs
# the tests named as arguments, in order, and exits 0 when all pass:
#   --connect             the server answers and accepts TCP connections (a refused login
#                         still counts: the server is up);
#   --innodb_initialized  InnoDB has finished starting (crash recovery done);
# Options before a test: --datadir=DIR (default /var/lib/mysql), --defaults-file=F,
# --defaults-extra-file=F, --no-defaults, --su-mysql (run as the mysql user), --no-connect.
# Like the official script it logs in as the `healthcheck` user the entrypoint made, from
# $DATADIR/.my-healthcheck.cnf, when that file exists; and with no test passing a connect
# test it ends with one.
set -Eeuo pipefail

datadir=/var/lib/mysql
defaults=()
explicit_defaults=
connected=

client() { mariadb "${defaults[@]}" --batch --skip-column-names "$@"; }

connect() {
  local answer
  answer="$(client --protocol=socket -e 'SELECT @@skip_networking' 2>/dev/null || true)"
  case "$answer" in
    0) connected=1; return 0 ;;
    1) return 1 ;; # up, but not listening on the network
  esac
  answer="$(client --protocol=tcp --host=localhost -e 'SELECT @@skip_networking' 2>&1 || true)"
  case "$answer" in
    0 | "ERROR 1045 "* | "ERROR 1820 "* | "ERROR 4151 "* | "ERROR 1226 "* | "ERROR "1???" (28000)"*)
      connected=1; return 0 ;;
  esac
  return 1
}

innodb_initialized() {
  [[ "$(client --protocol=socket -e "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'InnoDB' AND support IN ('YES', 'DEFAULT', 'ENABLED')")" == 1 ]]
}

[[ $# -gt 0 ]] || { echo "At least one argument required" >&2; exit 1; }
for arg in "$@"; do
  if [[ "$arg" == --su-mysql ]]; then
    rest=()
    for a in "$@"; do [[ "$a" == --su-mysql ]] || rest+=("$a"); done
    exec setpriv --reuid=mysql --regid=mysql --init-groups -- "${BASH_SOURCE[0]}" "${rest[@]}"
  fi
  if [[ "$arg" == --datadir=* ]]; then datadir="${arg#--datadir=}"; fi
done
if [[ -f "$datadir/.my-healthcheck.cnf" ]]; then
  defaults=("--defaults-extra-file=$datadir/.my-healthcheck.cnf")
fi

for arg in "$@"; do
  case "$arg" in
    --datadir=*) ;;
    --no-defaults) defaults=(--no-defaults); explicit_defaults=1 ;;
    --defaults-file=* | --defaults-extra-file=*)
      [[ -n "$explicit_defaults" ]] || defaults=()
      defaults+=("$arg"); explicit_defaults=1
      ;;
    --no-connect) connected=1 ;;
    --connect) connect || { echo "healthcheck connect failed" >&2; exit 1; } ;;
    --innodb_initialized) innodb_initialized || { echo "healthcheck innodb_initialized failed" >&2; exit 1; } ;;
    *) echo "healthcheck unknown option or test '$arg'" >&2; exit 1 ;;
  esac
done
if [[ -z "$connected" ]]; then connect; fi
