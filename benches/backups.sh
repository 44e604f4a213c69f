#!/usr/bin/env bash
# Backup figures on the lab (issue 18): a 1 GiB volume backed up through homelabd beside plain
# `restic backup` of the same volume on the same device to the same server, a second backup
# with nothing changed, the restore's throughput, the daemon's RSS while a backup runs, and the
# time to move the app with its 1 GiB to another device.
# Usage: lab/lab up && cargo build --release && benches/backups.sh [path/to/release/homelabd]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
BIN="${1:-target/release/homelabd}"
APP_DEVICE=server-01
MOVE_TO=pi-4
SERVER=server-02
FOLDER=/home/homelab/bench-backups
PLAIN=/root/bench-plain
SLUG=bench-data
[[ -x "$BIN" ]] || { echo "build first: cargo build --release" >&2; exit 1; }
eval "$(lab/lab env)"
ip_of() { lab/lab status | awk -v d="$1" '$1 == d && $3 == "up" {print $2}'; }
APP_IP="$(ip_of "$APP_DEVICE")"; TO_IP="$(ip_of "$MOVE_TO")"; SERVER_IP="$(ip_of "$SERVER")"
[[ -n "$APP_IP" && -n "$TO_IP" && -n "$SERVER_IP" ]] || { echo "the lab is not up: lab/lab up" >&2; exit 1; }

# The app: the lab's stub with one data volume.
DATA="$(mktemp -d)"
mkdir -p "$DATA/recipes/$SLUG"
cat > "$DATA/recipes/$SLUG/manifest.yaml" <<YAML
name: Bench data
slug: $SLUG
version: "1.0"
category: Test
description: A lab stand-in app with 1 GiB of data.
website: https://example.org
requirements: {ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}
architectures: [amd64]
web: {service: web, port: 8080, path: /}
health: {path: /alive, status: 200}
data_volumes: [data]
settings:
  - {name: HTTP_PORT, label: Which port to use, kind: port, default: "18160"}
YAML
cat > "$DATA/recipes/$SLUG/compose.yaml" <<YAML
services:
  web:
    image: example/$SLUG:1
    restart: unless-stopped
    ports:
      - "\${HTTP_PORT}:8080"
    volumes:
      - data:/data
volumes:
  data:
YAML
for d in "$APP_DEVICE" "$MOVE_TO"; do
  lab/lab exec "$d" sh -c 'docker ps -aq --filter "$1" | xargs -r docker rm -f; docker volume ls -q --filter name="$2" | xargs -r docker volume rm; rm -rf "$3"' \
    clean "label=com.docker.compose.project=homelab-$SLUG" "homelab-${SLUG}_" "/opt/homelab/apps/$SLUG" >/dev/null
  lab/lab exec "$d" docker tag homelab-lab/app-stub:1 "example/$SLUG:1"
done
lab/lab exec "$SERVER" rm -rf "$FOLDER" "$PLAIN"

start_claimed_daemon "$BIN" --poll-interval 3600 --backup-schedule off
AUTH="Authorization: Bearer $TOKEN"
api() { # api METHOD PATH [JSON]
  if [[ $# -ge 3 ]]; then
    curl -s -X "$1" -H "$AUTH" -H 'Content-Type: application/json' -d "$3" "$BASE$2"
  else
    curl -s -X "$1" -H "$AUTH" "$BASE$2"
  fi
}
field() { python3 -c 'import json,sys; v=json.load(sys.stdin); [v := v[k] for k in sys.argv[1:]]; print(v)' "$@"; }
add_device() { # add_device NAME IP → id
  api POST /api/v1/devices "$(python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "host": sys.argv[2], "username": sys.argv[3], "password": sys.argv[4]}))' "$1" "$2" "$LAB_USER" "$LAB_PASSWORD")" | field id
}
FROM_ID="$(add_device "Server 1" "$APP_IP")"
TO_ID="$(add_device "Pi" "$TO_IP")"
for id in "$FROM_ID" "$TO_ID"; do
  for _ in $(seq 1 100); do api GET "/api/v1/devices/$id" | grep -q '"state":"online"' && break; sleep 0.1; done
done
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Waits for a job's end (a move says "running" at 95 % while it removes the old copy).
wait_job() { # wait_job ID → prints the final state
  local d st pr
  while :; do
    d="$(api GET "/api/v1/deployments/$1")"
    st="$(field state <<<"$d")"; pr="$(field progress <<<"$d")"
    case "$st" in
      rolled_back|failed) echo "$st: $(field message <<<"$d")"; return ;;
      running) [[ "$pr" == 100 ]] && { echo running; return; } ;;
    esac
    sleep 0.2
  done
}
job() { # job PATH JSON → "ms state id"
  local t0 id st
  t0="$(now_ms)"
  id="$(api POST "$1" "$2" | field deployment_id)"
  st="$(wait_job "$id")"
  echo "$(( $(now_ms) - t0 )) $st $id"
}
# Where a job's time went ("What I did").
breakdown() {
  api GET "/api/v1/deployments/$1" | python3 -c '
import json, sys
for a in json.load(sys.stdin)["actions"]:
    print("    %6d ms  %s" % (a["millis"], a["what"].split(":")[0][:90]))'
}

id="$(api POST "/api/v1/applications/$SLUG/deploy" "{\"device_id\": $FROM_ID, \"by_address\": true}" | field deployment_id)"
[[ "$(wait_job "$id")" == running ]] || { echo "deploy failed" >&2; exit 1; }
# 1 GiB of random data (incompressible, the worst case for deduplication): 64 files of 16 MiB.
lab/lab exec "$APP_DEVICE" docker run --rm -v "homelab-${SLUG}_data:/d" --entrypoint /bin/busybox homelab-lab/app-stub:1 \
  sh -c 'i=0; while [ $i -lt 64 ]; do head -c 16777216 /dev/urandom > /d/f$i; i=$((i+1)); done'
DEST="$(api POST /api/v1/backups/destinations "$(python3 -c 'import json,sys; print(json.dumps({"name": "Server 2", "kind": "sftp", "host": sys.argv[1], "user": sys.argv[2], "password": sys.argv[3], "path": sys.argv[4]}))' "$SERVER_IP" "$LAB_USER" "$LAB_PASSWORD" "$FOLDER")" | field id)"
api POST "/api/v1/backups/destinations/$DEST/check" >/dev/null

echo "== 1 GiB volume on $APP_DEVICE → SFTP on $SERVER"
echo "daemon RSS idle before: $(rss_mb) MB"
peak=0
( while kill -0 "$PID" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$PID/status"; sleep 0.2; done ) > "$DATA/rss.log" &
SAMPLER=$!
read -r first st first_id < <(job "/api/v1/backups/apps/$SLUG" "{\"destination_id\": $DEST}")
kill "$SAMPLER" 2>/dev/null || true
peak="$(sort -n "$DATA/rss.log" | tail -1)"
echo "homelabd backup (first): $first ms ($st); daemon RSS peak during it: $((peak / 1024)) MB"
breakdown "$first_id"
read -r second st second_id < <(job "/api/v1/backups/apps/$SLUG" "{\"destination_id\": $DEST}")
echo "homelabd backup (nothing changed): $second ms ($st)"
breakdown "$second_id"

# Plain restic, the same image, volume, server and cache arrangement; root's lab key.
KEY="$(base64 -w0 < "$LAB_ROOT_KEY")"
plain() { # plain ARGS… → ms
  local t0; t0="$(now_ms)"
  printf '%s\n' "$KEY" | lab/lab exec "$APP_DEVICE" docker run --rm -i -e RESTIC_PASSWORD=bench-only \
    -v "homelab-${SLUG}_data:/data/data:ro" -v bench-plain-cache:/cache --tmpfs /run/k \
    --entrypoint /bin/sh restic/restic:0.14.0 -c \
    'IFS= read -r k; printf "%s" "$k" | base64 -d > /run/k/id; chmod 600 /run/k/id; exec restic "$@"' plain \
    -r "sftp:root@$SERVER_IP:$PLAIN" -o "sftp.command=ssh -i /run/k/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes root@$SERVER_IP -s sftp" \
    --cache-dir /cache "$@" >/dev/null
  echo $(( $(now_ms) - t0 ))
}
lab/lab exec "$APP_DEVICE" docker volume rm -f bench-plain-cache >/dev/null
plain init >/dev/null
p1="$(plain backup --host "$SLUG" /data)"
p2="$(plain backup --host "$SLUG" /data)"
echo "plain restic backup (first): $p1 ms; (nothing changed): $p2 ms"
echo "ratio first: $(python3 -c "print(f'{$first/$p1:.2f}')")×; nothing changed: $(python3 -c "print(f'{$second/$p2:.2f}')")×"

SNAP="$(api GET "/api/v1/backups/apps/$SLUG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][-1]["snapshot_id"])')"
read -r restore st _ < <(job "/api/v1/backups/apps/$SLUG/restore" "{\"destination_id\": $DEST, \"snapshot\": \"$SNAP\"}")
echo "restore in place of 1 GiB: $restore ms ($st): $(python3 -c "print(f'{1024/($restore/1000):.0f}')") MiB/s, switch and health check included"
read -r move st move_id < <(job "/api/v1/backups/apps/$SLUG/move" "{\"device_id\": $TO_ID, \"destination_id\": $DEST}")
echo "move to $MOVE_TO with 1 GiB: $move ms ($st), last backup, restore, start, check and removal included"
breakdown "$move_id"
echo "daemon RSS at the end: $(rss_mb) MB"

api DELETE "/api/v1/applications/$SLUG?delete_data=true" >/dev/null
lab/lab exec "$APP_DEVICE" docker volume rm -f bench-plain-cache >/dev/null
lab/lab exec "$SERVER" rm -rf "$FOLDER" "$PLAIN"
