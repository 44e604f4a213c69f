#!/bin/sh
# Reads the system and what this login may do, one answer a line: os-release's ID, ID_LIKE
# and PRETTY_NAME, then root, sudo (without a password), sudo-password or none.
# No parameters.
# os-release is the device's own file, read there: nothing to follow here.
# shellcheck disable=SC1091
[ -r /etc/os-release ] && . /etc/os-release
echo "${ID:-}"
echo "${ID_LIKE:-}"
echo "${PRETTY_NAME:-unknown Linux}"
if [ "$(id -u)" = 0 ]; then echo root
elif ! command -v sudo >/dev/null 2>&1; then echo none
elif sudo -n true 2>/dev/null; then echo sudo
else echo sudo-password; fi
