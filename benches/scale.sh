#!/usr/bin/env bash
# Scale figures: memory, poll cost and page latency of one daemon with 10, 50 and 100 devices,
# each carrying 30 days of history, printed as a markdown table. Run by hand, never by tests.
#
#   cargo build --release
#   LAB_EXTRA=100 LAB_SHARED_DOCKER=1 lab/lab up     # 100 sshd on one shared Docker engine
#   benches/scale.sh [path/to/homelabd] [device counts…]   # default: target/release/homelabd 10 50 100
#   lab/lab extra-down                               # the five test devices keep running
#
# For each count: a fresh daemon (`--poll-interval 3600`, so the background poller stays out of
# the way) adopts node-01…node-NN over the API with the lab password, is stopped (SIGTERM),
# gets 30 days of history seeded into its database (seed_history), and is started again with
# the same data and flags. Then, in order:
# - memory idle after adoption (once the poll the daemon runs at start has finished, +2 s);
# - six poll cycles (`POST /api/v1/devices/refresh`), daemon CPU of each (utime + stime from
#   /proc/PID/stat, clock-tick resolution) and its wall time; memory after them;
# - the page load test: `wrk -t1 -c8` for DURATION (10 s) each on the dashboard, one device's
#   page and the device list API; server-side percentiles from the daemon's own histogram
#   (/metrics: an upper bucket bound), wrk's client-side p99 and req/s beside them; memory after;
# - the leak figure: heap in use before and after LEAK_POLLS (20) more poll cycles, per device
#   per poll (RSS beside it, which the allocator's caching blurs).
# RSS is VmRSS; heap in use is the daemon's `homelab_heap_in_use_bytes` gauge ("n/a" on a build
# without it). For a build without the gauge, HEAP_FROM_GDB=1 reads glibc's own count instead:
# gdb attaches and calls malloc_stats(), whose "Total … in use bytes" lands in the daemon's
# stderr (kept in a file for this). It stops the daemon for a moment, so it is only done between
# measurements. Progress goes to stderr, the table to stdout.
# HOLD=FILE pauses after each load test until FILE is deleted (see hold below). The daemon gets
# the appliance unit's environment (benches/lib.sh; BENCH_UNIT_ENV=0 to leave it out).
# Needs: wrk, curl, python3, sqlite3 (gdb for HEAP_FROM_GDB); root (reads the lab's state).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh

BIN="target/release/homelabd"
if [[ $# -gt 0 && ! "$1" =~ ^[0-9]+$ ]]; then BIN="$1"; shift; fi
COUNTS=("$@")
[[ ${#COUNTS[@]} -gt 0 ]] || COUNTS=(10 50 100)
DURATION="${DURATION:-10s}"
LEAK_POLLS="${LEAK_POLLS:-20}"
DAEMON_FLAGS=(--poll-interval 3600)
[[ -x "$BIN" ]] || { echo "build first: cargo build --release" >&2; exit 1; }
for tool in wrk curl python3 sqlite3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 1; }
done
CLK_TCK="$(getconf CLK_TCK)"

eval "$(lab/lab env)"
# The extra nodes only, in order: the five test devices are other people's.
mapfile -t NODE_IPS < <(lab/lab status | awk '$1 ~ /^node-/ && $3 == "up" {print $2}' | sort -t. -k4,4n)
max=0; for c in "${COUNTS[@]}"; do ((c > max)) && max=$c; done
if ((${#NODE_IPS[@]} < max)); then
  echo "needs $max extra lab nodes, found ${#NODE_IPS[@]}: LAB_EXTRA=$max LAB_SHARED_DOCKER=1 lab/lab up" >&2
  exit 1
fi

say() { printf '%s\n' "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
rss_kb() { awk -v k="${1:-VmRSS}:" '$1 == k {print $2}' "/proc/$PID/status"; }
# Heap in use in bytes, or "n/a" when the build has no such gauge (and HEAP_FROM_GDB is off).
heap_bytes() {
  local v
  v="$(curl -s -H "Authorization: Bearer $TOKEN" "$BASE/metrics" | awk '$1 == "homelab_heap_in_use_bytes" {print $2}')"
  if [[ -z "$v" && "${HEAP_FROM_GDB:-0}" == 1 ]]; then
    v="$(gdb_heap_bytes)"
  fi
  echo "${v:-n/a}"
}
gdb_heap_bytes() {
  local seen
  : > "$DAEMON_LOG.gdb-used"
  seen="$(grep -c '^Total (incl. mmap):' "$DAEMON_LOG" || true)"
  timeout 30 gdb -p "$PID" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || return 0
  for _ in $(seq 1 100); do
    (($(grep -c '^Total (incl. mmap):' "$DAEMON_LOG" || true) > seen)) && break
    sleep 0.02
  done
  # The "in use bytes" line after the last "Total (incl. mmap):".
  awk '/^Total \(incl. mmap\):/ {t = 1; next} t && /^in use bytes/ {v = $NF; t = 0} END {print v}' "$DAEMON_LOG"
}
if [[ "${HEAP_FROM_GDB:-0}" == 1 ]]; then
  command -v gdb >/dev/null || { echo "HEAP_FROM_GDB=1 needs gdb" >&2; exit 1; }
  DAEMON_LOG="$(mktemp)"
fi
mb() { [[ "$1" == n/a ]] && echo n/a || awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# "≤ P50<TAB>≤ P99" for GET ROUTE from the daemon's own histogram: upper bucket bounds in ms, or
# "> LAST" when the quantile falls past the last finite bucket.
server_quantiles() { # server_quantiles ROUTE
  curl -s -H "Authorization: Bearer $TOKEN" "$BASE/metrics" | python3 -c '
import re, sys
route = sys.argv[1]
b = []
for line in sys.stdin:
    m = re.match(r"homelab_http_request_duration_seconds_bucket\{method=\"GET\",route=\"([^\"]+)\",le=\"([^\"]+)\"\} (\d+)", line)
    if m and m.group(1) == route:
        b.append((float("inf") if m.group(2) == "+Inf" else float(m.group(2)), int(m.group(3))))
b.sort(); total = b[-1][1]
last = max(le for le, _ in b if le != float("inf")) * 1000
def q(f):
    le = next(le for le, n in b if n >= f * total) * 1000
    return f"> {last:g}" if le == float("inf") else f"≤ {le:g}"
print(f"{q(0.50)}\t{q(0.99)}")
' "$1"
}

# wrk for DURATION with 8 connections; prints "REQ_PER_S CLIENT_P99_MS". Its timeout is raised
# to 10 s so that slow answers count in its latency instead of being dropped as errors.
load() { # load URL [header]
  local url="${1:?}" out header=()
  [[ -z "${2:-}" ]] || header=(-H "$2")
  out="$(wrk -t1 -c8 -d"$DURATION" --timeout 10s --latency "${header[@]}" "$url")"
  echo "$out" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    $1 == "99%" {p99 = ms($2)} $1 == "Requests/sec:" {rps = $2}
    END {printf "%.0f %.2f\n", rps, p99}'
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then say "warning: $url: $(grep 'Non-2xx\|Socket errors' <<<"$out")"; fi
}

api() { curl -sf -H "Authorization: Bearer $TOKEN" "$@"; }

adopt() { # adopt COUNT
  local i body
  for ((i = 1; i <= $1; i++)); do
    body="$(python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "host": sys.argv[2], "username": sys.argv[3], "password": sys.argv[4]}))' \
      "$(printf 'node-%02d' "$i")" "${NODE_IPS[i - 1]}" "$LAB_USER" "$LAB_PASSWORD")"
    api -o /dev/null -H 'Content-Type: application/json' -d "$body" "$BASE/api/v1/devices" ||
      { say "adopting ${NODE_IPS[i - 1]} failed"; exit 1; }
  done
}

# Waits until every device has been checked at or after SINCE (unix seconds) and none is
# offline, so "idle" means the poll the daemon started is over.
wait_polled() { # wait_polled SINCE
  local deadline=$(($(date +%s) + 120)) left
  while :; do
    left="$(api "$BASE/api/v1/devices" | python3 -c '
import json, sys
since = int(sys.argv[1])
ds = json.load(sys.stdin)
print(sum(1 for d in ds if (d["checked_at"] or 0) < since or d["state"] == "unknown"))' "$1")"
    [[ "$left" == 0 ]] && break
    (($(date +%s) < deadline)) || { say "devices still unpolled after 120 s: $left"; exit 1; }
    sleep 0.2
  done
  local offline
  offline="$(api "$BASE/api/v1/devices" | python3 -c 'import json,sys; print(sum(1 for d in json.load(sys.stdin) if d["state"] != "online"))')"
  [[ "$offline" == 0 ]] || say "warning: $offline devices not online"
}

# History: every device gets what 30 days of polling leave behind (see KEEP_* in
# daemon/src/devices/health.rs): one sample a minute for the last 24 h and one per 15 minutes
# for the 29 days before, i.e. 1,440 + 2,784 = 4,224 rows per device, written straight into
# `device_samples` while the daemon is stopped. The one place that knows the history's storage:
# if the daemon gains another table for it (a rollup), seed that here too, or feed it through
# whatever the daemon provides, and keep the restart after it.
seed_history() { # seed_history DB_FILE NOW
  local db="${1:?}" now="${2:?}"
  sqlite3 "$db" <<SQL
PRAGMA foreign_keys = ON;
BEGIN;
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 1440)
INSERT OR IGNORE INTO device_samples(device_id, at, online, load1, mem_used, mem_total, disk_used, disk_total)
SELECT d.id, ($now / 60) * 60 - k.i * 60, 1, (abs(random()) % 400) / 100.0,
       1073741824 + abs(random()) % 536870912, 2147483648,
       2147483648 + abs(random()) % 1073741824, 10737418240
FROM devices d, k;
WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 29 * 96 - 1)
INSERT OR IGNORE INTO device_samples(device_id, at, online, load1, mem_used, mem_total, disk_used, disk_total)
SELECT d.id, (($now - 86400) / 900) * 900 - k.i * 900, (abs(random()) % 100) > 0, (abs(random()) % 400) / 100.0,
       1073741824 + abs(random()) % 536870912, 2147483648,
       2147483648 + abs(random()) % 1073741824, 10737418240
FROM devices d, k;
-- The hourly uptime rollups the daemon keeps beside the samples (schema 5), rebuilt from the
-- seeded history as the migration does, so uptime reads see the whole month.
DELETE FROM device_uptime_hours;
INSERT INTO device_uptime_hours(device_id, hour, minutes, online_minutes)
  SELECT device_id, at - at % 3600, COUNT(*), SUM(online) FROM device_samples GROUP BY device_id, at - at % 3600;
COMMIT;
SQL
  sqlite3 "$db" 'SELECT COUNT(*) FROM device_samples'
}

declare -A R

# HOLD=FILE keeps each daemon running after its load test for a look from another shell
# (smaps, gdb, more load): its PID, BASE, COOKIE and TOKEN go into FILE as shell variables,
# and the run goes on once FILE is deleted.
hold() { # hold COUNT
  [[ -n "${HOLD:-}" ]] || return 0
  printf 'PID=%q\nBASE=%q\nCOOKIE=%q\nTOKEN=%q\nCSRF=%q\n' "$PID" "$BASE" "$COOKIE" "$TOKEN" "$CSRF" >"$HOLD"
  say "holding the $1-device daemon (PID $PID); delete $HOLD to go on"
  while [[ -e "$HOLD" ]]; do sleep 1; done
}

run_count() { # run_count COUNT
  local c="$1" t0 rows i before after ms cpu=() wall=() id
  say "== $c devices"
  DATA="$(mktemp -d)"
  start_claimed_daemon "$BIN" "${DAEMON_FLAGS[@]}"
  t0=$(now_ms)
  adopt "$c"
  wait_polled 0
  R[adopt,$c]="$(( $(now_ms) - t0 ))"
  say "adopted $c devices in ${R[adopt,$c]} ms"

  stop_daemon_keep_data
  rows="$(seed_history "$DATA/homelab.db" "$(date +%s)")"
  R[rows,$c]="$rows"
  say "seeded: $rows history rows"
  t0="$(date +%s)"
  launch_daemon
  wait_polled "$t0"
  sleep 2
  R[rss_idle,$c]="$(rss_kb)"; R[heap_idle,$c]="$(heap_bytes)"

  for i in 1 2 3 4 5 6; do
    before="$(cpu_ticks)"
    ms="$(api -X POST "$BASE/api/v1/devices/refresh" | python3 -c 'import json,sys; print(json.load(sys.stdin)["millis"])')"
    after="$(cpu_ticks)"
    cpu+=("$(( (after - before) * 1000 / CLK_TCK ))"); wall+=("$ms")
  done
  say "poll CPU ms: ${cpu[*]}; wall ms: ${wall[*]}"
  R[poll_cpu,$c]="$(median "${cpu[@]}")"; R[poll_wall,$c]="$(median "${wall[@]}")"
  R[rss_polls,$c]="$(rss_kb)"; R[heap_polls,$c]="$(heap_bytes)"

  id="$(api "$BASE/api/v1/devices" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
  read -r "R[dash_rps,$c]" "R[dash_wrk99,$c]" < <(load "$BASE/" "Cookie: $COOKIE")
  IFS=$'\t' read -r _ "R[dash_p99,$c]" < <(server_quantiles /)
  read -r "R[dev_rps,$c]" "R[dev_wrk99,$c]" < <(load "$BASE/devices/$id" "Cookie: $COOKIE")
  IFS=$'\t' read -r _ "R[dev_p99,$c]" < <(server_quantiles '/devices/{id}')
  read -r "R[api_rps,$c]" "R[api_wrk99,$c]" < <(load "$BASE/api/v1/devices" "Authorization: Bearer $TOKEN")
  IFS=$'\t' read -r "R[api_p50,$c]" "R[api_p99,$c]" < <(server_quantiles /api/v1/devices)
  say "dashboard ${R[dash_rps,$c]} req/s, device page ${R[dev_rps,$c]} req/s, API ${R[api_rps,$c]} req/s"
  R[rss_load,$c]="$(rss_kb)"; R[heap_load,$c]="$(heap_bytes)"
  hold "$c"

  local heap0 rss0 anon0 file0 per=$((c * LEAK_POLLS))
  heap0="$(heap_bytes)"; rss0="$(rss_kb)"; anon0="$(rss_kb RssAnon)"; file0="$(rss_kb RssFile)"
  for ((i = 0; i < LEAK_POLLS; i++)); do api -o /dev/null -X POST "$BASE/api/v1/devices/refresh"; done
  R[heap_leak,$c]="n/a"
  [[ "$heap0" == n/a ]] || R[heap_leak,$c]="$(( ($(heap_bytes) - heap0) / per ))"
  R[heap_after_leak,$c]="$(heap_bytes)"
  R[rss_leak,$c]="$(( ($(rss_kb) - rss0) * 1024 / per ))"
  R[anon_leak,$c]="$(( ($(rss_kb RssAnon) - anon0) * 1024 / per ))"
  R[file_leak,$c]="$(( ($(rss_kb RssFile) - file0) * 1024 / per ))"
  say "after $LEAK_POLLS more polls: per device per poll heap ${R[heap_leak,$c]}, RSS ${R[rss_leak,$c]} B (anon ${R[anon_leak,$c]}, file ${R[file_leak,$c]}); RSS now $(mb $(($(rss_kb) * 1024))) MB"

  stop_daemon
  trap - EXIT
  unset DATA
}

for c in "${COUNTS[@]}"; do run_count "$c"; done
HEAP_SOURCE="the daemon's homelab_heap_in_use_bytes gauge"
if [[ -n "${DAEMON_LOG:-}" ]]; then
  [[ -f "$DAEMON_LOG.gdb-used" ]] && HEAP_SOURCE="glibc's malloc_stats() through gdb (the build has no heap gauge)"
  rm -f "$DAEMON_LOG" "$DAEMON_LOG.gdb-used"
fi

row() { # row LABEL FORMAT-FUNCTION
  local c line="| $1 |"
  for c in "${COUNTS[@]}"; do line+=" $($2 "$c") |"; done
  echo "$line"
}
f_rss() { echo "$(mb $((${R[rss_idle,$1]} * 1024))) / $(mb $((${R[rss_polls,$1]} * 1024))) / $(mb $((${R[rss_load,$1]} * 1024))) MB"; }
f_heap() {
  [[ "${R[heap_idle,$1]}" == n/a ]] && { echo "n/a"; return; }
  echo "$(mb "${R[heap_idle,$1]}") / $(mb "${R[heap_polls,$1]}") / $(mb "${R[heap_load,$1]}") MB"
}
f_poll() { echo "${R[poll_cpu,$1]} ms (wall ${R[poll_wall,$1]} ms)"; }
f_dash() { echo "${R[dash_p99,$1]} ms (wrk p99 ${R[dash_wrk99,$1]} ms, ${R[dash_rps,$1]} req/s)"; }
f_dev() { echo "${R[dev_p99,$1]} ms (wrk p99 ${R[dev_wrk99,$1]} ms, ${R[dev_rps,$1]} req/s)"; }
f_api() { echo "${R[api_p50,$1]} / ${R[api_p99,$1]} ms, ${R[api_rps,$1]} req/s (wrk p99 ${R[api_wrk99,$1]} ms)"; }
f_leak() { [[ "${R[heap_leak,$1]}" == n/a ]] && echo n/a || echo "${R[heap_leak,$1]} B"; }
f_rssleak() { echo "${R[rss_leak,$1]} B (anon ${R[anon_leak,$1]}, file ${R[file_leak,$1]})"; }
f_rows() { echo "${R[rows,$1]}" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
f_adopt() { echo "$(awk -v m="${R[adopt,$1]}" 'BEGIN {printf "%.1f", m / 1000}') s"; }

head="| figure |"; sep="|---|"
for c in "${COUNTS[@]}"; do head+=" $c devices |"; sep+="---|"; done
echo "$head"; echo "$sep"
row "RSS idle after adoption / after 6 polls / after page load test" f_rss
row "heap in use idle after adoption / after 6 polls / after page load test" f_heap
row "one poll cycle, daemon CPU (median of 6)" f_poll
row "dashboard \`GET /\` server p99" f_dash
row "device page \`GET /devices/{id}\` server p99" f_dev
row "\`GET /api/v1/devices\` server p50 / p99 (8 concurrent clients) and req/s" f_api
row "heap per poll: heap in use after $LEAK_POLLS more polls vs before, per device per poll" f_leak
row "RSS growth over the same polls, per device per poll (anonymous, file-backed)" f_rssleak
row "history rows (30 days per device)" f_rows
row "adoption over the API, all devices polled once" f_adopt
echo
echo "Heap in use: $HEAP_SOURCE. Binary: $BIN, $("$BIN" --version) (checked out: $(git rev-parse --short HEAD 2>/dev/null || echo '?')); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
