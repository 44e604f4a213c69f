#!/bin/sh
# Removes an app folder and everything in it (with sudo when the login cannot, and sudo
# needs no password); refuses anything that is not at least two levels deep. A folder
# already gone is fine.
# $1 the app folder.
case "$1" in /?*/?*) ;; *) echo "refusing to remove $1" >&2; exit 2 ;; esac
[ -e "$1" ] || exit 0
rm -rf -- "$1" 2>/dev/null || sudo -n rm -rf -- "$1"
