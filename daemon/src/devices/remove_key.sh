#!/bin/sh
# Removes exactly one line from ~/.ssh/authorized_keys, keeping every other line and the
# file's mode (the file is rewritten in place, not replaced).
# $1 the key line.
set -e
f="$HOME/.ssh/authorized_keys"
[ -f "$f" ] || exit 0
tmp="$(mktemp "$HOME/.ssh/.authorized_keys.XXXXXX")"
grep -vxF "$1" "$f" > "$tmp" || true
cat "$tmp" > "$f"
rm -f "$tmp"
