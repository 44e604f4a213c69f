#!/usr/bin/env bash
# Boots the stand-in image under qemu (software emulation, UEFI firmware from Debian's ovmf)
# on a pretend LAN — a network namespace with a bridge, a DHCP server and a second namespace
# for the "user's laptop" — and checks, each with a deadline: HTTP and HTTPS answer; the
# laptop resolves homelab.local over mDNS (Avahi) and reaches the setup wizard by that name;
# the setup code on the serial console is the daemon's (a wrong code is refused, that one is
# accepted); only ports 80 and 443 are open; the service's sandbox score; and after a power
# cut the claim survives and the boot slot was marked good; a preferred slot B that holds no
# system falls back to A.
#
#   board/standin_x86_64/boot-test.sh IMAGE WORK_DIR
#
# Needs root and: qemu-system-x86 ovmf busybox-static avahi-daemon avahi-utils dbus curl nmap
# mtools grub-common iproute2. Nothing leaves the machine: the LAN is our own namespaces.
set -euo pipefail

IMAGE="${1:?disk image}"
WORK="${2:?work directory}"
LAN=hlt-lan
CLIENT=hlt-client
LAN_NET=10.89.0
BOOT_DEADLINE="${BOOT_DEADLINE:-240}"
ESP_OFFSET=$((2048 * 512)) # the first partition starts at 1 MiB (genimage.cfg: align = 1M)
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
# Plain HTTP redirects to HTTPS (the certificate is the box's own, so -k): what a browser does.
ORIGIN="https://homelab.local"

log() { printf 'boot-test: %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
pass() { log "ok: $*"; }
now() { date +%s; }

in_lan() { ip netns exec "$LAN" "$@"; }
# The laptop: its own network and mount namespaces (Avahi and D-Bus need a private /run).
in_client() { nsenter -t "$(cat "$WORK/client.pid")" -n -m -- "$@"; }

cleanup() {
  set +e
  power_off
  for f in qemu.pid udhcpd.pid client-run/avahi-daemon/pid client-run/dbus/pid client.pid; do
    [[ -f "$WORK/$f" ]] && kill "$(cat "$WORK/$f")" 2>/dev/null
  done
  sleep 0.5
  ip netns del "$CLIENT" 2>/dev/null
  ip netns del "$LAN" 2>/dev/null
  rm -rf "$WORK/client-run"
}

# Pulls the plug: the VM is killed with no chance to shut down (what a power cut does).
power_off() {
  local pid
  pid="$(cat "$WORK/qemu.pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] || return 0
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$WORK/qemu.pid"
}

setup_lan() {
  cleanup
  ip netns add "$LAN"
  ip netns add "$CLIENT"
  in_lan ip link set lo up
  in_lan ip link add br0 type bridge
  in_lan ip addr add "$LAN_NET.1/24" dev br0
  in_lan ip link set br0 up
  in_lan ip tuntap add tap0 mode tap
  in_lan ip link set tap0 master br0 up
  ip link add lap0 netns "$CLIENT" type veth peer name lap-br netns "$LAN"
  in_lan ip link set lap-br master br0 up
  ip -n "$CLIENT" addr add "$LAN_NET.2/24" dev lap0
  ip -n "$CLIENT" link set lap0 up
  ip -n "$CLIENT" link set lo up
  # DHCP for the box, from the "router".
  cat > "$WORK/udhcpd.conf" <<CFG
start $LAN_NET.100
end $LAN_NET.150
interface br0
lease_file $WORK/udhcpd.leases
option subnet 255.255.255.0
option router $LAN_NET.1
option lease 3600
auto_time 1
CFG
  : > "$WORK/udhcpd.leases"
  in_lan busybox udhcpd -f "$WORK/udhcpd.conf" >"$WORK/udhcpd.log" 2>&1 &
  echo $! > "$WORK/udhcpd.pid"
  # The laptop: private /run for its D-Bus and Avahi.
  mkdir -p "$WORK/client-run"
  nsenter --net="/var/run/netns/$CLIENT" unshare --mount --propagation private -- \
    sh -c "mount --bind '$WORK/client-run' /run && exec sleep infinity" &
  echo $! > "$WORK/client.pid"
  for _ in $(seq 1 100); do grep -q "$WORK/client-run" "/proc/$(cat "$WORK/client.pid")/mountinfo" 2>/dev/null && break; sleep 0.05; done
  mkdir -p "$WORK/client-run/dbus"
  in_client dbus-daemon --system --fork
  cat > "$WORK/avahi.conf" <<CFG
[server]
host-name=laptop
use-ipv4=yes
use-ipv6=no
allow-interfaces=lap0
enable-dbus=yes
[publish]
publish-workstation=no
publish-hinfo=no
CFG
  in_client avahi-daemon -D -f "$WORK/avahi.conf" --no-chroot --no-drop-root --no-rlimits
}

# The test copy of the image, with the self-test hook on the kernel command line (GRUB reads
# `homelab_extra` from its environment on the EFI partition).
prepare_disk() {
  cp --sparse=always "$IMAGE" "$WORK/disk.img"
  cp "$OVMF_VARS" "$WORK/vars.fd"
  set_grubenv homelab_extra="homelab.selftest ${EXTRA_CMDLINE:-}"
}

set_grubenv() { # set_grubenv NAME=VALUE…: edit the GRUB environment on the (stopped) disk
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "$WORK/disk.img@@$ESP_OFFSET" ::EFI/BOOT/grubenv "$WORK/grubenv"
  grub-editenv "$WORK/grubenv" set "$@"
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "$WORK/disk.img@@$ESP_OFFSET" "$WORK/grubenv" ::EFI/BOOT/grubenv
}

grubenv_of_disk() {
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "$WORK/disk.img@@$ESP_OFFSET" ::EFI/BOOT/grubenv "$WORK/grubenv.now"
  grub-editenv "$WORK/grubenv.now" list
}

start_vm() {
  : > "$WORK/serial.log"
  in_lan qemu-system-x86_64 -machine q35 -m 1024 -smp 2 \
    -drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" \
    -drive if=pflash,format=raw,file="$WORK/vars.fd" \
    -drive file="$WORK/disk.img",if=virtio,format=raw \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 \
    -serial file:"$WORK/serial.log" -display none \
    -monitor none \
    -pidfile "$WORK/qemu.pid" -daemonize
}

box_ip() {
  in_lan busybox dumpleases -f "$WORK/udhcpd.leases" 2>/dev/null | awk '/52:54:00:12:34:56/ {print $2}'
}

wait_http() { # wait_http DEADLINE_SECS: until the box answers /healthz on :80; prints seconds
  local start ip
  start="$(now)"
  while (( $(now) - start < $1 )); do
    ip="$(box_ip)"
    if [[ -n "$ip" ]] && in_client curl -s -m 3 -o /dev/null -w '%{http_code}' "http://$ip/healthz" 2>/dev/null | grep -q 200; then
      echo $(( $(now) - start ))
      return 0
    fi
    sleep 1
  done
  tail -40 "$WORK/serial.log" | tr -d '\033' >&2
  return 1
}

claim_with() { # claim_with IP PASSWORD SETUP_CODE: the setup form from the laptop; prints the status
  in_client curl -sk -m 10 -o /dev/null -w '%{http_code}' -H "Origin: $ORIGIN" --resolve "homelab.local:443:${1:?}" \
    --data-urlencode username=admin --data-urlencode "password=${2:?}" --data-urlencode "password_confirm=$2" \
    --data-urlencode "setup_code=${3:?}" "$ORIGIN/setup"
}

main() {
  mkdir -p "$WORK"
  WORK="$(cd "$WORK" && pwd)"
  trap cleanup EXIT
  setup_lan
  prepare_disk
  start_vm
  local secs ip code status
  secs="$(wait_http "$BOOT_DEADLINE")" || fail "no HTTP answer within ${BOOT_DEADLINE}s of power-on"
  ip="$(box_ip)"
  pass "HTTP answers on $ip:80, ${secs}s after power-on (qemu TCG, UEFI)"
  echo "boot_to_http_seconds=$secs" > "$WORK/figures"

  status="$(in_client curl -sk -m 5 -o /dev/null -w '%{http_code}' "https://$ip/healthz")"
  [[ "$status" == 200 ]] || fail "HTTPS /healthz answered $status"
  pass "HTTPS answers on :443"

  local resolved=""
  for _ in $(seq 1 30); do
    resolved="$(in_client avahi-resolve -4 -n homelab.local 2>/dev/null | awk '{print $2}')"
    [[ -n "$resolved" ]] && break
    sleep 1
  done
  [[ "$resolved" == "$ip" ]] || fail "avahi-resolve -n homelab.local gave '$resolved', expected $ip"
  pass "the laptop resolves homelab.local to $ip over mDNS"
  local page
  page="$(in_client curl -s -k -L -m 10 --resolve "homelab.local:80:$resolved" --resolve "homelab.local:443:$resolved" "http://homelab.local/")"
  grep -q "set up your homelab" <<<"$page" \
    || fail "http://homelab.local/ did not reach the setup wizard: $(head -c 600 <<<"$page")"
  pass "http://homelab.local/ reaches the setup wizard"

  # The banner reaches the serial console once the daemon answers (it refreshes every 20 s).
  code=""
  for _ in $(seq 1 60); do
    code="$(tr -d '\r' < "$WORK/serial.log" | sed -n 's/.*Setup code: \([A-Z0-9]\{4\}-[A-Z0-9]\{4\}\).*/\1/p' | tail -1)"
    [[ -n "$code" ]] && break
    sleep 1
  done
  [[ -n "$code" ]] || fail "no setup code on the serial console"
  grep -aq "Certificate fingerprint" "$WORK/serial.log" || fail "no certificate fingerprint on the console"
  local password
  password="boot-test-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
  status="$(claim_with "$ip" "$password" ZZZZ-ZZZZ)"
  [[ "$status" == 403 ]] || fail "a wrong setup code answered $status, expected 403"
  status="$(claim_with "$ip" "$password" "$code")"
  [[ "$status" == 303 ]] || fail "claiming with the console's setup code answered $status"
  pass "the console's setup code ($code) is the daemon's: a wrong one is refused, it is accepted"

  local open
  open="$(in_client nmap -Pn -n -p- -T4 --min-rate 3000 --max-retries 1 -oG - "$ip" 2>/dev/null \
    | sed -n 's/.*Ports: //p' | tr ',' '\n' | awk -F/ '$2 == "open" {gsub(/ /, "", $1); print $1}' | sort -n | tr '\n' ' ')"
  [[ "$open" == "80 443 " ]] || fail "open TCP ports from the LAN: '$open', expected '80 443'"
  pass "only TCP 80 and 443 are open from the LAN (all 65535 scanned)"

  local exposure=""
  for _ in $(seq 1 60); do
    exposure="$(tr -d '\r' < "$WORK/serial.log" | sed -n 's/.*Overall exposure level for homelabd.service: \([0-9.]*\).*/\1/p' | tail -1)"
    [[ -n "$exposure" ]] && break
    sleep 1
  done
  [[ -n "$exposure" ]] || fail "no systemd-analyze security report on the console"
  echo "security_exposure=$exposure" >> "$WORK/figures"
  python3 -c "import sys; sys.exit(0 if float('$exposure') <= 2.0 else 1)" \
    || fail "systemd-analyze security exposure of homelabd is $exposure (goal <= 2.0)"
  pass "homelabd's systemd-analyze security exposure: $exposure"

  local env=""

  log "pulling the plug, then powering the box on again"
  power_off
  start_vm
  secs="$(wait_http "$BOOT_DEADLINE")" || fail "no HTTP answer after the power cut"
  pass "back after the power cut in ${secs}s"
  local cookie
  cookie="$(in_client curl -sk -m 10 -o /dev/null -D - -H "Origin: $ORIGIN" --resolve "homelab.local:443:$ip" \
    --data-urlencode username=admin --data-urlencode "password=$password" "$ORIGIN/login" \
    | awk -F'[ ;]' 'tolower($1)=="set-cookie:" {print $2}')"
  [[ -n "$cookie" ]] || fail "the admin account did not survive the reset"
  in_client curl -sk -m 10 -H "Cookie: $cookie" --resolve "homelab.local:443:$ip" "$ORIGIN/" | grep -q "Your homelab" \
    || fail "signed in, but the dashboard did not load"
  pass "the claim and the data on /data survived the power cut"

  # Marked good once healthy: the boot slot's attempt flag is cleared (checked on the disk).
  # (The serial log restarts with each power-on: this boot's own message.)
  for _ in $(seq 1 60); do
    grep -aq "boot slot A marked good" "$WORK/serial.log" && break
    sleep 1
  done
  power_off
  env="$(grubenv_of_disk)"
  grep -q '^A_OK=1$' <<<"$env" && grep -q '^A_TRY=0$' <<<"$env" \
    || fail "slot A was not marked good after a healthy boot: $(tr '\n' ' ' <<<"$env")"
  pass "slot A marked good after a healthy boot (A_OK=1, A_TRY=0)"

  # Fallback: pretend slot B was just installed and preferred, but it holds no system. GRUB
  # must spend B's attempt, boot A, and A gets marked good again.
  set_grubenv ORDER="B A" B_OK=1 B_TRY=0
  start_vm
  secs="$(wait_http "$BOOT_DEADLINE")" || fail "no HTTP answer when slot B could not boot"
  for _ in $(seq 1 60); do
    grep -aq "boot slot A marked good" "$WORK/serial.log" && break
    sleep 1
  done
  power_off
  env="$(grubenv_of_disk)"
  grep -q '^B_TRY=1$' <<<"$env" && grep -q '^A_TRY=0$' <<<"$env" && grep -q '^A_OK=1$' <<<"$env" \
    || fail "after a failed slot B the environment is: $(tr '\n' ' ' <<<"$env")"
  pass "a preferred slot that cannot boot falls back to A in ${secs}s (B_TRY=1, A marked good)"
  cat "$WORK/figures"
}

main "$@"
