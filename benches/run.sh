#!/usr/bin/env bash
# Measures the foundation's figures on this machine: idle RSS, server-side p99 of the dashboard
# page and of a JSON API call under wrk, and the stripped release binary size.
# Usage: benches/run.sh [path/to/release/homelabd]   (needs: wrk, curl; apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
BIN="${1:-target/release/homelabd}"
DURATION="${DURATION:-15s}"
[[ -x "$BIN" ]] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk" >&2; exit 1; }

start_claimed_daemon "$BIN"
sleep 2
echo "idle RSS after start (signed in once): $(rss_mb) MB"

echo; echo "== dashboard page (GET /, signed in)"
wrk -t1 -c8 -d"$DURATION" --latency -H "Cookie: $COOKIE" "$BASE/" | sed -n '/Latency Distribution/,/Requests\/sec/p'
echo; echo "== JSON API (GET /api/v1/system/version, bearer token)"
wrk -t1 -c8 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/system/version" | sed -n '/Latency Distribution/,/Requests\/sec/p'

# Server-side time, measured inside the daemon, so it excludes wrk and the loopback.
echo; echo "== server-side percentiles (upper bounds from the /metrics histogram)"
server_percentiles / /api/v1/system/version
echo; echo "RSS after load: $(rss_mb) MB"
echo "release binary: $(stat -c %s "$BIN") bytes ($(( $(stat -c %s "$BIN") / 1024 / 1024 )) MB)"
