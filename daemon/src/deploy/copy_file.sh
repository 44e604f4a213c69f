#!/bin/sh
# Copies a file within a folder if it exists (an update keeps the previous files this way).
# $1 the folder, $2 the file to copy, $3 the name of the copy.
[ -f "$1/$2" ] || exit 0
cp -p -- "$1/$2" "$1/$3"
