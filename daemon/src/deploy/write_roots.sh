#!/bin/sh
# Writes the public authority's root certificates (stdin) into the proxy's config folder, where
# the proxy reads them to trust the authority's address. Written atomically (temp file +
# rename), private to the device login like the rest of the folder; an empty stdin removes the
# file (the authority is public again). $1 the proxy's config folder, $2 the file's name.
# Prints written or removed, or cannot-write on failure.
d=$1
f=$2
umask 077
if [ ! -d "$d" ]; then echo cannot-write; exit 4; fi
if cat > "$d/.$f.tmp"; then
  if [ -s "$d/.$f.tmp" ]; then
    mv -f "$d/.$f.tmp" "$d/$f" && { echo written; exit 0; }
  else
    rm -f "$d/.$f.tmp" "$d/$f" && { echo removed; exit 0; }
  fi
fi
rm -f "$d/.$f.tmp"
echo cannot-write; exit 4
