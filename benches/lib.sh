# Shared by the benchmark scripts: start a release daemon on a fresh data directory, claim it,
# switch to Advanced and create an API token. Sets BASE, PID, COOKIE, CSRF, TOKEN.
# shellcheck shell=bash

start_claimed_daemon() { # start_claimed_daemon BIN [extra daemon flags…]
  local bin="${1:?binary}"; shift
  DATA="${DATA:-$(mktemp -d)}"
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  BASE="http://127.0.0.1:$PORT"
  DAEMON_CMD=("$bin" run --listen "127.0.0.1:$PORT" --data "$DATA" "$@")
  trap stop_daemon EXIT
  launch_daemon
  local pw
  pw="bench-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
  COOKIE="$(curl -s -o /dev/null -D - -H "Origin: $BASE" --data-urlencode username=admin \
    --data-urlencode "password=$pw" --data-urlencode "password_confirm=$pw" "$BASE/setup" \
    | awk -F'[ ;]' 'tolower($1)=="set-cookie:" && $2 ~ /^homelab_session=/ {print $2}')"
  # The page is read whole before sed stops at the first match: with sed quitting mid-pipe, curl
  # died of a write error now and then, and pipefail made the sign-in fail.
  local page
  page="$(curl -s -H "Cookie: $COOKIE" "$BASE/settings")"
  CSRF="$(sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p;T;q' <<<"$page")"
  curl -s -o /dev/null -H "Cookie: $COOKIE" -H "X-CSRF-Token: $CSRF" -H "Origin: $BASE" -d mode=advanced "$BASE/settings/mode"
  TOKEN="$(curl -s -H "Cookie: $COOKIE" -H "X-CSRF-Token: $CSRF" -H "Origin: $BASE" --data-urlencode name=bench --data-urlencode "password=$pw" "$BASE/settings/tokens" \
    | sed -n 's/.*id="new-token">\([^<]*\)<.*/\1/p')"
  [[ -n "$COOKIE" && -n "$CSRF" && -n "$TOKEN" ]] || { echo "could not sign in / create a token" >&2; exit 1; }
}

# The environment the appliance's unit gives homelabd (allocator settings), so figures are the
# appliance's; BENCH_UNIT_ENV=0 runs the daemon without it.
UNIT_ENV=()
if [[ "${BENCH_UNIT_ENV:-1}" == 1 ]]; then
  mapfile -t UNIT_ENV < <(sed -n 's/^Environment=//p' overlay/usr/lib/systemd/system/homelabd.service)
fi

# Starts DAEMON_CMD and waits for it to answer. Sets PID. Its stderr is appended to DAEMON_LOG
# when that is set.
launch_daemon() {
  if [[ -n "${DAEMON_LOG:-}" ]]; then
    env "${UNIT_ENV[@]}" RUST_LOG=warn HOMELAB_MDNS=off "${DAEMON_CMD[@]}" 2>>"$DAEMON_LOG" &
  else
    env "${UNIT_ENV[@]}" RUST_LOG=warn HOMELAB_MDNS=off "${DAEMON_CMD[@]}" &
  fi
  PID=$!
  for _ in $(seq 1 200); do curl -sf "$BASE/healthz" >/dev/null && return 0; sleep 0.05; done
  echo "the daemon did not answer on $BASE" >&2; exit 1
}

# Stops the daemon (SIGTERM, as systemd would) and keeps its data directory, e.g. to seed its
# database; `launch_daemon` starts it again with the same address, data and flags, and the
# session, CSRF token and API token stay valid.
stop_daemon_keep_data() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

stop_daemon() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }

rss_mb() { echo $(( $(awk '/VmRSS/ {print $2}' "/proc/$PID/status") / 1024 )); }

# Prints a p50/p99 upper bound for GET ROUTE from the daemon's own latency histogram.
server_percentiles() { # server_percentiles ROUTE…
  curl -s -H "Authorization: Bearer $TOKEN" "$BASE/metrics" | python3 -c '
import re, sys
routes = sys.argv[1:]
series = {}
for line in sys.stdin:
    m = re.match(r"homelab_http_request_duration_seconds_bucket\{method=\"GET\",route=\"([^\"]+)\",le=\"([^\"]+)\"\} (\d+)", line)
    if m:
        series.setdefault(m.group(1), []).append((float("inf") if m.group(2) == "+Inf" else float(m.group(2)), int(m.group(3))))
for route in routes:
    b = sorted(series[route]); total = b[-1][1]
    p99 = next(le for le, n in b if n >= 0.99 * total)
    p50 = next(le for le, n in b if n >= 0.50 * total)
    print(f"{route:28} requests={total:8}  p50 <= {p50*1000:g} ms  p99 <= {p99*1000:g} ms")
' "$@"
}

# The daemon's JSON API with the token (after start_claimed_daemon).
api() { # api METHOD PATH [JSON]
  if [[ $# -ge 3 ]]; then
    curl -s -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$3" "$BASE$2"
  else
    curl -s -X "$1" -H "Authorization: Bearer $TOKEN" "$BASE$2"
  fi
}
field() { python3 -c 'import json,sys; v=json.load(sys.stdin); [v := v[k] for k in sys.argv[1:]]; print(v)' "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Starts a job and waits for its end, from one process polling every 0.1 s (a curl and two
# python3 starts per poll took a fifth of a core from the backup, which plain restic did not
# pay). A move says "running" at 95 % while it removes the old copy, so the end is 100 %.
job() { # job PATH JSON → "ms id state"
  python3 - "$BASE" "$TOKEN" "$1" "$2" <<'PY'
import json, sys, time, urllib.request
base, token, path, body = sys.argv[1:5]
def call(method, p, data=None):
    r = urllib.request.Request(base + p, method=method, data=data and data.encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(r) as f:
        return json.load(f)
t0 = time.monotonic()
jid = call("POST", path, body)["deployment_id"]
while True:
    d = call("GET", f"/api/v1/deployments/{jid}")
    if d["state"] in ("rolled_back", "failed"):
        end = f"{d['state']}: {d['message']}"
        break
    if d["state"] == "running" and d["progress"] == 100:
        end = "running"
        break
    time.sleep(0.1)
print(f"{(time.monotonic() - t0) * 1000:.0f} {jid} {end}")
PY
}
# The daemon's CPU time so far (utime + stime), in ms.
TICK="$(getconf CLK_TCK)"
cpu_ms() { awk -v t="$TICK" '{print int(($14 + $15) * 1000 / t)}' "/proc/$PID/stat"; }
