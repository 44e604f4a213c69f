#!/usr/bin/env bash
# Deploy figures on the lab: wall time of a one-click deploy of a stand-in app (API call to
# "running", health check included) beside a raw `ssh device 'docker-compose up -d'` of the
# same files, and the controller's CPU time per deploy.
# Usage: lab/lab up && benches/deploy.sh [path/to/release/homelabd]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
BIN="${1:-target/release/homelabd}"
RUNS="${RUNS:-5}"
DEVICE=nas-01
[[ -x "$BIN" ]] || { echo "build first: cargo build --release" >&2; exit 1; }
eval "$(lab/lab env)"
IP="$(lab/lab status | awk -v d="$DEVICE" '$1 == d && $3 == "up" {print $2}')"
[[ -n "$IP" ]] || { echo "$DEVICE is not up: lab/lab up" >&2; exit 1; }
SSH=(ssh -q -i "$LAB_ROOT_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes "root@$IP")

# The stand-in app (see daemon/tests/deploy.rs), as a user recipe.
DATA="$(mktemp -d)"
mkdir -p "$DATA/recipes/bench-web"
cat > "$DATA/recipes/bench-web/manifest.yaml" <<'YAML'
name: Bench web
slug: bench-web
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
  - {name: HTTP_PORT, label: Which port to use, kind: port, default: "18150"}
YAML
cat > "$DATA/recipes/bench-web/compose.yaml" <<'YAML'
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
lab/lab exec "$DEVICE" docker tag homelab-lab/app-stub:1 example/lab-web:1.0
start_claimed_daemon "$BIN" --poll-interval 3600
AUTH="Authorization: Bearer $TOKEN"
body="$(python3 -c 'import json,sys; print(json.dumps({"name": "bench", "host": sys.argv[1], "username": sys.argv[2], "password": sys.argv[3]}))' "$IP" "$LAB_USER" "$LAB_PASSWORD")"
curl -sf -o /dev/null -H "$AUTH" -H 'Content-Type: application/json' -d "$body" "$BASE/api/v1/devices"
for _ in $(seq 1 100); do
  curl -s -H "$AUTH" "$BASE/api/v1/devices/1" | grep -q '"state":"online"' && break; sleep 0.1
done

ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ="$(getconf CLK_TCK)"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Light on purpose (no interpreter start-up per check): the loop polls every few ms.
state_of() { curl -s -H "$AUTH" "$BASE/api/v1/deployments/$1" | grep -o '"state":"[a-z_]*"' | head -1 | cut -d'"' -f4; }

# One deploy of the app, waited for by polling every $1 seconds, then removed; prints
# "wall_ms cpu_ms deployment_id".
deploy_once() {
  local pause="${1:?}" t0 c0 t1 c1 resp id st
  t0="$(now_ms)"; c0="$(ticks)"
  resp="$(curl -s -X POST -H "$AUTH" "$BASE/api/v1/applications/bench-web/deploy")"
  id="$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['deployment_id'])" "$resp")" || { echo "deploy refused: $resp" >&2; exit 1; }
  while :; do
    st="$(state_of "$id")"
    [[ "$st" == running ]] && break
    [[ "$st" == rolled_back ]] && { echo "deploy failed" >&2; exit 1; }
    sleep "$pause"
  done
  t1="$(now_ms)"; c1="$(ticks)"
  curl -s -o /dev/null -X DELETE -H "$AUTH" "$BASE/api/v1/applications/bench-web?delete_data=true"
  echo "$((t1 - t0)) $(( (c1 - c0) * 1000 / HZ )) $id"
}

echo "== homelabd: POST deploy → running (health check included), then removed; $RUNS runs on $DEVICE"
ours=()
for n in $(seq 1 "$RUNS"); do
  read -r wall _ last < <(deploy_once 0.005)
  ours+=("$wall")
  echo "run $n: $wall ms wall"
done
# CPU separately, polled gently, so serving our own status checks does not count.
cpus=()
for n in $(seq 1 3); do
  read -r _ cpu _ < <(deploy_once 0.25)
  cpus+=("$cpu")
done
echo "controller CPU per deploy (3 runs): ${cpus[*]} ms"
echo "where the time of the last run went (What I did):"
curl -s -H "$AUTH" "$BASE/api/v1/deployments/$last" | python3 -c '
import json, sys
for a in json.load(sys.stdin)["actions"]:
    print("  %5d ms  %s" % (a["millis"], a["what"].split(":")[0]))'

echo; echo "== raw: ssh root@device 'docker-compose up -d' of the same files (no health check)"
"${SSH[@]}" "mkdir -p /opt/homelab/bench-raw && cd /opt/homelab/bench-raw && printf 'TOKEN=%s\nHTTP_PORT=18150\n' \$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n') > .env"
"${SSH[@]}" "cat > /opt/homelab/bench-raw/compose.yaml" < "$DATA/recipes/bench-web/compose.yaml"
raw=()
for n in $(seq 1 "$RUNS"); do
  t0="$(now_ms)"
  "${SSH[@]}" "cd /opt/homelab/bench-raw && docker-compose -p bench-raw -f compose.yaml up -d" >/dev/null 2>&1
  t1="$(now_ms)"
  raw+=($((t1 - t0)))
  echo "run $n: $((t1 - t0)) ms"
  "${SSH[@]}" "cd /opt/homelab/bench-raw && docker-compose -p bench-raw -f compose.yaml down -v" >/dev/null 2>&1
done
"${SSH[@]}" "rm -rf /opt/homelab/bench-raw"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_ours="$(median "${ours[@]}")"; m_raw="$(median "${raw[@]}")"
echo; echo "median: homelabd $m_ours ms, raw compose $m_raw ms, ratio $(python3 -c "print(f'{$m_ours/$m_raw:.2f}')")×"
echo "RSS after $RUNS deploys: $(rss_mb) MB"
