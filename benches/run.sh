#!/usr/bin/env bash
# Measures the foundation's figures on this machine: idle RSS, server-side p99 of the dashboard
# page and of a JSON API call under wrk, and the stripped release binary size.
# Usage: benches/run.sh [path/to/release/homelabd]   (needs: wrk, curl; apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/homelabd}"
DURATION="${DURATION:-15s}"
[[ -x "$BIN" ]] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk" >&2; exit 1; }

DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
RUST_LOG=warn "$BIN" run --listen "127.0.0.1:$PORT" --data "$DATA" &
PID=$!
stop_daemon() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap stop_daemon EXIT
for _ in $(seq 1 200); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.05; done

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
sleep 2
echo "idle RSS after start: $(( $(rss_kb) / 1024 )) MB ($(rss_kb) kB)"

PW="bench-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
COOKIE="$(curl -s -o /dev/null -D - -H "Origin: $BASE" --data-urlencode username=admin \
  --data-urlencode "password=$PW" --data-urlencode "password_confirm=$PW" "$BASE/setup" \
  | awk -F'[ ;]' 'tolower($1)=="set-cookie:" {print $2}')"
CSRF="$(curl -s -H "Cookie: $COOKIE" "$BASE/settings" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)"
curl -s -o /dev/null -H "Cookie: $COOKIE" -H "X-CSRF-Token: $CSRF" -H "Origin: $BASE" -d mode=advanced "$BASE/settings/mode"
TOKEN="$(curl -s -H "Cookie: $COOKIE" -H "X-CSRF-Token: $CSRF" -H "Origin: $BASE" -d name=bench "$BASE/settings/tokens" \
  | sed -n 's/.*id="new-token">\([^<]*\)<.*/\1/p')"
[[ -n "$COOKIE" && -n "$CSRF" && -n "$TOKEN" ]] || { echo "could not sign in / create a token" >&2; exit 1; }

echo; echo "== dashboard page (GET /, signed in)"
wrk -t1 -c8 -d"$DURATION" --latency -H "Cookie: $COOKIE" "$BASE/" | sed -n '/Latency Distribution/,/Requests\/sec/p'
echo; echo "== JSON API (GET /api/v1/system/version, bearer token)"
wrk -t1 -c8 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/system/version" | sed -n '/Latency Distribution/,/Requests\/sec/p'

# Server-side time, from the daemon's own latency histogram (measured inside the server, so
# it excludes wrk and the loopback; buckets give an upper bound for p99).
echo; echo "== server-side p99 upper bound (from /metrics histogram)"
curl -s -H "Authorization: Bearer $TOKEN" "$BASE/metrics" | python3 -c '
import re, sys
series = {}
for line in sys.stdin:
    m = re.match(r"homelab_http_request_duration_seconds_bucket\{method=\"GET\",route=\"([^\"]+)\",le=\"([^\"]+)\"\} (\d+)", line)
    if m:
        series.setdefault(m.group(1), []).append((float("inf") if m.group(2) == "+Inf" else float(m.group(2)), int(m.group(3))))
for route in ("/", "/api/v1/system/version"):
    b = sorted(series[route]); total = b[-1][1]
    p99 = next(le for le, n in b if n >= 0.99 * total)
    p50 = next(le for le, n in b if n >= 0.50 * total)
    print(f"{route:28} requests={total:8}  p50 <= {p50*1000:g} ms  p99 <= {p99*1000:g} ms")
'
echo; echo "RSS after load: $(( $(rss_kb) / 1024 )) MB"
echo "release binary: $(stat -c %s "$BIN") bytes ($(( $(stat -c %s "$BIN") / 1024 / 1024 )) MB)"
