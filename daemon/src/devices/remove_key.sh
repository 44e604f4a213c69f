#!/bin/sh
# Removes exactly one line from ~/.ssh/authorized_keys, keeping every other line and the
# file's mode (the file is rewritten in place, not replaced).
# $1 the key line.
set -e
f="$HOME/.ssh/authorized_keys"
[ -f "$f" ] || exit 0
# One edit of the file at a time: two removals at once would each write back the other's
# line (seen when two devices on one login were removed together). A lock left by a killed
# edit is taken over after about 5 s.
lock="$HOME/.ssh/.homelab-keys.lock"
tries=0
until mkdir "$lock" 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 50 ] || break
  sleep 0.1
done
trap 'rmdir "$lock" 2>/dev/null || true' EXIT
tmp="$(mktemp "$HOME/.ssh/.authorized_keys.XXXXXX")"
grep -vxF "$1" "$f" > "$tmp" || true
cat "$tmp" > "$f"
rm -f "$tmp"
