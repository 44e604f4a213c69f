#!/usr/bin/env bash
# The boot-side half of updates, overlay/usr/libexec/homelab/mark-good, against real
# bootloader environments: a GRUB environment block (grub-editenv) and a U-Boot environment
# (mkenvimage, read and written by u-boot-tools' fw_printenv/fw_setenv through a config that
# names the file, as the Raspberry Pi image's /etc/fw_env.config names its uboot.env).
#
#   tests/image/mark-good-test.sh
#
# Checked for both: a healthy daemon marks its slot good; an unhealthy one on a slot being
# tried restarts the box when the other slot can boot, and stays up when it cannot (a new
# card, a slot RAUC took out of the order, no attempts left). Only `systemctl` is stood in
# for (the restart itself is the kernel's business); the daemon's health check is a script
# that answers as told.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
MARK_GOOD="$HERE/../../overlay/usr/libexec/homelab/mark-good"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

log() { echo "mark-good-test: $*"; }
fail() { log "FAIL: $*"; exit 1; }

# Only the tools mark-good is meant to use are on its PATH (so the machine's own rauc, if
# any, is not), plus the two stand-ins.
bin="$WORK/bin"
mkdir -p "$bin"
for tool in sh cat sed sleep sync grub-editenv fw_printenv fw_setenv; do
  path="$(command -v "$tool")" || fail "$tool is needed (grub-common, u-boot-tools)"
  ln -s "$path" "$bin/$tool"
done
cat > "$bin/systemctl" <<EOF
#!/bin/sh
echo "\$*" >> "$WORK/systemctl.log"
EOF
cat > "$WORK/homelabd" <<EOF
#!/bin/sh
[ -f "$WORK/healthy" ]
EOF
chmod +x "$bin/systemctl" "$WORK/homelabd"

# run SLOT HEALTHY(yes|no): runs mark-good; leaves its output in $WORK/out, its status in $rc.
run() {
  echo "rauc.slot=$1 homelab.healthy_within=1 quiet" > "$WORK/cmdline"
  if [[ "$2" == yes ]]; then touch "$WORK/healthy"; else rm -f "$WORK/healthy"; fi
  rm -f "$WORK/systemctl.log"
  set +e
  env -i PATH="$bin" HOMELAB_CMDLINE="$WORK/cmdline" HOMELABD="$WORK/homelabd" \
    HOMELAB_GRUBENV="$GRUBENV" FW_ENV_CONFIG="$WORK/fw_env.config" \
    sh "$MARK_GOOD" > "$WORK/out" 2>&1
  rc=$?
  set -e
}
restarted() { grep -qx reboot "$WORK/systemctl.log" 2>/dev/null; }
said() { grep -q "$1" "$WORK/out" || fail "mark-good did not say '$1': $(cat "$WORK/out")"; }

# --- U-Boot (Raspberry Pi) ------------------------------------------------------------
GRUBENV="$WORK/no-grubenv"
uboot_env() { # uboot_env VAR=VALUE…: a fresh environment holding just these
  printf '%s\n' "$@" | mkenvimage -s 0x4000 -o "$WORK/uboot.env" -
  echo "$WORK/uboot.env 0x0000 0x4000" > "$WORK/fw_env.config"
}
uboot_var() { fw_printenv -c "$WORK/fw_env.config" -n "$1"; }

uboot_env "BOOT_ORDER=B A" BOOT_A_LEFT=3 BOOT_B_LEFT=2
run B yes
[[ $rc == 0 ]] || fail "healthy on U-Boot: exit $rc: $(cat "$WORK/out")"
said "boot slot B marked good"
[[ "$(uboot_var BOOT_B_LEFT)" == 3 ]] || fail "U-Boot: B's attempts were not reset: $(uboot_var BOOT_B_LEFT)"
restarted && fail "U-Boot: a healthy slot restarted the box"
log "ok: U-Boot: a healthy slot is marked good (BOOT_B_LEFT=3)"

uboot_env "BOOT_ORDER=B A" BOOT_A_LEFT=3 BOOT_B_LEFT=2
run B no
[[ $rc == 1 ]] || fail "unhealthy on U-Boot: exit $rc"
restarted || fail "U-Boot: an unhealthy updated slot did not restart the box: $(cat "$WORK/out")"
said "restarting to fall back to slot A"
[[ "$(uboot_var BOOT_B_LEFT)" == 2 ]] || fail "U-Boot: the failed slot was marked good"
log "ok: U-Boot: an unhealthy slot restarts the box toward slot A"

for case in "BOOT_ORDER=A|a new card (B holds nothing)" "BOOT_ORDER=B|slot A taken out of the order" \
            "BOOT_ORDER=B A|slot A has no attempts left"; do
  order="${case%%|*}"
  left=3
  [[ "$case" == *"no attempts"* ]] && left=0
  uboot_env "$order" "BOOT_A_LEFT=$left" BOOT_B_LEFT=2
  run B no
  if [[ "$order" == BOOT_ORDER=A ]]; then
    uboot_env "$order" BOOT_A_LEFT=2 BOOT_B_LEFT=3
    run A no
  fi
  [[ $rc == 1 ]] || fail "U-Boot, ${case#*|}: exit $rc"
  restarted && fail "U-Boot, ${case#*|}: the box was restarted with nowhere to go: $(cat "$WORK/out")"
  said "cannot be started instead"
  log "ok: U-Boot: ${case#*|}: the box stays up"
done

# --- GRUB (UEFI boards, the stand-in) -------------------------------------------------
rm -f "$WORK/fw_env.config"
GRUBENV="$WORK/grubenv"
grub_env() { rm -f "$GRUBENV"; grub-editenv "$GRUBENV" create; grub-editenv "$GRUBENV" set "$@"; }
grub_var() { grub-editenv "$GRUBENV" list | sed -n "s/^$1=//p"; }

grub_env "ORDER=B A" A_OK=1 A_TRY=0 B_OK=1 B_TRY=1
run B yes
[[ $rc == 0 ]] || fail "healthy on GRUB: exit $rc: $(cat "$WORK/out")"
[[ "$(grub_var B_OK) $(grub_var B_TRY)" == "1 0" ]] || fail "GRUB: B not marked good"
log "ok: GRUB: a healthy slot is marked good (B_OK=1 B_TRY=0)"

grub_env "ORDER=B A" A_OK=1 A_TRY=0 B_OK=1 B_TRY=1
run B no
restarted || fail "GRUB: an unhealthy updated slot did not restart the box: $(cat "$WORK/out")"
said "restarting to fall back to slot A"
log "ok: GRUB: an unhealthy slot restarts the box toward slot A"

grub_env "ORDER=A B" A_OK=1 A_TRY=1 B_OK=0 B_TRY=0
run A no
restarted && fail "GRUB: a new card was restarted with nowhere to go: $(cat "$WORK/out")"
said "cannot be started instead"
log "ok: GRUB: a new card (B holds nothing) stays up"
