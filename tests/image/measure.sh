#!/usr/bin/env bash
# Measures a booted image from the inside, for the figures of an image's note (not a test: it
# asserts nothing). It boots the image on the pretend LAN of boot-test.sh with systemd's debug
# shell on a second serial port (a kernel argument only this copy of the disk gets), waits
# until HTTP answers and the box has been idle for a minute, then records: memory in use
# (MemTotal - MemAvailable), the biggest processes, systemd's boot timing and slowest units,
# RAUC's status as homelabd reads it, and the root filesystem's biggest folders.
#
#   tests/image/measure.sh IMAGE WORK_DIR
#
# Needs what boot-test.sh needs, plus socat.
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
IMAGE="${1:?disk image}"
WORK="${2:?work directory}"
TEST_NAME=measure
# shellcheck source=tests/image/lib.sh
. "$(dirname "$0")/lib.sh"

# run_in_box SECONDS COMMANDS: types the commands into the debug shell and prints what comes
# back within SECONDS. Typed as one line after a pause: characters sent to the emulated serial
# port faster than the shell reads them under qemu TCG were lost.
run_in_box() {
  (sleep 0.5; printf '%s\n' "$2"; sleep "$1") |
    timeout $(( $1 + 20 )) socat -t 3 - "UNIX-CONNECT:$DEBUG_SOCKET" 2>/dev/null |
    tr -d '\r' | sed 's|^/ # ||' || true
}

main() {
  mkdir -p "$WORK"
  WORK="$(cd "$WORK" && pwd)"
  DEBUG_SOCKET="$WORK/debug.sock"
  command -v socat >/dev/null || fail "socat is needed to reach the debug shell (apt-get install socat)"
  # qemu's -chardev option splits at commas, and a socket path has room for 107 bytes.
  [[ "$DEBUG_SOCKET" != *[,\ ]* && ${#DEBUG_SOCKET} -lt 100 ]] ||
    fail "use a short work directory without spaces or commas: $WORK"
  trap cleanup EXIT
  setup_lan
  prepare_disk "systemd.debug_shell=ttyS1"
  start_vm
  local secs
  secs="$(wait_http "$BOOT_DEADLINE")" || fail "no HTTP answer within ${BOOT_DEADLINE}s"
  log "HTTP answered ${secs}s after power-on; idling 60 s"
  sleep 60
  run_in_box 2 "stty -echo" >/dev/null
  [[ "$(run_in_box 3 "echo debug-shell-answers")" == *debug-shell-answers* ]] ||
    fail "the debug shell on the second serial port did not answer (see $WORK/serial.log)"
  {
    echo "# boot to HTTP: ${secs} s"
    echo "# memory"
    run_in_box 4 "awk '/^MemTotal/ {t = \$2} /^MemAvailable/ {a = \$2} END {print \"in use (MemTotal - MemAvailable):\", int((t - a) / 1024), \"MiB\"}' /proc/meminfo"
    run_in_box 4 "grep -E '^(MemTotal|MemFree|MemAvailable|Buffers|Cached|Shmem|Slab|SReclaimable|SUnreclaim|AnonPages):' /proc/meminfo"
    echo "# processes by resident memory (KiB)"
    run_in_box 10 "awk '/^Name/ {n = \$2} /^VmRSS/ {print \$2, n}' /proc/[0-9]*/status | sort -rn | head -12"
    echo "# systemd"
    run_in_box 12 "systemd-analyze time; systemd-analyze critical-chain --no-pager homelabd.service; systemd-analyze blame --no-pager | head -15"
    echo "# rauc"
    run_in_box 6 "rauc status --detailed --output-format=json"
    echo "# root filesystem"
    run_in_box 20 "du -x -k -d 3 / 2>/dev/null | sort -rn | head -25"
  } | tee "$WORK/measured.txt"
}

main "$@"
