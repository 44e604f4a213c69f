#!/bin/sh
# Fails when a defconfig asks for something the generated .config does not have: an unknown
# symbol or one whose dependencies are not met (Kconfig drops both silently).
# Usage: check-defconfig.sh DEFCONFIG DOTCONFIG
set -eu

check() {
  defconfig="${1:?defconfig}"; dotconfig="${2:?.config}"; bad=0
  while IFS= read -r line; do
    case "$line" in
      BR2_*=*) grep -qxF "$line" "$dotconfig" || { echo "$defconfig: not in the result: $line"; bad=1; } ;;
      "# BR2_"*" is not set") grep -qxF "$line" "$dotconfig" || { echo "$defconfig: not unset in the result: $line"; bad=1; } ;;
    esac
  done < "$defconfig"
  [ "$bad" -eq 0 ] && echo "$defconfig: every line resolved"
  return "$bad"
}

check "$@"
