# A/B boot with attempt counting, in RAUC's U-Boot conventions so RAUC can drive it:
#   BOOT_ORDER     slots in order of preference ("B A" once B holds an update)
#   BOOT_<s>_LEFT  boot attempts left for slot s; RAUC resets it when the slot is marked good
# Each boot of a slot spends one attempt; a slot with none left is skipped, so a system that
# never gets marked good falls back after three tries. With no attempts left anywhere, both
# counters are reset rather than leaving the box unbootable.

# A new card boots A only: B holds no system until RAUC installs one and puts it in the order
# (as GRUB's B_OK=0 on the UEFI boards), so running out of attempts on A never tries an empty B.
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3

setenv slot
for s in ${BOOT_ORDER}; do
  if test -z "${slot}"; then
    if test "${s}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      setenv slot A; setenv rootpart 2
      setenv rootuuid 421462e5-9344-4502-b92e-0c3289f82b41
    elif test "${s}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      setenv slot B; setenv rootpart 3
      setenv rootuuid 3e6d4d4d-655a-4609-b956-ef65d29dd482
    fi
  fi
done

if test -z "${slot}"; then
  echo "No slot has boot attempts left; resetting the counters and starting over."
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
  saveenv
  reset
fi
saveenv

setenv bootargs "root=PARTUUID=${rootuuid} rootfstype=squashfs ro rootwait console=tty1 console=ttyS0,115200 systemd.volatile=state rauc.slot=${slot} quiet panic=10"
load mmc 0:${rootpart} ${kernel_addr_r} /boot/Image
booti ${kernel_addr_r} - ${fdt_addr}
