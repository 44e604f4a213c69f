#!/usr/bin/env bash
# Names and HTTPS figures on the lab (issue 16). Run by hand, never by tests:
#
#   cargo build --release --bin homelabd
#   lab/lab up && benches/names.sh [path/to/release/homelabd]
#
# Uses server-01 and server-02 only (DEV_A, DEV_B), the stand-in app of benches/deploy.sh as a
# user recipe under several slugs (nb-…), and one release daemon (`--poll-interval 3600`) that
# adopts both devices over the API. In order:
# 1. Deploy time, on DEV_A. A first named app (nb-keep) starts Homelab's proxy: its deploy is
#    the proxy's first start, reported once. With the proxy running, the same app (nb-web) is
#    deployed RUNS times by address (`"by_address": true`) and RUNS times named (proxy route,
#    certificate, HTTPS check through the proxy), alternately, each removed before the next.
#    Wall time is POST …/deploy to the deployment reading `running`. Two DNS set-ups: the
#    daemon without mDNS (no DNS provider: the record step fails at once, the rest of the named
#    path is done in full), then the same daemon restarted with mDNS on the lab bridge (the
#    default provider: `nb-web.local` is announced).
# 2. Caddy's memory on a device: VmRSS of the proxy's process (read in the device through
#    /proc/PID/status) and the container's `docker stats` figure, idle (SETTLE s after the last
#    change) with 1 route and with APPS routes.
# 3. Certificate issuance: the deploy journal's "Certificate for … from the homelab's CA" note
#    of every named deploy (issue + the name's row + the sealed key, two SQLite commits); and,
#    unless ISSUE_TEST=0, `Authority::issue` alone: the ignored test `issue_time` in
#    daemon/tests/ca.rs (ISSUES leaves, release build, built from this tree).
# 4. The daemon's memory with APPS apps, on DEV_B (mDNS on): APPS apps by address, RSS and
#    heap in use (`homelab_heap_in_use_bytes`) read SETTLE s after the last deploy (past the
#    daemon's 10 s trim), all removed; the same APPS named; removed; by address again (drift).
# Every app is removed through the API as it goes (and on exit), the daemon is stopped (SIGTERM)
# and its data deleted. It refuses to start when a device already runs Homelab's proxy (someone
# else's, or an interrupted run's: CLEAN=1 removes it and nb-* apps there first).
# Progress and figures go to stdout. Needs: curl, python3, root (reads the lab's state).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh

BIN="${1:-target/release/homelabd}"
RUNS="${RUNS:-5}"
APPS="${APPS:-20}"
SETTLE="${SETTLE:-12}"
DEV_A="${DEV_A:-server-01}"
DEV_B="${DEV_B:-server-02}"
MDNS_IF="${MDNS_IF:-hlab0}"
[[ -x "$BIN" ]] || { echo "build first: cargo build --release --bin homelabd" >&2; exit 1; }
eval "$(lab/lab env)"
ip_of() { lab/lab status | awk -v d="$1" '$1 == d && $3 == "up" {print $2}'; }
for dev in "$DEV_A" "$DEV_B"; do
  [[ -n "$(ip_of "$dev")" ]] || { echo "$dev is not up: lab/lab up" >&2; exit 1; }
done

say() { printf '%s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
PROXY_FILTER="label=com.docker.compose.project=homelab-proxy"

# What an earlier, interrupted run may have left on DEV: nb-* apps and the proxy.
clean_device() { # clean_device DEV
  lab/lab exec "$1" sh -c "docker ps -aq --filter $PROXY_FILTER | xargs -r docker rm -f >/dev/null
    for p in \$(docker ps -a --format '{{.Label \"com.docker.compose.project\"}}' | grep '^homelab-nb-' | sort -u); do
      docker ps -aq --filter label=com.docker.compose.project=\$p | xargs -r docker rm -f >/dev/null
      docker volume ls -q --filter label=com.docker.compose.project=\$p | xargs -r docker volume rm >/dev/null
    done
    docker network rm homelab-proxy >/dev/null 2>&1
    rm -rf /opt/homelab/proxy /opt/homelab/apps/nb-*; true"
}
for dev in "$DEV_A" "$DEV_B"; do
  [[ "${CLEAN:-0}" == 1 ]] && clean_device "$dev"
  if [[ -n "$(lab/lab exec "$dev" docker ps -aq --filter "$PROXY_FILTER")" ]]; then
    echo "$dev already runs Homelab's proxy (another test, or an interrupted run: CLEAN=1)" >&2
    exit 1
  fi
  lab/lab exec "$dev" docker tag homelab-lab/app-stub:1 example/lab-web:1.0
done

# The stand-in app of benches/deploy.sh, as a user recipe per slug (each its own host port).
DATA="$(mktemp -d)"
recipe() { # recipe SLUG PORT
  mkdir -p "$DATA/recipes/$1"
  cat >"$DATA/recipes/$1/manifest.yaml" <<YAML
name: Bench $1
slug: $1
version: "1.0"
category: Test
description: A lab stand-in app for benchmarks.
website: https://example.org
requirements: {ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}
architectures: [amd64]
web: {service: web, port: 8080, path: /}
health: {path: /alive, status: 200}
data_volumes: [data]
secrets:
  - {name: TOKEN, length: 32}
settings:
  - {name: HTTP_PORT, label: Which port to use, kind: port, default: "$2"}
YAML
  cat >"$DATA/recipes/$1/compose.yaml" <<'YAML'
services:
  web:
    image: example/lab-web:1.0
    restart: unless-stopped
    environment:
      TOKEN: ${TOKEN}
    ports:
      - "${HTTP_PORT}:8080"
    volumes:
      - data:/data
volumes:
  data:
YAML
}
recipe nb-keep 18200
recipe nb-web 18201
SLUGS=()
for i in $(seq 1 "$APPS"); do
  SLUGS+=("$(printf 'nb-%02d' "$i")")
  recipe "${SLUGS[-1]}" $((18210 + i))
done

start_claimed_daemon "$BIN" --poll-interval 3600
AUTH="Authorization: Bearer $TOKEN"
LIVE=() # apps deployed and not yet removed, for the exit trap
finish() {
  for slug in "${LIVE[@]}"; do
    curl -s -o /dev/null -X DELETE -H "$AUTH" "$BASE/api/v1/applications/$slug?delete_data=true" || true
  done
  stop_daemon
}
trap finish EXIT

adopt() { # adopt DEV → device id
  local body
  body="$(python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "host": sys.argv[2], "username": sys.argv[3], "password": sys.argv[4]}))' \
    "$1" "$(ip_of "$1")" "$LAB_USER" "$LAB_PASSWORD")"
  curl -sf -H "$AUTH" -H 'Content-Type: application/json' -d "$body" "$BASE/api/v1/devices" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
wait_online() {
  for _ in $(seq 1 100); do
    curl -s -H "$AUTH" "$BASE/api/v1/devices/$1" | grep -q '"state":"online"' && return 0
    sleep 0.1
  done
  echo "device $1 did not come online" >&2; exit 1
}
ID_A="$(adopt "$DEV_A")"; ID_B="$(adopt "$DEV_B")"
wait_online "$ID_A"; wait_online "$ID_B"

state_of() { curl -s -H "$AUTH" "$BASE/api/v1/deployments/$1" | grep -o '"state":"[a-z_]*"' | head -1 | cut -d'"' -f4; }
# Deploys SLUG on device ID, named or by address, and waits for it (polled every 20 ms).
# Sets WALL (ms) and DEP (the deployment's id).
deploy() { # deploy SLUG DEVICE_ID named|address
  local by=false t0 resp st
  if [[ "$3" == address ]]; then by=true; fi
  t0="$(now_ms)"
  resp="$(curl -s -H "$AUTH" -H 'Content-Type: application/json' \
    -d "{\"device_id\": $2, \"by_address\": $by}" "$BASE/api/v1/applications/$1/deploy")"
  DEP="$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['deployment_id'])" "$resp")" ||
    { echo "deploy of $1 refused: $resp" >&2; exit 1; }
  while :; do
    (($(now_ms) - t0 < 300000)) || { echo "deploy of $1 still not running after 300 s" >&2; exit 1; }
    st="$(state_of "$DEP")"
    [[ "$st" == running ]] && break
    [[ "$st" == rolled_back || "$st" == failed ]] && {
      echo "deploy of $1 ended $st:" >&2
      curl -s -H "$AUTH" "$BASE/api/v1/deployments/$DEP" >&2; exit 1
    }
    sleep 0.02
  done
  WALL=$(($(now_ms) - t0))
  LIVE+=("$1")
  if [[ "$3" == named ]]; then NAMED_DEPS+=("$DEP"); fi
}
NAMED_DEPS=()
remove() { # remove SLUG (synchronous: the API answers once it is gone)
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "$AUTH" "$BASE/api/v1/applications/$1?delete_data=true")"
  [[ "$code" == 200 ]] || { echo "removing $1 answered $code" >&2; exit 1; }
  local kept=()
  for s in "${LIVE[@]}"; do [[ "$s" == "$1" ]] || kept+=("$s"); done
  LIVE=("${kept[@]+"${kept[@]}"}")
}
# The deployment's "What I did" notes: milliseconds and what, one a line.
journal() { # journal DEPLOYMENT_ID
  curl -s -H "$AUTH" "$BASE/api/v1/deployments/$1" | python3 -c '
import json, sys
for a in json.load(sys.stdin)["actions"]:
    what = a["what"].split("\n")[0].split(": sh -c")[0]
    print("  %5d ms  %s  [%s]" % (a["millis"], what, a["outcome"].split("\n")[0][:60]))'
}
heap_mb() {
  curl -s -H "$AUTH" "$BASE/metrics" |
    awk '$1 == "homelab_heap_in_use_bytes" {printf "%.2f", $2 / 1048576}'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
# The daemon's memory SETTLE s after the last change: "RSS_MB HEAP_MB", medians of 3 reads.
daemon_mem() {
  local r=() h=()
  sleep "$SETTLE"
  for _ in 1 2 3; do r+=("$(rss_kb)"); h+=("$(heap_mb)"); sleep 2; done
  echo "$(python3 -c "print(f'{$(median "${r[@]}")/1024:.2f}')") $(median "${h[@]}")"
}
# Caddy on DEV: VmRSS of its process (anonymous + file-backed, MB) and docker stats' figure.
caddy_mem() { # caddy_mem DEV
  sleep "$SETTLE"
  lab/lab exec "$1" sh -c "c=\$(docker ps -q --filter $PROXY_FILTER | head -1)
    pid=\$(docker inspect -f '{{.State.Pid}}' \$c)
    awk '/^(VmRSS|RssAnon|RssFile)/ {printf \"%s %.1f MB, \", \$1, \$2 / 1024}' /proc/\$pid/status
    echo \"docker stats \$(docker stats --no-stream --format '{{.MemUsage}}' \$c)\""
}

# 1. Deploy time. Alternate by address and named, so drift on the shared machine hits both.
deploy_runs() { # deploy_runs LABEL → sets ADDR_MS, NAMED_MS, ADDR_DEPS, NAMED_RUN_DEPS (arrays)
  ADDR_MS=(); NAMED_MS=(); ADDR_DEPS=(); NAMED_RUN_DEPS=()
  for run in $(seq 1 "$RUNS"); do
    deploy nb-web "$ID_A" address; ADDR_MS+=("$WALL"); ADDR_DEPS+=("$DEP"); remove nb-web
    deploy nb-web "$ID_A" named; NAMED_MS+=("$WALL"); NAMED_RUN_DEPS+=("$DEP"); remove nb-web
    say "  $1 run $run: by address ${ADDR_MS[-1]} ms, named ${NAMED_MS[-1]} ms"
  done
}
# The milliseconds of the journal note starting with WHAT in each deployment (0 when absent).
note_ms() { # note_ms WHAT DEPLOYMENT_ID…
  local what="$1" dep; shift
  for dep in "$@"; do
    curl -s -H "$AUTH" "$BASE/api/v1/deployments/$dep" | python3 -c '
import json, sys
print(next((a["millis"] for a in json.load(sys.stdin)["actions"] if a["what"].startswith(sys.argv[1])), 0))' "$what"
  done
}
report_runs() { # report_runs LABEL
  local ma mn notes
  ma="$(median "${ADDR_MS[@]}")"; mn="$(median "${NAMED_MS[@]}")"
  say "$1: median by address $ma ms (${ADDR_MS[*]}), named $mn ms (${NAMED_MS[*]}): +$((mn - ma)) ms"
  mapfile -t notes < <(note_ms "Start the app" "${ADDR_DEPS[@]}")
  say "  Compose up of the app, by address: median $(median "${notes[@]}") ms (${notes[*]})"
  mapfile -t notes < <(note_ms "Start the app" "${NAMED_RUN_DEPS[@]}")
  say "  Compose up of the app, named (joins the proxy's network too): median $(median "${notes[@]}") ms (${notes[*]})"
  for what in "Name " "Proxy: certificate" "Proxy: route" "Health check through the proxy"; do
    mapfile -t notes < <(note_ms "$what" "${NAMED_RUN_DEPS[@]}")
    say "  named, \"$what…\": median $(median "${notes[@]}") ms (${notes[*]})"
  done
  LAST_ADDR="${ADDR_DEPS[-1]}"; LAST_NAMED="${NAMED_RUN_DEPS[-1]}"
  say "  last by-address deploy, What I did:"; journal "$LAST_ADDR"
  say "  last named deploy, What I did:"; journal "$LAST_NAMED"
}

say "== 1. deploy time on $DEV_A, $RUNS runs each"
deploy nb-keep "$ID_A" named
say "first named app on $DEV_A (starts Homelab's proxy): $WALL ms wall; What I did:"
journal "$DEP"
say "Caddy on $DEV_A, 1 route, idle: $(caddy_mem "$DEV_A")"
deploy_runs "no DNS provider (mDNS off)"
report_runs "no DNS provider (mDNS off)"

say; say "== restarting the daemon with mDNS on $MDNS_IF (the default provider: <slug>.local)"
stop_daemon_keep_data
DAEMON_CMD+=(--mdns on --mdns-interface "$MDNS_IF")
launch_daemon
wait_online "$ID_A"; wait_online "$ID_B"
deploy_runs "mDNS"
report_runs "mDNS"
remove nb-keep

say; say "== 2 and 4. $APPS apps on $DEV_B: by address, named, by address again (mDNS on)"
# One HTTPS request to each named app, as a visitor trusting only the homelab's root.
visit_all() {
  local root="$DATA/homelab-root.pem" url host ok=0
  curl -sf -H "Cookie: $COOKIE" "$BASE/settings/trust/homelab-root.pem" >"$root"
  for slug in "${SLUGS[@]}"; do
    url="$(curl -s -H "$AUTH" "$BASE/api/v1/applications/$slug" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["deployed"]["url"])')"
    host="${url#https://}"; host="${host%%/*}"
    curl -sf -o /dev/null --max-time 10 --cacert "$root" --resolve "$host:443:$(ip_of "$DEV_B")" "$url" && ok=$((ok + 1))
  done
  say "  HTTPS through the proxy, trusted: $ok of $APPS answered"
}
round() { # round named|address
  local w=()
  for slug in "${SLUGS[@]}"; do
    deploy "$slug" "$ID_B" "$1"; w+=("$WALL")
    if [[ "$1" == named && "$slug" == "${SLUGS[0]}" ]]; then
      say "Caddy on $DEV_B, 1 route, idle: $(caddy_mem "$DEV_B")"
    fi
  done
  say "  $APPS deploys $1: median $(median "${w[@]}") ms"
  if [[ "$1" == named ]]; then
    say "Caddy on $DEV_B, $APPS routes, idle: $(caddy_mem "$DEV_B")"
    visit_all
    say "Caddy on $DEV_B, $APPS routes, after one HTTPS request to each: $(caddy_mem "$DEV_B")"
  fi
  read -r rss heap < <(daemon_mem)
  say "daemon with $APPS apps $1: RSS $rss MB, heap in use $heap MB"
  for slug in "${SLUGS[@]}"; do remove "$slug"; done
  read -r rss heap < <(daemon_mem)
  say "  after removing them: RSS $rss MB, heap in use $heap MB"
}
read -r rss heap < <(daemon_mem)
say "daemon before (2 devices, no apps): RSS $rss MB, heap in use $heap MB"
round address
round named
round address

say; say "== 3. certificate issuance"
certs=()
for dep in "${NAMED_DEPS[@]}"; do
  certs+=("$(curl -s -H "$AUTH" "$BASE/api/v1/deployments/$dep" | python3 -c '
import json, sys
print(next(a["millis"] for a in json.load(sys.stdin)["actions"] if a["what"].startswith("Certificate for")))')")
done
say "journal note (issue + name row + sealed key), ${#certs[@]} named deploys: median $(median "${certs[@]}") ms, max $(printf '%s\n' "${certs[@]}" | sort -n | tail -1) ms"
say "daemon at the end: RSS $(($(rss_kb) / 1024)) MB"
trap - EXIT
finish
if [[ "${ISSUE_TEST:-1}" == 1 ]]; then
  say "Authority::issue alone (ignored test issue_time, release build):"
  ISSUES="${ISSUES:-200}" nice -n 10 cargo test -q --release -p homelabd --test ca -- \
    --ignored --exact issue_time --nocapture 2>&1 | grep '^issue:'
fi
