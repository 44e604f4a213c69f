#!/usr/bin/env bash
# Device figures on the lab: one poll cycle over every Docker device (cold and warm), beside
# `ansible -m setup` and a plain `ssh host docker info` loop over the same devices; daemon RSS
# with them adopted; dashboard p99 with them on it.
# Usage: LAB_EXTRA=6 lab/lab up && benches/devices.sh [path/to/release/homelabd]
# Needs: wrk, curl, python3; ansible-core from PyPI for the comparison (pip install ansible-core).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
BIN="${1:-target/release/homelabd}"
[[ -x "$BIN" ]] || { echo "build first: cargo build --release" >&2; exit 1; }
eval "$(lab/lab env)"
ROOT_KEY="$LAB_ROOT_KEY"
mapfile -t IPS < <(lab/lab status | awk '$3 == "up" && ($NF == "docker=yes" || $NF == "docker=shared") {print $2}')
echo "docker devices in the lab: ${#IPS[@]}"

# Polls only when asked, so the background poller does not overlap the measurements.
start_claimed_daemon "$BIN" --poll-interval 3600
AUTH="Authorization: Bearer $TOKEN"

i=0
for ip in "${IPS[@]}"; do
  i=$((i + 1))
  body="$(python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "host": sys.argv[2], "username": sys.argv[3], "password": sys.argv[4]}))' "bench-$i" "$ip" "$LAB_USER" "$LAB_PASSWORD")"
  curl -sf -o /dev/null -H "$AUTH" -H 'Content-Type: application/json' -d "$body" "$BASE/api/v1/devices" || { echo "adopting $ip failed" >&2; exit 1; }
done
echo "adopted $i devices"

echo; echo "== one poll cycle over all devices (homelabd, concurrent, pooled SSH connections)"
for _ in 1 2 3 4 5 6; do
  curl -s -X POST -H "$AUTH" "$BASE/api/v1/devices/refresh"; echo
done

echo; echo "== plain ssh loop: ssh root@device docker info (sequential, new connection each)"
start=$(date +%s%N)
for ip in "${IPS[@]}"; do
  ssh -q -i "$ROOT_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes "root@$ip" docker info >/dev/null 2>&1 || true
done
echo "ssh loop: $(( ($(date +%s%N) - start) / 1000000 )) ms"

if command -v ansible >/dev/null; then
  echo; echo "== ansible all -m setup (forks 10)"
  inv="$(IFS=,; echo "${IPS[*]},")"
  start=$(date +%s%N)
  ANSIBLE_HOST_KEY_CHECKING=False ansible all -i "$inv" -u root --private-key "$ROOT_KEY" -f 10 -m setup >/dev/null 2>&1 || true
  echo "ansible -m setup: $(( ($(date +%s%N) - start) / 1000000 )) ms"
else
  echo "(ansible not installed: pip install ansible-core)"
fi

echo; echo "RSS with ${#IPS[@]} devices adopted and polled: $(rss_mb) MB"

echo; echo "== dashboard with ${#IPS[@]} devices (GET /, signed in)"
wrk -t1 -c8 -d"${DURATION:-10s}" --latency -H "Cookie: $COOKIE" "$BASE/" | sed -n '/Latency Distribution/,/Requests\/sec/p'
server_percentiles /
echo "RSS after load: $(rss_mb) MB"
