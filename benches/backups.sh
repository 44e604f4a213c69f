#!/usr/bin/env bash
# Backup figures on the lab (issue 18): a 1 GiB volume backed up through homelabd beside plain
# `restic backup` of the same volume on the same device to the same server (ROUNDS rounds, the
# order alternating, medians), a second backup with nothing changed, one whose keep rules are
# due, the restore's throughput, the daemon's memory and CPU while a backup runs, and the time
# to move the app with its 1 GiB to another device.
# Usage: lab/lab up && cargo build --release && benches/backups.sh [path/to/release/homelabd]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
BIN="${1:-target/release/homelabd}"
ROUNDS="${ROUNDS:-3}"
APP_DEVICE=server-01
MOVE_TO=pi-4
SERVER=server-02
FOLDER=/home/homelab/bench-backups
PLAIN=/home/homelab/bench-plain
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
clean_server() { lab/lab exec "$SERVER" sh -c 'rm -rf "$1"-* "$2"-*' clean "$FOLDER" "$PLAIN"; }
clean_server
# Both sides start from an empty restic cache on the device (homelabd's is shared by every
# repository it backs up there; what an earlier run left in it would be another repository's).
lab/lab exec "$APP_DEVICE" sh -c 'docker volume ls -q --filter name=bench-plain-cache | xargs -r docker volume rm; docker volume rm -f homelab-restic-cache' >/dev/null 2>&1 || true

start_claimed_daemon "$BIN" --poll-interval 3600 --backup-schedule off
add_device() { # add_device NAME IP → id
  api POST /api/v1/devices "$(python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "host": sys.argv[2], "username": sys.argv[3], "password": sys.argv[4]}))' "$1" "$2" "$LAB_USER" "$LAB_PASSWORD")" | field id
}
FROM_ID="$(add_device "Server 1" "$APP_IP")"
TO_ID="$(add_device "Pi" "$TO_IP")"
for id in "$FROM_ID" "$TO_ID"; do
  for _ in $(seq 1 100); do api GET "/api/v1/devices/$id" | grep -q '"state":"online"' && break; sleep 0.1; done
done
# Where a job's time went ("What I did"): each step, restic's own time where it says, and
# the rest (API, job start and end, store writes, the poll's granularity).
breakdown() { # breakdown ID WALL_MS
  api GET "/api/v1/deployments/$1" | python3 -c '
import json, sys
wall = int(sys.argv[1]); noted = 0
for a in json.load(sys.stdin)["actions"]:
    noted += a["millis"]
    own = a["output"] if a["output"].startswith("restic\x27s own time") else ""
    print("    %6d ms  %s%s" % (a["millis"], a["what"].split(":")[0][:70], "  (" + own + ")" if own else ""))
print("    %6d ms  everything else (API, job, store, waiting for the poll)" % (wall - noted))' "$2"
}
median() { python3 -c 'import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:]))))' "$@"; }
settle() { sync; sleep 1; } # earlier runs' writes on disk before the next timed run

id="$(job "/api/v1/applications/$SLUG/deploy" "{\"device_id\": $FROM_ID, \"by_address\": true}" | awk '{print $2}')"
[[ "$(api GET "/api/v1/deployments/$id" | field state)" == running ]] || { echo "deploy failed" >&2; exit 1; }
# 1 GiB of random data (incompressible, the worst case for deduplication): 64 files of 16 MiB.
lab/lab exec "$APP_DEVICE" docker run --rm -v "homelab-${SLUG}_data:/d" --entrypoint /bin/busybox homelab-lab/app-stub:1 \
  sh -c 'i=0; while [ $i -lt 64 ]; do head -c 16777216 /dev/urandom > /d/f$i; i=$((i+1)); done'
add_destination() { # add_destination NAME FOLDER → id (its store made by "Test connection")
  local id
  id="$(api POST /api/v1/backups/destinations "$(python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "kind": "sftp", "host": sys.argv[2], "user": sys.argv[3], "password": sys.argv[4], "path": sys.argv[5]}))' "$1" "$SERVER_IP" "$LAB_USER" "$LAB_PASSWORD" "$2")" | field id)"
  api POST "/api/v1/backups/destinations/$id/check" >/dev/null
  echo "$id"
}

# Plain restic, the same image, volume, server, disk and cache arrangement; root's lab key
# (sshd serves SFTP in-process for both logins: internal-sftp).
KEY="$(base64 -w0 < "$LAB_ROOT_KEY")"
plain() { # plain ROUND ARGS… → ms
  local round=$1 t0; shift
  t0="$(now_ms)"
  printf '%s\n' "$KEY" | lab/lab exec "$APP_DEVICE" docker run --rm -i -e RESTIC_PASSWORD=bench-only \
    -v "homelab-${SLUG}_data:/data/data:ro" -v "bench-plain-cache-$round:/cache" --tmpfs /run/k \
    --entrypoint /bin/sh restic/restic:0.14.0 -c \
    'IFS= read -r k; printf "%s" "$k" | base64 -d > /run/k/id; chmod 600 /run/k/id; exec restic "$@"' plain \
    -r "sftp:root@$SERVER_IP:$PLAIN-$round" -o "sftp.command=ssh -i /run/k/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes root@$SERVER_IP -s sftp" \
    --cache-dir /cache "$@" >/dev/null
  echo $(( $(now_ms) - t0 ))
}

# One round's first backups (into `dest` and round `round`'s plain repository).
homelabd_first() {
  settle
  echo 5 > "/proc/$PID/clear_refs" # the peak below is this backup's
  local cpu0; cpu0="$(cpu_ms)"
  read -r h1 h1_id st < <(job "/api/v1/backups/apps/$SLUG" "{\"destination_id\": $dest}")
  echo "  homelabd first: $h1 ms ($st); daemon peak RSS $(( $(awk '/VmHWM/ {print $2}' "/proc/$PID/status") / 1024 )) MB, CPU $(( $(cpu_ms) - cpu0 )) ms"
  breakdown "$h1_id" "$h1"
}
plain_first() { settle; p1="$(plain "$round" backup --host "$SLUG" /data)"; echo "  plain restic first: $p1 ms"; }

echo "== 1 GiB volume on $APP_DEVICE → SFTP on $SERVER, $ROUNDS rounds (the order alternates)"
echo "daemon RSS idle before: $(rss_mb) MB"
H1=(); H2=(); P1=(); P2=(); R1=(); R2=()
for round in $(seq 1 "$ROUNDS"); do
  dest="$(add_destination "Server 2 #$round" "$FOLDER-$round")"
  plain "$round" init >/dev/null
  if (( round % 2 )); then homelabd_first; plain_first; else plain_first; homelabd_first; fi
  settle
  read -r h2 h2_id st < <(job "/api/v1/backups/apps/$SLUG" "{\"destination_id\": $dest}")
  settle
  p2="$(plain "$round" backup --host "$SLUG" /data)"
  echo "  nothing changed: homelabd $h2 ms ($st), plain restic $p2 ms"
  breakdown "$h2_id" "$h2"
  H1+=("$h1"); P1+=("$p1"); H2+=("$h2"); P2+=("$p2")
  R1+=("$(python3 -c "print($h1/$p1)")"); R2+=("$(python3 -c "print($h2/$p2)")")
  # A round's 2 GiB go before the next (the last round's destination serves what follows): a
  # disk 90 % full makes homelabd measure the destination after every backup.
  lab/lab exec "$SERVER" rm -rf "$PLAIN-$round"
  lab/lab exec "$APP_DEVICE" docker volume rm -f "bench-plain-cache-$round" >/dev/null
  if (( round < ROUNDS )); then
    api DELETE "/api/v1/backups/destinations/$dest" >/dev/null
    lab/lab exec "$SERVER" rm -rf "$FOLDER-$round"
  fi
done
m_h1="$(median "${H1[@]}")"; m_p1="$(median "${P1[@]}")"; m_h2="$(median "${H2[@]}")"; m_p2="$(median "${P2[@]}")"
echo "first backup, medians: homelabd $m_h1 ms, plain restic $m_p1 ms: $(python3 -c "print(f'{$m_h1/$m_p1:.2f}')")× (per round: $(python3 -c 'import sys; print(" ".join(f"{float(r):.2f}" for r in sys.argv[1:]))' "${R1[@]}"))"
echo "nothing changed, medians: homelabd $m_h2 ms, plain restic $m_p2 ms: $(python3 -c "print(f'{$m_h2/$m_p2:.2f}')")× (per round: $(python3 -c 'import sys; print(" ".join(f"{float(r):.2f}" for r in sys.argv[1:]))' "${R2[@]}"))"

# Once a day a backup also applies the keep rules (restic forget): a policy change makes
# them due at once.
api PUT "/api/v1/backups/apps/$SLUG/policy" '{"preset": "daily"}' >/dev/null
settle
read -r hf hf_id st < <(job "/api/v1/backups/apps/$SLUG" "{\"destination_id\": $dest}")
echo "nothing changed, keep rules due (once a day): homelabd $hf ms ($st)"
breakdown "$hf_id" "$hf"

# The last round's first backup (the oldest snapshot there; a removed destination's id is
# the next one's, so the runs' history would also name the earlier rounds' snapshots).
SNAP="$(api GET "/api/v1/backups/apps/$SLUG" | python3 -c 'import json,sys; print(min((s for s in json.load(sys.stdin)["snapshots"] if s["destination_id"] == int(sys.argv[1])), key=lambda s: s["time"])["id"])' "$dest")"
settle
read -r restore _ st < <(job "/api/v1/backups/apps/$SLUG/restore" "{\"destination_id\": $dest, \"snapshot\": \"$SNAP\"}")
echo "restore in place of 1 GiB: $restore ms ($st): $(python3 -c "print(f'{1024/($restore/1000):.0f}')") MiB/s, switch and health check included"
settle
read -r move move_id st < <(job "/api/v1/backups/apps/$SLUG/move" "{\"device_id\": $TO_ID, \"destination_id\": $dest}")
echo "move to $MOVE_TO with 1 GiB: $move ms ($st), last backup, restore, start, check and removal included"
breakdown "$move_id" "$move"
echo "daemon RSS at the end: $(rss_mb) MB"

# A USB disk on the box (a 3 GiB ext4 image on a loop device here): the app, now on $MOVE_TO,
# backed up to it through the box (restic on the device, the data over the device's SSH
# connection to homelabd, which writes it to the disk), beside plain restic on the same device
# to rclone's REST server serving a folder on the same disk on the lab bridge (no SSH, no
# homelabd: what the tunnel and homelabd's REST side cost).
USB="$(mktemp -d)"
truncate -s 3G "$USB.img"
mkfs.ext4 -q -F "$USB.img"
mount -o loop "$USB.img" "$USB"
unmount_usb() { umount "$USB" 2>/dev/null || true; rm -rf "$USB" "$USB.img"; }
REST_PORT=8199
HOST_IP="${LAB_REST#http://}"; HOST_IP="${HOST_IP%%:*}"
RCLONE_CONFIG=/dev/null rclone serve restic --addr "$HOST_IP:$REST_PORT" "$USB/plain" >/dev/null 2>&1 &
RCLONE=$!
trap 'kill "$RCLONE" 2>/dev/null; unmount_usb; stop_daemon' EXIT
disk="$(api POST /api/v1/backups/destinations "{\"name\": \"USB disk\", \"kind\": \"disk\", \"path\": \"$USB\"}" | field id)"
api POST "/api/v1/backups/destinations/$disk/check" | field message
lab/lab exec "$MOVE_TO" docker volume rm -f homelab-restic-cache bench-plain-cache-usb >/dev/null 2>&1 || true
plain_rest() { # plain_rest ARGS… → ms
  local t0; t0="$(now_ms)"
  lab/lab exec "$MOVE_TO" docker run --rm -e RESTIC_PASSWORD=bench-only \
    -v "homelab-${SLUG}_data:/data/data:ro" -v bench-plain-cache-usb:/cache \
    --entrypoint restic restic/restic:0.14.0 -r "rest:http://$HOST_IP:$REST_PORT/" --cache-dir /cache "$@" >/dev/null
  echo $(( $(now_ms) - t0 ))
}
plain_rest init >/dev/null
echo "== 1 GiB volume on $MOVE_TO → a USB disk on the box"
settle
echo 5 > "/proc/$PID/clear_refs"
cpu0="$(cpu_ms)"
read -r d1 d1_id st < <(job "/api/v1/backups/apps/$SLUG" "{\"destination_id\": $disk}")
echo "  homelabd first, through the box: $d1 ms ($st): $(python3 -c "print(f'{1024/($d1/1000):.0f}')") MiB/s; daemon peak RSS $(( $(awk '/VmHWM/ {print $2}' "/proc/$PID/status") / 1024 )) MB, CPU $(( $(cpu_ms) - cpu0 )) ms"
breakdown "$d1_id" "$d1"
settle
dp1="$(plain_rest backup --host "$SLUG" /data)"
echo "  plain restic first, to rclone's REST server on the same disk: $dp1 ms: homelabd/plain $(python3 -c "print(f'{$d1/$dp1:.2f}')")×"
settle
read -r d2 _ st < <(job "/api/v1/backups/apps/$SLUG" "{\"destination_id\": $disk}")
settle
dp2="$(plain_rest backup --host "$SLUG" /data)"
echo "  nothing changed: homelabd $d2 ms ($st), plain restic $dp2 ms"
SNAP="$(api GET "/api/v1/backups/apps/$SLUG" | python3 -c 'import json,sys; print(max((s for s in json.load(sys.stdin)["snapshots"] if s["destination_id"] == int(sys.argv[1])), key=lambda s: s["time"])["id"])' "$disk")"
settle
read -r dr _ st < <(job "/api/v1/backups/apps/$SLUG/restore" "{\"destination_id\": $disk, \"snapshot\": \"$SNAP\"}")
echo "  restore in place of 1 GiB from the disk: $dr ms ($st): $(python3 -c "print(f'{1024/($dr/1000):.0f}')") MiB/s"
echo "daemon RSS after: $(rss_mb) MB"
lab/lab exec "$MOVE_TO" docker volume rm -f bench-plain-cache-usb >/dev/null 2>&1 || true

api DELETE "/api/v1/applications/$SLUG?delete_data=true" >/dev/null
lab/lab exec "$APP_DEVICE" sh -c 'docker volume ls -q --filter name=bench-plain-cache | xargs -r docker volume rm' >/dev/null
clean_server
# The lab's device disks are sparse files that keep what was written into them and removed:
# the GiBs this bench wrote go back to this machine's disk.
for d in "$APP_DEVICE" "$MOVE_TO"; do
  lab/lab exec "$d" sh -c 'fstrim "$(docker info -f "{{.DockerRootDir}}")"' >/dev/null 2>&1 || true
done
