#!/bin/sh
# Writes an app's files into its folder: first $2 bytes of Compose file, then $3 bytes of
# the override that joins it to Homelab's proxy, then $4 bytes of the one that joins it to the
# device's shared database (0: the app has none, and an old one goes), then the env file, all
# arriving on stdin. The folder is created if needed (with sudo when the login
# cannot, and sudo needs no password); each file is written atomically (temp file + rename
# in the same folder), the env file readable by the login only.
# $1 the app folder, $2 the size of the Compose file in bytes, $3 and $4 the overrides' sizes.
# Prints created or existed (the folder), or cannot-create / cannot-write on failure.
d=$1
if [ -d "$d" ]; then made=existed
elif mkdir -p "$d" 2>/dev/null || { sudo -n mkdir -p "$d" && sudo -n chown "$(id -u):$(id -g)" "$d"; } 2>/dev/null; then made=created
else echo cannot-create; exit 3; fi
umask 077
if head -c "$2" > "$d/.compose.yaml.tmp" && head -c "$3" > "$d/.compose.proxy.yaml.tmp" \
  && head -c "$4" > "$d/.compose.pool.yaml.tmp" && cat > "$d/.app.env.tmp" \
  && chmod 644 "$d/.compose.yaml.tmp" "$d/.compose.proxy.yaml.tmp" "$d/.compose.pool.yaml.tmp" \
  && chmod 600 "$d/.app.env.tmp" \
  && mv -f "$d/.compose.yaml.tmp" "$d/compose.yaml" && mv -f "$d/.app.env.tmp" "$d/app.env"; then
  if [ "$3" -gt 0 ]; then mv -f "$d/.compose.proxy.yaml.tmp" "$d/compose.proxy.yaml"
  else rm -f "$d/.compose.proxy.yaml.tmp" "$d/compose.proxy.yaml"; fi
  if [ "$4" -gt 0 ]; then mv -f "$d/.compose.pool.yaml.tmp" "$d/compose.pool.yaml"
  else rm -f "$d/.compose.pool.yaml.tmp" "$d/compose.pool.yaml"; fi
  echo "$made"; exit 0
fi
rm -f "$d/.compose.yaml.tmp" "$d/.compose.proxy.yaml.tmp" "$d/.compose.pool.yaml.tmp" "$d/.app.env.tmp"
echo cannot-write; exit 4
