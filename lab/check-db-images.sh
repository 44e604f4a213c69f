#!/usr/bin/env bash
# Proves the lab's postgres:15-bookworm and mariadb:10.11 images (lab/README.md) behave as the
# official images do where Homelab relies on them, inside one lab device (default server-01):
# each starts with a password file, becomes ready, is reached from ANOTHER container on the
# same user-defined network with the real client and the password (a wrong one is refused),
# keeps a table across a restart and across a new container on the same volume (no second
# init), stops in under 2 s while a client is connected, runs the server as PID 1 with uid 999,
# and answers `docker exec` as the official image does: PostgreSQL's `psql -U postgres` without
# a password (local trust); MariaDB's `mariadb -uroot` only with the password (the official
# image gives root@localhost password authentication only, no unix_socket), healthcheck.sh.
#
#   lab/lab up && lab/check-db-images.sh [DEVICE]
#
# Run by hand (it is not part of tests/run-all); it removes what it made, also on failure.
set -euo pipefail

LAB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lab"
DEV="${1:-server-01}"
PG=postgres:15-bookworm
MARIA=mariadb:10.11
NET=dbcheck
# Passwords with a space and quotes, as users pick them.
PG_PASSWORD="pg check 'pw\" 1"
ROOT_PASSWORD="root check 'pw\" 2"
APP_PASSWORD="app check 'pw\" 3"
TMP=""
FAILED=0

d() { "$LAB" exec "$DEV" docker "$@"; }
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; FAILED=1; }
check() { # check DESCRIPTION COMMAND...: ok when the command succeeds
  local what="$1"; shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

cleanup() {
  d rm -f db-pg db-pg-hold db-maria db-maria-hold >/dev/null 2>&1 || true
  d volume rm -f dbcheck-pg dbcheck-maria >/dev/null 2>&1 || true
  d network rm "$NET" >/dev/null 2>&1 || true
  if [[ -n "$TMP" ]]; then rm -rf "$TMP"; fi
}
cleanup # what an interrupted run left
trap cleanup EXIT
TMP="$(mktemp -d /var/tmp/dbcheck.XXXXXX)"

# Root-only password files, as Homelab writes them: the entrypoints read them before dropping
# to uid 999.
(umask 077
  printf '%s\n' "$PG_PASSWORD" >"$TMP/pg.pw"
  printf '%s\n' "$ROOT_PASSWORD" >"$TMP/root.pw"
  printf '%s\n' "$APP_PASSWORD" >"$TMP/app.pw")
d network create "$NET" >/dev/null

# A client container on the network; the password file is mounted and read inside it.
pg_client() { # pg_client PWFILE SQL: psql as postgres on db-pg's database app
  d run --rm --network "$NET" -v "$1:/pw:ro" "$PG" \
    sh -c 'PGPASSWORD="$(cat /pw)" psql -h db-pg -U postgres -d app -v ON_ERROR_STOP=1 -Atc "$1"' sh "$2"
}
maria_client() { # maria_client PWFILE SQL: mariadb as app on db-maria's database app_db
  d run --rm --network "$NET" -v "$1:/pw:ro" "$MARIA" \
    sh -c 'MYSQL_PWD="$(cat /pw)" mariadb -h db-maria -u app app_db -N -e "$1"' sh "$2"
}
# wait_ready CONTAINER CLIENT-FUNCTION PWFILE: polls a real query from another container (the
# setup server listens on its socket only, so this is the server Homelab's apps will see).
wait_ready() {
  local c="$1" client="$2" pw="$3" deadline=$(($(date +%s) + 120))
  until "$client" "$pw" 'select 1' >/dev/null 2>&1; do
    [[ "$(d inspect -f '{{.State.Running}}' "$c")" == true ]] || { d logs "$c" | tail -20; return 1; }
    (($(date +%s) < deadline)) || return 1
    sleep 0.5
  done
}
# stop_ms CONTAINER HOLDER-COMMAND...: how long `docker stop` takes while a client holds a
# session open (in a second container), in ms.
stop_ms() {
  local c="$1" t0; shift
  "$@" >/dev/null
  sleep 1
  t0="$(now_ms)"; d stop "$c" >/dev/null; echo $(($(now_ms) - t0))
}
pid1() { d exec "$1" sh -c 'tr "\0" " " </proc/1/cmdline; grep "^Uid:" /proc/1/status' | tr -s ' \t' ' '; }

echo "== $PG on $DEV"
d run -d --name db-pg --network "$NET" -v dbcheck-pg:/var/lib/postgresql/data \
  -v "$TMP/pg.pw:/run/secrets/pg:ro" -e POSTGRES_PASSWORD_FILE=/run/secrets/pg -e POSTGRES_DB=app \
  "$PG" >/dev/null
t0="$(now_ms)"
if wait_ready db-pg pg_client "$TMP/pg.pw"; then ok "ready for a client after $(($(now_ms) - t0)) ms (first start, with init)"; else bad "ready"; fi
check "psql from another container with the password: create a table" \
  pg_client "$TMP/pg.pw" "create table kept(note text); insert into kept values ('survives')"
printf 'wrong\n' >"$TMP/wrong.pw"
if pg_client "$TMP/wrong.pw" 'select 1' >/dev/null 2>&1; then bad "a wrong password is refused"; else ok "a wrong password is refused"; fi
p="$(pid1 db-pg)"
[[ "$p" == "postgres Uid: 999 999 999 999" ]] && ok "PID 1: $p" || bad "PID 1 is the server as 999: $p"
check "docker exec psql -U postgres without a password (local trust)" d exec db-pg psql -U postgres -c 'select 1'
hba="$(d exec db-pg sh -c 'grep -v "^#" "$PGDATA/pg_hba.conf" | grep . | tail -1')"
[[ "$hba" == "host all all all scram-sha-256" ]] && ok "pg_hba ends with: $hba" || bad "pg_hba ends with: $hba"
ms="$(stop_ms db-pg d run -d --name db-pg-hold --network "$NET" -v "$TMP/pg.pw:/pw:ro" "$PG" \
  sh -c 'PGPASSWORD="$(cat /pw)" psql -h db-pg -U postgres -d app -c "select pg_sleep(600)"')"
((ms < 2000)) && ok "docker stop with a session open: $ms ms" || bad "docker stop with a session open: $ms ms"
d rm -f db-pg-hold >/dev/null
d start db-pg >/dev/null
wait_ready db-pg pg_client "$TMP/pg.pw" || bad "ready after restart"
[[ "$(pg_client "$TMP/pg.pw" 'select note from kept')" == survives ]] && ok "data kept across a restart" || bad "data kept across a restart"
d rm -f db-pg >/dev/null
d run -d --name db-pg --network "$NET" -v dbcheck-pg:/var/lib/postgresql/data \
  -v "$TMP/pg.pw:/run/secrets/pg:ro" -e POSTGRES_PASSWORD_FILE=/run/secrets/pg -e POSTGRES_DB=app \
  "$PG" -c max_connections=50 >/dev/null
wait_ready db-pg pg_client "$TMP/pg.pw" || bad "ready in a new container"
[[ "$(pg_client "$TMP/pg.pw" 'select note from kept')" == survives ]] && ok "data kept in a new container on the same volume" || bad "data kept in a new container"
d logs db-pg 2>&1 | grep -q 'Skipping initialization' && ok "no second init" || bad "no second init"
[[ "$(pg_client "$TMP/pg.pw" 'show max_connections')" == 50 ]] && ok "arguments reach the server (-c max_connections=50)" || bad "arguments reach the server"
if d run --rm "$PG" >/dev/null 2>&1; then bad "a fresh folder without a password refuses to start"; else ok "a fresh folder without a password refuses to start"; fi

echo "== $MARIA on $DEV"
d run -d --name db-maria --network "$NET" -v dbcheck-maria:/var/lib/mysql \
  -v "$TMP/root.pw:/run/secrets/root:ro" -v "$TMP/app.pw:/run/secrets/app:ro" \
  -e MARIADB_ROOT_PASSWORD_FILE=/run/secrets/root -e MARIADB_DATABASE=app_db -e MARIADB_USER=app \
  -e MARIADB_PASSWORD_FILE=/run/secrets/app "$MARIA" --transaction-isolation=READ-COMMITTED >/dev/null
t0="$(now_ms)"
if wait_ready db-maria maria_client "$TMP/app.pw"; then ok "ready for a client after $(($(now_ms) - t0)) ms (first start, with init)"; else bad "ready"; fi
check "mariadb from another container with the password: create a table" \
  maria_client "$TMP/app.pw" "create table kept(note text); insert into kept values ('survives')"
if maria_client "$TMP/wrong.pw" 'select 1' >/dev/null 2>&1; then bad "a wrong password is refused"; else ok "a wrong password is refused"; fi
[[ "$(maria_client "$TMP/app.pw" 'select @@tx_isolation')" == READ-COMMITTED ]] &&
  ok "arguments reach the server (--transaction-isolation)" || bad "arguments reach the server"
p="$(pid1 db-maria)"
[[ "$p" == "mariadbd --transaction-isolation=READ-COMMITTED Uid: 999 999 999 999" ]] && ok "PID 1: $p" || bad "PID 1 is the server as 999: $p"
if d exec db-maria mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
  bad "docker exec mariadb -uroot without a password is refused (as in the official image)"
else
  ok "docker exec mariadb -uroot without a password is refused (as in the official image)"
fi
check "docker exec mariadb -uroot with the password" \
  d exec db-maria sh -c 'MYSQL_PWD="$(cat /run/secrets/root)" mariadb -uroot -e "select 1"'
check "healthcheck.sh --connect --innodb_initialized" d exec db-maria healthcheck.sh --connect --innodb_initialized
ms="$(stop_ms db-maria d run -d --name db-maria-hold --network "$NET" -v "$TMP/app.pw:/pw:ro" "$MARIA" \
  sh -c 'MYSQL_PWD="$(cat /pw)" mariadb -h db-maria -u app app_db -e "select sleep(600)"')"
((ms < 2000)) && ok "docker stop with a session open: $ms ms" || bad "docker stop with a session open: $ms ms"
d rm -f db-maria-hold >/dev/null
d start db-maria >/dev/null
wait_ready db-maria maria_client "$TMP/app.pw" || bad "ready after restart"
[[ "$(maria_client "$TMP/app.pw" 'select note from kept')" == survives ]] && ok "data kept across a restart" || bad "data kept across a restart"
d rm -f db-maria >/dev/null
d run -d --name db-maria --network "$NET" -v dbcheck-maria:/var/lib/mysql "$MARIA" >/dev/null
wait_ready db-maria maria_client "$TMP/app.pw" || bad "ready in a new container"
[[ "$(maria_client "$TMP/app.pw" 'select note from kept')" == survives ]] && ok "data kept in a new container on the same volume (no password given: none needed)" || bad "data kept in a new container"
d logs db-maria 2>&1 | grep -q 'Initializing database' && bad "no second init" || ok "no second init"
if d run --rm "$MARIA" >/dev/null 2>&1; then bad "a fresh folder without a root password refuses to start"; else ok "a fresh folder without a root password refuses to start"; fi

if ((FAILED)); then echo "check-db-images: FAILED"; exit 1; fi
echo "check-db-images: all passed"
