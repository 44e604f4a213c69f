#!/bin/sh
# Adds a public key line to ~/.ssh/authorized_keys unless it is already there (creating the
# folder and file, readable by the login only, when missing), or removes exactly that line,
# keeping every other line and the file's mode (the file is rewritten in place, not replaced).
# $1 add | remove, $2 the key line.
set -e
umask 077
f="$HOME/.ssh/authorized_keys"
if [ "$1" = remove ] && [ ! -f "$f" ]; then exit 0; fi
mkdir -p "$HOME/.ssh"
# One edit of the file at a time: a removal rewrites the whole file, so an edit between its
# read and its write would be lost or undone (seen when two devices on one login were added
# and removed together). A lock left by a killed edit is taken over after about 5 s.
lock="$HOME/.ssh/.homelab-keys.lock"
tries=0
until mkdir "$lock" 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 50 ] || break
  sleep 0.1
done
trap 'rmdir "$lock" 2>/dev/null || true' EXIT
case "$1" in
  add)
    touch "$f"
    grep -qxF "$2" "$f" || printf '%s\n' "$2" >> "$f"
    ;;
  remove)
    tmp="$(mktemp "$HOME/.ssh/.authorized_keys.XXXXXX")"
    grep -vxF "$2" "$f" > "$tmp" || true
    cat "$tmp" > "$f"
    rm -f "$tmp"
    ;;
  *)
    echo "authorized_key.sh: add or remove, not '$1'" >&2
    exit 2
    ;;
esac
