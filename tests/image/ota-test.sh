#!/usr/bin/env bash
# Updates of the stand-in under qemu, through the daemon's API from the "laptop", with real
# RAUC bundles made from the stand-in's own root filesystem:
#   - refused with a clear message, slots untouched: an unsigned file, a bundle signed by
#     another key, a bundle for another board; a tampered bundle fails while installing and
#     the box keeps running (and booting) its version;
#   - a newer version offered by an update channel (served from the laptop): "Check for
#     updates" shows it; with an update window around now the box downloads it, installs it
#     and restarts by itself; slot B boots it, marked good, data intact;
#   - a version whose daemon is broken on purpose (it damages the database and never serves),
#     downloaded from the channel by hand and installed:
#     the box restarts, the bootloader falls back to the previous slot, and the daemon there
#     restores the data saved before the install and says the update was rolled back;
#   - the power cut in the middle of an install: the next boot is the running version, healthy.
#
#   tests/image/ota-test.sh STANDIN_DIR WORK_DIR VERSION SIGNING_CERT SIGNING_KEY
#
# STANDIN_DIR holds homelab.img and rootfs.squashfs (make -f image.mk test-image; or a
# Buildroot images folder, out/offline-pc_x86_64/images). Needs what
# boot-test.sh needs, plus rauc, squashfs-tools, openssl and python3.
#
# An image whose RAUC streams (the Buildroot images) installs the channel's updates straight
# from the channel; the test then checks that the daemon-only update ($V2) downloaded less than
# its bundle, and reports how much. $V2 is then made as a release is (the image's compression
# and file order), and OTA_HOMELABD, when set, is the daemon it carries (another build of
# homelabd, for a real daemon-only update; by default only its version differs).
set -euo pipefail

STANDIN="${1:?stand-in directory}"
WORK="${2:?work directory}"
VERSION="${3:?version of the image}"
CERT="${4:?signing certificate}"
KEY="${5:?signing key}"
# shellcheck disable=SC2034 # read by lib.sh
IMAGE="$STANDIN/homelab.img"
# shellcheck disable=SC2034 # read by lib.sh
TEST_NAME=ota-test
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

# The kind of box, as the image's own RAUC configuration says (the stand-in and the Buildroot
# pc_x86_64 image differ), so the bundles fit the image under test.
COMPAT="$(unsquashfs -cat "$STANDIN/rootfs.squashfs" etc/rauc/system.conf | sed -n 's/^compatible=//p')"
[[ -n "$COMPAT" ]] || { echo "ota-test: no compatible= in the image's /etc/rauc/system.conf" >&2; exit 1; }
# A real board name that is not this image's, for the bundle that must be refused as foreign.
if [[ "$COMPAT" == homelab-pc-x86_64 ]]; then OTHER_COMPAT=homelab-rpi4-64; else OTHER_COMPAT=homelab-pc-x86_64; fi
V2="$VERSION-ota2"
V3="$VERSION-ota3-broken"
# The laptop serves the update channel on this port.
CHANNEL_PORT=8000
# Whether the image installs the channel's updates by streaming (see the header).
STREAMS=no
if unsquashfs -cat "$STANDIN/rootfs.squashfs" usr/lib/systemd/system/homelabd.service.d/stream.conf 2>/dev/null \
    | grep -q '^Environment=HOMELAB_OTA_STREAM=on'; then
  STREAMS=yes
fi
# A broken slot gets this long to become healthy before the box restarts to fall back.
HEALTHY_WITHIN=60

# The stand-in's root filesystem as another version; "broken": its daemon damages the
# database and exits, so it never becomes healthy.
make_rootfs() { # make_rootfs NAME VERSION [broken|release]
  local dir="$WORK/variant-$1"
  rm -rf "$dir"
  unsquashfs -q -n -d "$dir" "$STANDIN/rootfs.squashfs" >/dev/null
  sed -i "s/^VERSION_ID=.*/VERSION_ID=$2/; s/^VERSION=.*/VERSION=\"$2 (stand-in)\"/" "$dir/usr/lib/os-release"
  if [[ "${3:-}" == release ]]; then
    [[ -z "${OTA_HOMELABD:-}" ]] || install -m 0755 "$OTA_HOMELABD" "$dir/usr/bin/homelabd"
    # As Buildroot makes the image's (xz, 128 KiB blocks, buildroot/external.mk's file order),
    # so the blocks that did not change are where the box already has them.
    mksquashfs "$dir" "$WORK/rootfs-$1.img" -comp xz -b 128K -noappend -quiet -no-progress \
      -sort "$HERE/../../board/common/squashfs.sort" >/dev/null
    rm -rf "$dir"
    return 0
  fi
  if [[ "${3:-}" == broken ]]; then
    mkdir -p "$dir/etc/systemd/system/homelabd.service.d"
    cat > "$dir/etc/systemd/system/homelabd.service.d/broken.conf" <<'UNIT'
# Broken on purpose by the OTA test.
[Service]
ExecStart=
ExecStart=/bin/sh -c 'printf "broken update" | dd of=/data/homelab/homelab.db bs=1 conv=notrunc 2>/dev/null; exit 1'
UNIT
  fi
  # gzip: quicker than the image's xz, and GRUB reads it (it cannot read zstd).
  mksquashfs "$dir" "$WORK/rootfs-$1.img" -comp gzip -noappend -quiet -no-progress >/dev/null
  rm -rf "$dir"
}

make_bundles() {
  log "making the test bundles"
  if [[ "$STREAMS" == yes ]]; then make_rootfs v2 "$V2" release; else make_rootfs v2 "$V2"; fi
  make_rootfs v3 "$V3" broken
  local mb="$HERE/../../board/common/make-bundle.sh"
  "$mb" "$WORK/rootfs-v2.img" "$COMPAT" "$V2" "$CERT" "$KEY" "$WORK/good.raucb" 2>/dev/null
  "$mb" "$WORK/rootfs-v3.img" "$COMPAT" "$V3" "$CERT" "$KEY" "$WORK/broken.raucb" 2>/dev/null
  "$mb" "$WORK/rootfs-v2.img" "$OTHER_COMPAT" "$V2" "$CERT" "$KEY" "$WORK/other-board.raucb" 2>/dev/null
  "$HERE/../../board/common/dev-keys.sh" "$WORK/other-keys" "Someone else" 2>/dev/null
  "$mb" "$WORK/rootfs-v2.img" "$COMPAT" "$V2" "$WORK/other-keys/signing.cert.pem" \
    "$WORK/other-keys/signing.key.pem" "$WORK/other-key.raucb" 2>/dev/null
  # Not a bundle at all: a bare root filesystem, no signature.
  cp "$WORK/rootfs-v2.img" "$WORK/unsigned.raucb"
  # A signed bundle with bytes of its payload changed (the signature itself still checks).
  # Not $V2's: made as a release is, it shares most blocks with the running slot, and RAUC's
  # adaptive install copies those from there and never reads them in the bundle, so a change
  # there goes unseen (and harmlessly: what is written still matches the signed hashes).
  # Every block of $V3's differs from the running slot, so all of it is read.
  cp "$WORK/broken.raucb" "$WORK/tampered.raucb"
  printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' |
    dd of="$WORK/tampered.raucb" bs=1 seek=$(( $(stat -c %s "$WORK/broken.raucb") / 3 )) conv=notrunc 2>/dev/null
  rm -f "$WORK/rootfs-v2.img" "$WORK/rootfs-v3.img"
  echo "bundle_bytes=$(stat -c %s "$WORK/good.raucb")" >> "$WORK/figures"
}

# The API as the signed-in owner, from the laptop. Prints the body, then the status code.
api() { # api METHOD PATH [curl options…]
  local method="$1" path="$2"
  shift 2
  in_client curl -sk -m 900 -X "$method" -H "Origin: $ORIGIN" -H "Cookie: $COOKIE" -H "X-CSRF-Token: $CSRF" \
    --resolve "homelab.local:443:$IP" -w '\n%{http_code}' "$@" "$ORIGIN$path"
}
status_of() { tail -1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }

upload() { api POST /api/v1/system/update/bundle -H 'Content-Type: application/octet-stream' --data-binary "@$1"; }

# A field of GET /api/v1/system/update (a Python expression on `s`).
update_field() {
  api GET /api/v1/system/update | sed '$d' | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}

sign_in_owner() {
  COOKIE="$(sign_in "$IP" "$PASSWORD")"
  [[ -n "$COOKIE" ]] || fail "the owner cannot sign in"
  CSRF="$(in_client curl -sk -m 10 -H "Cookie: $COOKIE" --resolve "homelab.local:443:$IP" "$ORIGIN/" \
    | sed -n 's/.*"X-CSRF-Token": "\([^"]*\)".*/\1/p' | sed -n 1p)"
  [[ -n "$CSRF" ]] || fail "no CSRF token on the dashboard"
}

# has_token NAME: whether the owner's token list (Settings, Advanced) shows NAME. A page that
# does not load is a failure of its own, told apart from a missing token.
has_token() {
  local r
  r="$(in_client curl -sk -m 120 -H "Cookie: $COOKIE" --resolve "homelab.local:443:$IP" \
    -w '\n%{http_code}' "$ORIGIN/settings")"
  [[ "$(status_of "$r")" == 200 ]] || fail "Settings did not load (HTTP $(status_of "$r")): $(body_of "$r" | head -c 300)"
  # Not `| grep -q`: it stops reading at the first match, the writer then dies of SIGPIPE and
  # pipefail turns a found token into a missing one (a landing failed on exactly that).
  [[ "$(body_of "$r")" == *"$1"* ]]
}

# What the box said about its data, for a failure's message (the serial log is an artifact,
# but CI shows only the output).
box_story() {
  log "the box's console about homelabd and its data (last lines):"
  tr -d '\r' < "$WORK/serial.log" | grep -a "homelab\|mark-good\|snapshot\|restor\|rolled\|GRUB\|slot" | tail -40 >&2
  log "tokens listed: $(api GET /settings | grep -o '<strong>[a-z-]*update</strong>' | tr '\n' ' ')"
}

make_token() { # make_token NAME: an API token, as data that must survive (or be rolled back)
  local r
  # A token asks for the owner's password again (it outlives the session); it goes in the
  # form body, never in argv.
  r="$(printf '%s' "$PASSWORD" | api POST /settings/tokens --data-urlencode "name=$1" --data-urlencode password@- -H 'HX-Request: true')"
  # A refusal (a wrong password) also answers 200, in the list's place: the token must show.
  [[ "$(status_of "$r")" == 200 && "$r" == *'id="new-token"'* ]] || fail "could not create token $1: $r"
}

# serve_channel BUNDLE VERSION: the laptop serves an update channel offering BUNDLE: a manifest
# with the file's size and SHA-256, and the file beside it (relative address).
serve_channel() {
  local dir="$WORK/channel/stable" size sum
  if [[ -f "$WORK/channel.pid" ]]; then
    kill "$(cat "$WORK/channel.pid")" 2>/dev/null || true
    sleep 0.5
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  ln -f "$1" "$dir/homelab-$2.raucb" 2>/dev/null || cp "$1" "$dir/homelab-$2.raucb"
  : > "$WORK/channel-bytes"
  size="$(stat -c %s "$1")"
  sum="$(sha256sum "$1" | cut -d' ' -f1)"
  printf '{"version": "%s", "url": "homelab-%s.raucb", "size": %s, "sha256": "%s", "notes": "Test release %s."}\n' \
    "$2" "$2" "$size" "$sum" "$2" > "$dir/manifest.json"
  in_client python3 "$HERE/channel-server.py" "$LAN_NET.2" "$CHANNEL_PORT" "$WORK/channel" \
    "$WORK/channel-bytes" > "$WORK/channel.log" 2>&1 &
  echo $! > "$WORK/channel.pid"
  for _ in $(seq 1 50); do
    in_client curl -sf -o /dev/null "http://$LAN_NET.2:$CHANNEL_PORT/stable/manifest.json" && return 0
    sleep 0.2
  done
  fail "the laptop's update channel did not start (see $WORK/channel.log)"
}

# served_bytes VERSION: what the channel has sent of VERSION's bundle since it began serving it.
served_bytes() {
  awk -v f="/stable/homelab-$1.raucb" '$1 == f { n += $2 } END { print n + 0 }' "$WORK/channel-bytes"
}

wait_staged() { # wait_staged VERSION SECS: until the box keeps VERSION ready to install
  local t0 phase
  t0="$(now)"
  while (( $(now) - t0 < $2 )); do
    phase="$(update_field 's["progress"]["phase"]')"
    [[ "$phase" == failed ]] && fail "the download failed: $(update_field 's["progress"]["message"]')"
    [[ "$(update_field '(s["staged"] or {}).get("version", "")')" == "$1" ]] && return 0
    sleep 2
  done
  fail "$1 was not downloaded within $2 s (the install is '$phase')"
}

expect_refused() { # expect_refused FILE TEXT: the upload is refused with a message containing TEXT
  local r
  r="$(upload "$1")"
  [[ "$(status_of "$r")" == 422 ]] || fail "$(basename "$1") was not refused: $r"
  grep -qF "$2" <<<"$r" || fail "$(basename "$1"): unexpected message: $r"
  pass "$(basename "$1") refused: $(body_of "$r" | python3 -c 'import json,sys; print(json.load(sys.stdin)["error"]["message"])')"
}

wait_phase() { # wait_phase PHASE SECS: until the install reaches PHASE (or fails)
  local phase="" start
  start="$(now)"
  while (( $(now) - start < $2 )); do
    phase="$(update_field 's["progress"]["phase"]')"
    [[ "$phase" == "$1" ]] && return 0
    [[ "$phase" == failed && "$1" != failed ]] && fail "the install failed: $(update_field 's["progress"]["message"]')"
    sleep 2
  done
  fail "the install did not reach '$1' within $2 s (it is '$phase')"
}

# Until the box answers again after a restart. qemu under software emulation now and then
# hangs in the firmware after a reset (no output at all, before GRUB); a box doing that gets
# its power cycled, as its owner would, and the test says so. Everything the test checks
# (GRUB's choice, mark-good, the restore) happens after the firmware, so it still counts.
restart_box() { # restart_box DEADLINE: via the API, then wait for it to go and come back
  local r secs
  r="$(api POST /api/v1/system/update/reboot)"
  [[ "$(status_of "$r")" == 202 ]] || fail "restart refused: $r"
  wait_down 120 || fail "the box did not restart"
  secs="$(wait_http "$1")" || fail "the box did not come back within $1 s of the restart"
  IP="$(box_ip)"
  echo "$secs"
}

main() {
  mkdir -p "$WORK"
  WORK="$(cd "$WORK" && pwd)"
  : > "$WORK/figures"
  trap cleanup EXIT
  make_bundles
  setup_lan
  # The journal goes to the serial console too: its log (an artifact) explains a failure.
  prepare_disk "homelab.healthy_within=$HEALTHY_WITHIN systemd.journald.forward_to_console=1"
  start_vm
  local code r secs start
  secs="$(wait_http "$BOOT_DEADLINE")" || fail "no HTTP answer within ${BOOT_DEADLINE}s of power-on"
  scale_deadlines "$secs"
  IP="$(box_ip)"
  code="$(console_setup_code)"
  PASSWORD="ota-test-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
  [[ "$(claim_with "$IP" "$PASSWORD" "$code")" == 303 ]] || fail "could not claim the box"
  sign_in_owner
  api POST /settings/mode --data-urlencode mode=advanced -H 'HX-Request: true' >/dev/null
  make_token before-update
  [[ "$(update_field 's["version"]')" == "$VERSION" ]] || fail "the box does not report version $VERSION"
  [[ "$(update_field 's["booted_slot"]')" == A ]] || fail "the first boot is not from slot A"
  pass "Homelab $VERSION runs from slot A; updates are available"

  expect_refused "$WORK/unsigned.raucb" "not a signed Homelab update file"
  expect_refused "$WORK/other-key.raucb" "not signed by a key this Homelab trusts"
  # shellcheck disable=SC1111 # the message quotes the board name with typographic quotes
  expect_refused "$WORK/other-board.raucb" "is for “$OTHER_COMPAT”"
  r="$(upload "$WORK/tampered.raucb")"
  [[ "$(status_of "$r")" == 201 ]] || fail "the tampered bundle's signature should still check: $r"
  r="$(api POST /api/v1/system/update/install)"
  [[ "$(status_of "$r")" == 202 ]] || fail "install of the tampered bundle not started: $r"
  wait_phase failed 600
  pass "tampered bundle refused while installing: $(update_field 's["progress"]["message"]')"
  [[ "$(update_field 's["booted_slot"]')" == A ]] || fail "the booted slot changed"
  [[ "$(update_field '[x["boot_status"] for x in s["slots"] if x["bootname"]=="A"][0]')" == good ]] \
    || fail "slot A is no longer good after the refusals"

  # A newer version, offered by an update channel on the laptop: checked by hand first, then
  # downloaded, installed and started by the box itself inside the update window.
  serve_channel "$WORK/good.raucb" "$V2"
  local channel="http://$LAN_NET.2:$CHANNEL_PORT/stable/manifest.json"
  r="$(api PUT /api/v1/system/update/channel -H 'Content-Type: application/json' --data "{\"url\": \"$channel\"}")"
  [[ "$(status_of "$r")" == 200 ]] || fail "the update channel was not accepted: $r"
  r="$(api POST /api/v1/system/update/check)"
  [[ "$(status_of "$r")" == 200 ]] || fail "checking the channel failed: $r"
  [[ "$(body_of "$r" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["state"], c["manifest"]["version"])')" == "available $V2" ]] \
    || fail "the channel's offer is not shown: $r"
  [[ "$(update_field 's["booted_slot"]')" == A ]] || fail "a check alone changed something"
  pass "Check for updates: the channel offers $V2"
  # A window around now, in the box's UTC.
  local window
  window="{\"start\": \"$(date -u -d '-1 hour' +%H:%M)\", \"end\": \"$(date -u -d '+2 hours' +%H:%M)\", \"utc_offset\": 0}"
  start="$(now)"
  r="$(api PUT /api/v1/system/update/channel -H 'Content-Type: application/json' --data "{\"url\": \"$channel\", \"window\": $window}")"
  [[ "$(status_of "$r")" == 200 ]] || fail "the update window was not accepted: $r"
  wait_down 900 || fail "the box did not update and restart by itself inside its update window"
  echo "channel_to_restart_seconds=$(( $(now) - start ))" >> "$WORK/figures"
  pass "inside its window the box downloaded, installed and restarted by itself in $(( $(now) - start )) s (qemu TCG)"
  secs="$(wait_http "$BOOT_DEADLINE")" || fail "the box did not come back after its automatic update"
  IP="$(box_ip)"
  sign_in_owner
  [[ "$(update_field 's["version"]')" == "$V2" ]] || fail "after the restart the version is $(update_field 's["version"]')"
  [[ "$(update_field 's["booted_slot"]')" == B ]] || fail "after the update the box did not boot slot B"
  wait_console "boot slot B marked good" 90 || fail "slot B was not marked good"
  has_token before-update || { box_story; fail "the data from before the update is gone"; }
  [[ "$(update_field 's["last_result"]["ok"]')" == True ]] || fail "the update is not reported as done"
  [[ "$(api GET /settings)" == *"Updating to Homelab $V2 in the update window"* ]] || fail "the automatic update is not in the activity log"
  # The window goes off again, so it cannot restart the box during the steps below.
  r="$(api PUT /api/v1/system/update/channel -H 'Content-Type: application/json' --data "{\"url\": \"$channel\"}")"
  [[ "$(status_of "$r")" == 200 ]] || fail "the update window could not be turned off: $r"
  pass "the box runs $V2 from slot B (back ${secs}s after the restart), marked good, data intact"
  local served whole
  served="$(served_bytes "$V2")"
  whole="$(stat -c %s "$WORK/good.raucb")"
  echo "channel_bytes_$V2=$served" >> "$WORK/figures"
  if [[ "$STREAMS" == yes ]]; then
    [[ "$(update_field 's["streaming"]')" == True ]] || fail "the image streams, but the box says it does not"
    # Adaptive: the blocks slot A already holds are not fetched. Most of the bundle is those.
    (( served > 0 && served * 2 < whole )) || fail "the streamed update of $V2 downloaded $served of its $whole bytes"
    pass "the update to $V2 was streamed: $served of the bundle's $whole bytes downloaded"
  else
    (( served >= whole )) || fail "the channel sent $served bytes of a $whole byte bundle, yet the box installed it"
  fi

  # A broken version, offered by the channel and fetched by hand ("Download"), installed by
  # hand: the box must come back to $V2 by itself, with the data as it was.
  serve_channel "$WORK/broken.raucb" "$V3"
  r="$(api POST /api/v1/system/update/check)"
  [[ "$(body_of "$r" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["state"], c["manifest"]["version"])')" == "available $V3" ]] \
    || fail "the channel's new offer is not shown: $r"
  start="$(now)"
  r="$(api POST /api/v1/system/update/download)"
  [[ "$(status_of "$r")" == 202 ]] || fail "the download did not start: $r"
  wait_staged "$V3" 900
  echo "download_seconds=$(( $(now) - start ))" >> "$WORK/figures"
  pass "$V3 downloaded from the channel by hand and checked in $(( $(now) - start )) s"
  start="$(now)"
  r="$(api POST /api/v1/system/update/install)"
  [[ "$(status_of "$r")" == 202 ]] || fail "install not started: $r"
  wait_phase installed 900
  echo "install_seconds=$(( $(now) - start ))" >> "$WORK/figures"
  pass "$V3 installed by hand in $(( $(now) - start )) s (qemu TCG)"
  make_token during-update
  start="$(now)"
  r="$(api POST /api/v1/system/update/reboot)"
  [[ "$(status_of "$r")" == 202 ]] || fail "restart refused: $r"
  wait_down 120 || fail "the box did not restart"
  # Slot A with the broken daemon boots, is not healthy within the limit, restarts; GRUB then
  # starts B, whose daemon restores the data.
  wait_http $(( 2 * BOOT_DEADLINE + HEALTHY_WITHIN )) >/dev/null || fail "the box did not come back after the broken update"
  echo "fallback_seconds=$(( $(now) - start ))" >> "$WORK/figures"
  IP="$(box_ip)"
  sign_in_owner
  [[ "$(update_field 's["version"]')" == "$V2" ]] || fail "after the broken update the version is $(update_field 's["version"]')"
  [[ "$(update_field 's["booted_slot"]')" == B ]] || fail "the box did not fall back to slot B"
  [[ "$(update_field 's["last_result"]["message"]')" == *"The update to $V3 failed and was rolled back"* ]] \
    || fail "no rollback message: $(update_field 's["last_result"]')"
  has_token before-update || { box_story; fail "data from before the update is missing after the rollback"; }
  if has_token during-update; then box_story; fail "the data was not restored to the snapshot"; fi
  pass "the broken $V3 fell back to $V2 in $(( $(now) - start )) s and the data was restored"

  # The update window never tries a version that failed: the channel still offers $V3.
  r="$(api PUT /api/v1/system/update/channel -H 'Content-Type: application/json' --data "{\"url\": \"$channel\", \"window\": $window}")"
  [[ "$(status_of "$r")" == 200 ]] || fail "the update window was not accepted: $r"
  # The window asks the channel at once and decides in the same step; the page then says why.
  local held=""
  for _ in $(seq 1 60); do
    held="$(update_field 's["channel"]["held_back"] or ""')"
    [[ -n "$held" ]] && break
    sleep 1
  done
  grep -q "will not try it again" <<<"$held" \
    || fail "the page does not say the window holds $V3 back: $(update_field 's["channel"]')"
  # Absence can only be watched for: a window going for $V3 would start downloading at once.
  for _ in $(seq 1 10); do
    [[ "$(update_field 's["progress"]["phase"]')" == idle && "$(update_field 's["staged"]')" == None ]] \
      || fail "the window went for the failed version: $(update_field 's["progress"]')"
    sleep 1
  done
  r="$(api PUT /api/v1/system/update/channel -H 'Content-Type: application/json' --data "{\"url\": \"$channel\"}")"
  [[ "$(status_of "$r")" == 200 ]] || fail "the update window could not be turned off: $r"
  pass "the update window leaves the failed $V3 alone and says so"

  # The power goes in the middle of an install.
  r="$(upload "$WORK/broken.raucb")"
  [[ "$(status_of "$r")" == 201 ]] || fail "upload before the power cut failed: $r"
  r="$(api POST /api/v1/system/update/install)"
  [[ "$(status_of "$r")" == 202 ]] || fail "install not started: $r"
  local pct=0
  for _ in $(seq 1 300); do
    pct="$(update_field 's["progress"]["percent"]')"
    (( pct >= 40 )) && break
    sleep 0.5
  done
  log "pulling the plug at ${pct}% of the install"
  power_off
  start_vm
  wait_http "$BOOT_DEADLINE" >/dev/null || fail "no HTTP answer after the power cut mid-install"
  IP="$(box_ip)"
  sign_in_owner
  [[ "$(update_field 's["version"]')" == "$V2" && "$(update_field 's["booted_slot"]')" == B ]] \
    || fail "after the power cut the box runs $(update_field 's["version"]') from $(update_field 's["booted_slot"]')"
  wait_console "boot slot B marked good" 90 || fail "slot B not healthy after the power cut"
  pass "power cut at ${pct}% of an install: the box booted $V2 from slot B again, healthy"
  cat "$WORK/figures"
}

main "$@"
