# Shared by boot-test.sh, ota-test.sh and measure.sh: a pretend LAN (a network namespace with
# a bridge, a DHCP server, and a "laptop" namespace with its own D-Bus and Avahi), qemu with
# UEFI on it, and helpers to power the box, read its address and edit its GRUB environment.
# The caller sets WORK (an absolute directory) and IMAGE before using these.
# shellcheck shell=bash

LAN=hlt-lan
CLIENT=hlt-client
LAN_NET=10.89.0
# The first boot (which also grows the data partition) gets a generous fixed deadline; every
# later wait for a boot is scaled from how long that one took (scale_deadlines), so a slower
# machine or one under load gets proportionally longer, and a real hang still ends the test.
BOOT_DEADLINE="${FIRST_BOOT_DEADLINE:-600}"
ESP_OFFSET=$((2048 * 512)) # the first partition starts at 1 MiB (genimage.cfg: align = 1M)
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
# Plain HTTP redirects to HTTPS (the certificate is the box's own, so -k): what a browser does.
ORIGIN="https://homelab.local"

log() { printf '%s: %s\n' "${TEST_NAME:-boot-test}" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
pass() { log "ok: $*"; }
now() { date +%s; }

in_lan() { ip netns exec "$LAN" "$@"; }
# The laptop: its own network and mount namespaces (Avahi and D-Bus need a private /run).
in_client() { nsenter -t "$(cat "$WORK/client.pid")" -n -m -- "$@"; }

cleanup() {
  set +e
  power_off
  for f in qemu.pid udhcpd.pid channel.pid client-run/avahi-daemon/pid client-run/dbus/pid client.pid; do
    [[ -f "$WORK/$f" ]] && kill "$(cat "$WORK/$f")" 2>/dev/null
  done
  sleep 0.5
  ip netns del "$CLIENT" 2>/dev/null
  ip netns del "$LAN" 2>/dev/null
  rm -rf "$WORK/client-run"
}

# Pulls the plug: the VM is killed with no chance to shut down (what a power cut does), and
# its supervisor does not start it again.
power_off() {
  local pid sup
  touch "$WORK/power-off"
  pid="$(cat "$WORK/qemu.pid" 2>/dev/null || true)"
  sup="$(cat "$WORK/supervisor.pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null
  for p in $pid $sup; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  rm -f "$WORK/qemu.pid" "$WORK/supervisor.pid"
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

# The test copy of the image, with extra words on the kernel command line (GRUB reads
# `homelab_extra` from its environment on the EFI partition).
prepare_disk() {
  cp --sparse=always "$IMAGE" "$WORK/disk.img"
  # A 4 GB medium, like a small SD card: the data partition grows into it at first boot.
  truncate -s "${DISK_SIZE:-4G}" "$WORK/disk.img"
  cp "$OVMF_VARS" "$WORK/vars.fd"
  set_grubenv homelab_extra="${1:-}"
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

# The box's power. qemu runs with -no-reboot under a small supervisor: a guest reset ends
# qemu, and the supervisor starts it again on the same disk and firmware variables, as the
# reset line of real hardware does. (Resetting a software-emulated guest inside one qemu
# process sometimes hung in the firmware: a landing once failed on that, and a watchdog that
# power-cycled the hung VM could miss it. A fresh process cannot hang that way.) A virtio RNG
# feeds the guest's entropy pool, so a boot never stalls waiting for it.
start_vm() {
  : > "$WORK/serial.log"
  rm -f "$WORK/power-off" "$WORK/qemu.pid"
  supervise_vm </dev/null >>"$WORK/qemu.log" 2>&1 &
  echo $! > "$WORK/supervisor.pid"
  local _
  for _ in $(seq 1 100); do [[ -s "$WORK/qemu.pid" ]] && return 0; sleep 0.1; done
  fail "qemu did not start (see $WORK/qemu.log)"
}

supervise_vm() {
  local rc
  while [[ ! -e "$WORK/power-off" ]]; do
    rc=0
    in_lan qemu-system-x86_64 -machine q35 -m 1024 -smp 2 -no-reboot \
      -drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" \
      -drive if=pflash,format=raw,file="$WORK/vars.fd" \
      -drive file="$WORK/disk.img",if=virtio,format=raw \
      -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
      -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 \
      -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0 \
      -device i6300esb \
      -chardev file,id=console,path="$WORK/serial.log",append=on -serial chardev:console \
      ${DEBUG_SOCKET:+-chardev socket,id=debug,path=$DEBUG_SOCKET,server=on,wait=off -serial chardev:debug} \
      -display none -monitor none \
      -pidfile "$WORK/qemu.pid" || rc=$?
    [[ -e "$WORK/power-off" ]] && break
    # The guest powered itself off: it stays off, as a real box would.
    if tail -c 400 "$WORK/serial.log" | tr -d '\r' | grep -aq "reboot: Power down"; then break; fi
    printf '\n[test] the box reset (qemu exit %s): it starts again from the same disk\n' "$rc" >> "$WORK/serial.log"
    echo "reset=1" >> "$WORK/figures"
  done
}

scale_deadlines() { # scale_deadlines FIRST_BOOT_SECS: later boots get 3x that (at least 180 s)
  BOOT_DEADLINE=$(( $1 * 3 > 180 ? $1 * 3 : 180 ))
  echo "first_boot_seconds=$1" >> "$WORK/figures"
  log "first boot took $1 s: later boots get ${BOOT_DEADLINE} s"
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


wait_down() { # wait_down DEADLINE_SECS: until the box stops answering (it is restarting)
  # Three misses in a row: a box busy installing (hashing both slots under emulation) can miss
  # one 2 s answer, while a restarting one is silent for far longer than three.
  local start ip missed=0
  start="$(now)"
  while (( $(now) - start < $1 )); do
    ip="$(box_ip)"
    if in_client curl -s -m 2 -o /dev/null "http://$ip/healthz" 2>/dev/null; then
      missed=0
    else
      missed=$(( missed + 1 ))
      (( missed >= 3 )) && return 0
    fi
    sleep 1
  done
  return 1
}

console_value() { # console_value SED_REGEX: the last \1 of a console line matching it (waits 60 s)
  local value=""
  for _ in $(seq 1 60); do
    value="$(tr -d '\r' < "$WORK/serial.log" | sed -n "s/$1/\\1/p" | tail -1)"
    [[ -n "$value" ]] && break
    sleep 1
  done
  echo "$value"
}

console_setup_code() { # the setup code the serial console shows (waits for the banner)
  console_value '.*Setup code: \([A-Z0-9]\{4\}-[A-Z0-9]\{4\}\).*'
}

sign_in() { # sign_in IP PASSWORD: prints the session cookie (name=value), empty when refused
  in_client curl -sk -m 10 -o /dev/null -D - -H "Origin: $ORIGIN" --resolve "homelab.local:443:${1:?}" \
    --data-urlencode username=admin --data-urlencode "password=${2:?}" "$ORIGIN/login" \
    | awk -F'[ ;]' 'tolower($1)=="set-cookie:" && $2 ~ /^homelab_session=/ {print $2}'
}

wait_console() { # wait_console TEXT SECS: until the serial console (this boot) shows TEXT
  for _ in $(seq 1 "$2"); do
    grep -aq "$1" "$WORK/serial.log" && return 0
    sleep 1
  done
  return 1
}
