#!/usr/bin/env bash
# Measures the memory of the lab's postgres:15-bookworm and mariadb:10.11 (lab/README.md) in
# one lab device (default nas-01; the tests use server-01, server-02 and pi-4), for
# lab/db-baseline.md, three app databases shared in one server against one server each:
#   pg-1        one PostgreSQL, default settings, one app database (an app's own container:
#               the dashboard's baseline, pool::separate_baseline_mib);
#   maria-1     one MariaDB, default settings, one app database and user (the same);
#   pg-3in1     one PostgreSQL holding three app databases, each owned by its own role, started
#               as the product starts its shared instance on this device (below);
#   pg-3x1      three PostgreSQL containers, default settings, one app database each;
#   maria-3in1  one MariaDB holding three app databases, each with its own user, started as
#               the product starts its shared instance on this device (below);
#   maria-3x1   three MariaDB containers, default settings, one app database each.
# The shared ("3in1") servers get the arguments of pool::server_args (daemon/src/pool/mod.rs)
# for the device's RAM as the product reads it (MemTotal of the device's /proc/meminfo, in
# MiB, at least 512): PostgreSQL `-c shared_buffers=` RAM/32 (16..256) MB,
# `-c effective_cache_size=` RAM/8 (64..2048) MB, `-c max_connections=100`,
# `-c log_min_error_statement=panic`; MariaDB `--innodb-buffer-pool-size=` RAM/16 (32..512) M,
# `--max-connections=100 --transaction-isolation=READ-COMMITTED --binlog-format=ROW
# --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci --skip-name-resolve`
# (on a 4096 MB device: 128MB, 512MB and 256M). Keep these in step with server_args. The
# separate ones run as an app's own database container does: the image's defaults.
# Each is measured "idle" (IDLE seconds after every server is ready and its databases exist)
# and "load" (right after the load ends). The load, per app database, from a client container
# on the same network (so the client's memory is not counted): PostgreSQL `pgbench -i -s 5`
# then `pgbench -c 4 -T LOAD`; MariaDB the same shape with the mariadb client (500,000 rows
# made with INSERT ... SELECT, then 4 sessions for LOAD seconds, each a loop of transactions:
# UPDATE a random row, SELECT it, INSERT a history row, COMMIT). Databases in one container
# are loaded at the same time, as are the separate containers.
# A sample is, summed over the scenario's containers: what `docker stats --no-stream` shows
# (on cgroup v1: usage minus inactive file pages), and the cgroup's own counters (v1:
# memory.usage_in_bytes, memory.stat total_rss, total_cache and total_shmem; v2: memory.current
# and memory.stat anon, file and shmem), in MiB. PostgreSQL's shared buffers are shmem, counted
# in "file" by the kernel but not reclaimable as the data files' page cache is.
#
#   lab/lab up && lab/measure-db-memory.sh [DEVICE] [SCENARIO...]     (RUNS=2 IDLE=60 LOAD=20)
set -euo pipefail

LAB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lab"
DEV="${1:-nas-01}"; shift || true
SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=(pg-1 maria-1 pg-3in1 pg-3x1 maria-3in1 maria-3x1)
RUNS="${RUNS:-2}"
IDLE="${IDLE:-60}"
LOAD="${LOAD:-20}"
PG=postgres:15-bookworm
MARIA=mariadb:10.11
NET=dbmeasure
PW=measure-pw # a throwaway password for throwaway containers

d() { "$LAB" exec "$DEV" docker "$@"; }

# The shared instance's arguments on this device, as pool::server_args makes them.
# shellcheck disable=SC2016 # awk's own fields
RAM_MB="$("$LAB" exec "$DEV" awk '$1 == "MemTotal:" {print int($2 / 1024)}' /proc/meminfo)"
[[ "$RAM_MB" =~ ^[0-9]+$ ]] || { echo "cannot read $DEV's RAM" >&2; exit 1; }
clamp() { local v="$1"; ((v < $2)) && v="$2"; ((v > $3)) && v="$3"; echo "$v"; }
ram=$((RAM_MB < 512 ? 512 : RAM_MB))
PG_SHARED=(postgres -c "shared_buffers=$(clamp $((ram / 32)) 16 256)MB"
  -c "effective_cache_size=$(clamp $((ram / 8)) 64 2048)MB" -c max_connections=100
  -c log_min_error_statement=panic)
MARIA_SHARED=(mariadbd "--innodb-buffer-pool-size=$(clamp $((ram / 16)) 32 512)M"
  --max-connections=100 --transaction-isolation=READ-COMMITTED --binlog-format=ROW
  --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci --skip-name-resolve)
cleanup() {
  local c
  for c in $(d ps -aq --filter label=homelab.measure 2>/dev/null); do d rm -f -v "$c" >/dev/null; done
  d network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
d network create "$NET" >/dev/null

start_pg() { # start_pg NAME [ARG...]: with no ARG, the image's default command
  local name="$1"; shift
  d run -d --name "$name" --label homelab.measure --network "$NET" -e POSTGRES_PASSWORD="$PW" \
    -e POSTGRES_DB=app "$PG" "$@" >/dev/null
}
start_maria() { # start_maria NAME [ARG...]
  local name="$1"; shift
  d run -d --name "$name" --label homelab.measure --network "$NET" -e MARIADB_ROOT_PASSWORD="$PW" \
    -e MARIADB_DATABASE=app -e MARIADB_USER=app -e MARIADB_PASSWORD="$PW" "$MARIA" "$@" >/dev/null
}
# A client container on the network, removed when done.
client() { # client IMAGE COMMAND...
  local image="$1"; shift
  d run --rm --label homelab.measure --network "$NET" -e PGPASSWORD="$PW" -e MYSQL_PWD="$PW" \
    "$image" "$@"
}
wait_ready() { # wait_ready pg|maria NAME: a real query from another container, 2 min at most
  local kind="$1" name="$2" deadline=$(($(date +%s) + 120))
  while :; do
    if [[ "$kind" == pg ]]; then
      client "$PG" psql -h "$name" -U postgres -d app -Atc 'select 1' >/dev/null 2>&1 && return 0
    else
      client "$MARIA" mariadb -h "$name" -u app app -e 'select 1' >/dev/null 2>&1 && return 0
    fi
    (($(date +%s) < deadline)) || { echo "$name did not become ready" >&2; return 1; }
    sleep 0.5
  done
}

# settings pg|maria NAME: what the server runs with, as it reports it.
settings() {
  if [[ "$1" == pg ]]; then
    client "$PG" psql -h "$2" -U postgres -d app -Atc "select concat_ws(' ',
      'shared_buffers=' || current_setting('shared_buffers'),
      'effective_cache_size=' || current_setting('effective_cache_size'),
      'max_connections=' || current_setting('max_connections'),
      'log_min_error_statement=' || current_setting('log_min_error_statement'))"
  else
    client "$MARIA" mariadb -h "$2" -u app app -N -e "select concat_ws(' ',
      concat('innodb_buffer_pool_size=', @@innodb_buffer_pool_size DIV 1048576, 'M'),
      concat('max_connections=', @@max_connections), concat('tx_isolation=', @@tx_isolation),
      concat('binlog_format=', @@binlog_format), concat('log_bin=', @@log_bin),
      concat('character_set_server=', @@character_set_server),
      concat('skip_name_resolve=', @@skip_name_resolve))"
  fi
}

# pg_load HOST USER DB: pgbench's TPC-B-like load on one database.
pg_load() {
  client "$PG" sh -c 'pgbench -q -i -s 5 -h "$1" -U "$2" "$3" >/dev/null 2>&1 &&
    pgbench -c 4 -T "$4" -h "$1" -U "$2" "$3" 2>/dev/null | grep -E "^(number of transactions actually processed|tps)"' \
    sh "$1" "$2" "$3" "$LOAD"
}
# maria_load HOST USER DB: the same shape with the mariadb client.
maria_load() {
  # shellcheck disable=SC2016 # expanded by the client container's bash
  client "$MARIA" bash -c '
    set -e
    seconds="$4"; set -- "$1" "$2" "$3"
    db() { mariadb -h "$1" -u "$2" "$3" "${@:4}"; }
    db "$@" -e "CREATE TABLE accounts (aid INT PRIMARY KEY, bid INT, abalance INT, filler CHAR(84));
      INSERT INTO accounts SELECT seq, 1 + seq DIV 100000, 0, REPEAT(\"x\", 84) FROM seq_1_to_500000;
      CREATE TABLE history (tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP, filler CHAR(22));"
    session() {
      local end=$((SECONDS + seconds)) a delta
      while ((SECONDS < end)); do
        a=$(((RANDOM * 32768 + RANDOM) % 500000 + 1)); delta=$((RANDOM % 10001 - 5000))
        printf "BEGIN; UPDATE accounts SET abalance = abalance + %d WHERE aid = %d; SELECT abalance FROM accounts WHERE aid = %d; INSERT INTO history VALUES (1, 1, %d, %d, NOW(), NULL); COMMIT;\n" \
          "$delta" "$a" "$a" "$a" "$delta"
      done | db "$@" -N -s >/dev/null
    }
    for _ in 1 2 3 4; do session "$@" & done
    wait
    echo "transactions: $(db "$@" -N -e "SELECT COUNT(*) FROM history")"
  ' sh "$1" "$2" "$3" "$LOAD"
}

# sample LABEL NAME...: one line, summed over the containers.
sample() {
  local label="$1"; shift
  local name pid stats=0 usage=0 anon=0 file=0 shmem=0 cg mem
  for name in "$@"; do
    mem="$(d stats --no-stream --format '{{.MemUsage}}' "$name" | awk '{print $1}')"
    stats="$(awk -v a="$stats" -v m="$mem" 'BEGIN {
      n = m + 0; u = m; sub(/^[0-9.]+/, "", u)
      f = (u == "GiB") ? 1024 : (u == "MiB") ? 1 : (u == "KiB") ? 1 / 1024 : 1 / 1048576
      printf "%.1f", a + n * f }')"
    # The container's cgroup, from its first process (devices share this machine's PID and
    # cgroup namespaces).
    pid="$(d inspect -f '{{.State.Pid}}' "$name")"
    if [[ -d /sys/fs/cgroup/memory ]]; then
      cg="/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")"
      usage=$((usage + $(cat "$cg/memory.usage_in_bytes")))
      anon=$((anon + $(awk '$1 == "total_rss" {print $2}' "$cg/memory.stat")))
      file=$((file + $(awk '$1 == "total_cache" {print $2}' "$cg/memory.stat")))
      shmem=$((shmem + $(awk '$1 == "total_shmem" {print $2}' "$cg/memory.stat")))
    else
      cg="/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")"
      usage=$((usage + $(cat "$cg/memory.current")))
      anon=$((anon + $(awk '$1 == "anon" {print $2}' "$cg/memory.stat")))
      file=$((file + $(awk '$1 == "file" {print $2}' "$cg/memory.stat")))
      shmem=$((shmem + $(awk '$1 == "shmem" {print $2}' "$cg/memory.stat")))
    fi
  done
  awk -v l="$label" -v s="$stats" -v u="$usage" -v a="$anon" -v f="$file" -v h="$shmem" 'BEGIN {
    m = 1048576
    printf "%-27s docker stats %6.1f | cgroup usage %6.1f = anon %6.1f + file %6.1f (of which shmem %6.1f) MiB\n",
      l, s, u / m, a / m, f / m, h / m }'
}

run_scenario() { # run_scenario SCENARIO RUN
  local s="$1" run="$2" names=() n i
  case "$s" in
    pg-1 | pg-3in1) names=(m-pg) ;;
    pg-3x1) names=(m-pg1 m-pg2 m-pg3) ;;
    maria-1 | maria-3in1) names=(m-maria) ;;
    maria-3x1) names=(m-maria1 m-maria2 m-maria3) ;;
    *) echo "unknown scenario $s" >&2; return 1 ;;
  esac
  case "$s" in
    pg-3in1) start_pg m-pg "${PG_SHARED[@]}" ;;
    maria-3in1) start_maria m-maria "${MARIA_SHARED[@]}" ;;
    pg-*) for n in "${names[@]}"; do start_pg "$n"; done ;;
    *) for n in "${names[@]}"; do start_maria "$n"; done ;;
  esac
  for n in "${names[@]}"; do wait_ready "${s%%-*}" "$n"; done
  echo "    $s settings of ${names[0]}: $(settings "${s%%-*}" "${names[0]}")"
  if [[ "$s" == pg-3in1 ]]; then
    for i in 1 2 3; do
      client "$PG" psql -q -h m-pg -U postgres -d app -c "CREATE ROLE app$i LOGIN PASSWORD '$PW'" \
        -c "CREATE DATABASE app$i OWNER app$i"
    done
  fi
  if [[ "$s" == maria-3in1 ]]; then
    for i in 2 3; do
      client "$MARIA" mariadb -h m-maria -u root -e "CREATE DATABASE app$i;
        CREATE USER app$i@'%' IDENTIFIED BY '$PW'; GRANT ALL ON app$i.* TO app$i@'%';"
    done
  fi
  sleep "$IDLE"
  sample "$s run $run idle ${IDLE}s" "${names[@]}"
  case "$s" in
    pg-1) pg_load m-pg postgres app ;;
    pg-3in1) for i in 1 2 3; do pg_load m-pg "app$i" "app$i" & done; wait ;;
    pg-3x1) for n in "${names[@]}"; do pg_load "$n" postgres app & done; wait ;;
    maria-1) maria_load m-maria app app ;;
    maria-3in1)
      maria_load m-maria app app & maria_load m-maria app2 app2 & maria_load m-maria app3 app3 &
      wait ;;
    maria-3x1) for n in "${names[@]}"; do maria_load "$n" app app & done; wait ;;
  esac | sed 's/^/    /'
  sample "$s run $run after load" "${names[@]}"
  for n in "${names[@]}"; do d rm -f -v "$n" >/dev/null; done
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') on $DEV: $(d image inspect -f '{{index .Config.Labels "homelab.lab.build"}}' "$PG") $PG, $(d image inspect -f '{{index .Config.Labels "homelab.lab.build"}}' "$MARIA") $MARIA; RUNS=$RUNS IDLE=$IDLE LOAD=$LOAD"
echo "# $DEV RAM ${RAM_MB} MiB; shared PostgreSQL: ${PG_SHARED[*]}; shared MariaDB: ${MARIA_SHARED[*]}"
for run in $(seq 1 "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do run_scenario "$s" "$run"; done
done
