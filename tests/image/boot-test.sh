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
#   tests/image/boot-test.sh IMAGE WORK_DIR
#
# Needs root and: qemu-system-x86 ovmf busybox-static avahi-daemon avahi-utils dbus curl nmap
# mtools grub-common iproute2. Nothing leaves the machine: the LAN is our own namespaces.
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
IMAGE="${1:?disk image}"
WORK="${2:?work directory}"
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

main() {
  mkdir -p "$WORK"
  WORK="$(cd "$WORK" && pwd)"
  trap cleanup EXIT
  setup_lan
  # The self-test hook prints the service's sandbox score on the console.
  prepare_disk "homelab.selftest ${EXTRA_CMDLINE:-}"
  start_vm
  local secs ip code status
  secs="$(wait_http "$BOOT_DEADLINE")" || fail "no HTTP answer within ${BOOT_DEADLINE}s of power-on"
  ip="$(box_ip)"
  pass "HTTP answers on $ip:80, ${secs}s after power-on (qemu TCG, UEFI)"
  echo "boot_to_http_seconds=$secs" > "$WORK/figures"
  scale_deadlines "$secs"

  status="$(in_client curl -sk -m 5 -o /dev/null -w '%{http_code}' "https://$ip/healthz")"
  [[ "$status" == 200 ]] || fail "HTTPS /healthz answered $status"
  pass "HTTPS answers on :443"

  # The image is smaller than the 4 GB medium: the data partition grew into it.
  grep -aq "data partition grown to" "$WORK/serial.log" || fail "the data partition did not grow to fill the disk"
  pass "$(tr -d '\r' < "$WORK/serial.log" | grep -ao -m1 'data partition grown to [0-9]* MiB')"

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
  code="$(console_setup_code)"
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

  local exposure
  exposure="$(console_value '.*Overall exposure level for homelabd.service: \([0-9.]*\).*')"
  [[ -n "$exposure" ]] || fail "no systemd-analyze security report on the console"
  echo "security_exposure=$exposure" >> "$WORK/figures"
  python3 -c "import sys; sys.exit(0 if float('$exposure') <= 2.0 else 1)" \
    || fail "systemd-analyze security exposure of homelabd is $exposure (goal <= 2.0)"
  pass "homelabd's systemd-analyze security exposure: $exposure"

  # The watchdog qemu emulates (i6300ESB): systemd runs it, and it never had to act, so the
  # box has been pinging it all along (unpinged, it resets the box within a minute).
  local watchdog
  watchdog="$(console_value '.*homelab-selftest: watchdog: \(.*\)')"
  [[ "$watchdog" == *"i6300ESB"*", active, timeout 60s"* ]] \
    || fail "the hardware watchdog is not run by systemd: '${watchdog:-no report on the console}'"
  ! grep -q '^reset=' "$WORK/figures" || fail "the box reset by itself before the power cut (see serial.log)"
  pass "the hardware watchdog ($watchdog) runs and never had to reset the box"

  local env=""

  log "pulling the plug, then powering the box on again"
  power_off
  start_vm
  secs="$(wait_http "$BOOT_DEADLINE")" || fail "no HTTP answer after the power cut"
  pass "back after the power cut in ${secs}s"
  local cookie
  cookie="$(sign_in "$ip" "$password")"
  [[ -n "$cookie" ]] || fail "the admin account did not survive the reset"
  [[ "$(in_client curl -sk -m 10 -H "Cookie: $cookie" --resolve "homelab.local:443:$ip" "$ORIGIN/")" == *"Your homelab"* ]] \
    || fail "signed in, but the dashboard did not load"
  pass "the claim and the data on /data survived the power cut"

  # Marked good once healthy: the boot slot's attempt flag is cleared (checked on the disk).
  # (The serial log restarts with each power-on: this boot's own message.)
  wait_console "boot slot A marked good" 60 || true
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
  wait_console "boot slot A marked good" 60 || true
  power_off
  env="$(grubenv_of_disk)"
  grep -q '^B_TRY=1$' <<<"$env" && grep -q '^A_TRY=0$' <<<"$env" && grep -q '^A_OK=1$' <<<"$env" \
    || fail "after a failed slot B the environment is: $(tr '\n' ' ' <<<"$env")"
  pass "a preferred slot that cannot boot falls back to A in ${secs}s (B_TRY=1, A marked good)"
  cat "$WORK/figures"
}

main "$@"
