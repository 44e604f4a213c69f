#!/bin/sh
# Adds a public key line to ~/.ssh/authorized_keys unless it is already there (creating the
# folder and file, readable by the login only, when missing).
# $1 the key line.
set -e
umask 077
mkdir -p "$HOME/.ssh"
touch "$HOME/.ssh/authorized_keys"
grep -qxF "$1" "$HOME/.ssh/authorized_keys" || printf '%s\n' "$1" >> "$HOME/.ssh/authorized_keys"
