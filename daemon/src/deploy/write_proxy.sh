#!/bin/sh
# Writes Homelab's proxy files into its folder: first $2 bytes of Compose file, then the
# proxy's starting configuration, both arriving on stdin. The folder and its admin, config and
# data folders are private to the device login (the admin socket inside must not be reachable
# by anyone else on the device); the folder is created with sudo when the login cannot, and
# sudo needs no password. Files are written atomically (temp file + rename).
# $1 the proxy folder, $2 the size of the Compose file in bytes.
# Prints created or existed (the folder), or cannot-create / cannot-write on failure.
d=$1
if [ -d "$d" ]; then made=existed
elif mkdir -p "$d" 2>/dev/null || { sudo -n mkdir -p "$d" && sudo -n chown "$(id -u):$(id -g)" "$d"; } 2>/dev/null; then made=created
else echo cannot-create; exit 3; fi
umask 077
if chmod 700 "$d" && mkdir -p "$d/admin" "$d/config" "$d/data" \
  && chmod 700 "$d/admin" "$d/config" "$d/data" \
  && head -c "$2" > "$d/.compose.yaml.tmp" && cat > "$d/.caddy.json.tmp" \
  && chmod 644 "$d/.compose.yaml.tmp" \
  && mv -f "$d/.compose.yaml.tmp" "$d/compose.yaml" && mv -f "$d/.caddy.json.tmp" "$d/caddy.json"; then
  echo "$made"; exit 0
fi
rm -f "$d/.compose.yaml.tmp" "$d/.caddy.json.tmp"
echo cannot-write; exit 4
