#!/bin/sh
# Writes a private authority's root certificates (stdin) into the proxy's config folder, where
# the proxy reads them to trust the authority's address. Written atomically (a temp file of its
# own + rename), private to the device login like the rest of the folder. The file is never
# removed: a policy that names it must always find it. $1 the proxy's config folder, $2 the
# file's name. Prints written, or cannot-write on failure.
d=$1
f=$2
umask 077
[ -d "$d" ] || { echo cannot-write; exit 4; }
t=$(mktemp "$d/.$f.XXXXXX") || { echo cannot-write; exit 4; }
if cat > "$t" && [ -s "$t" ] && mv -f "$t" "$d/$f"; then echo written; exit 0; fi
rm -f "$t"
echo cannot-write; exit 4
