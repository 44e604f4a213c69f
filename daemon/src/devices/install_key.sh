#!/bin/sh
# Adds a public key line to ~/.ssh/authorized_keys unless it is already there (creating the
# folder and file, readable by the login only, when missing).
# $1 the key line.
set -e
umask 077
mkdir -p "$HOME/.ssh"
# One edit of the file at a time (see remove_key.sh: a removal rewrites the whole file, so an
# edit between its read and its write would be lost or undone). A lock left by a killed edit
# is taken over after about 5 s.
lock="$HOME/.ssh/.homelab-keys.lock"
tries=0
until mkdir "$lock" 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 50 ] || break
  sleep 0.1
done
trap 'rmdir "$lock" 2>/dev/null || true' EXIT
touch "$HOME/.ssh/authorized_keys"
grep -qxF "$1" "$HOME/.ssh/authorized_keys" || printf '%s\n' "$1" >> "$HOME/.ssh/authorized_keys"
