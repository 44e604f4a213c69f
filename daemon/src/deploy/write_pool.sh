#!/bin/sh
# Writes a shared database's files into its folder: first $2 bytes of Compose file, then $3
# bytes of superuser password, then the client settings file holding it (MariaDB's), all on
# stdin. The folder is private to the device login (it holds the password); the two password
# files are read-only and readable inside the container by the server's own user, which is
# not the login's uid (the folder keeps everyone else on the device out). The folder is made
# with sudo when the login cannot, and sudo needs no password. Files are written atomically.
# $1 the folder, $2 the Compose file's size, $3 the password's size.
# Prints created or existed (the folder), or cannot-create / cannot-write on failure.
d=$1
if [ -d "$d" ]; then made=existed
elif mkdir -p "$d" 2>/dev/null || { sudo -n mkdir -p "$d" && sudo -n chown "$(id -u):$(id -g)" "$d"; } 2>/dev/null; then made=created
else echo cannot-create; exit 3; fi
umask 077
if chmod 700 "$d" && head -c "$2" > "$d/.compose.yaml.tmp" && head -c "$3" > "$d/.superuser.tmp" \
  && cat > "$d/.client.cnf.tmp" \
  && chmod 644 "$d/.compose.yaml.tmp" && chmod 444 "$d/.superuser.tmp" "$d/.client.cnf.tmp" \
  && mv -f "$d/.compose.yaml.tmp" "$d/compose.yaml" && mv -f "$d/.superuser.tmp" "$d/superuser" \
  && mv -f "$d/.client.cnf.tmp" "$d/client.cnf"; then
  echo "$made"; exit 0
fi
rm -f "$d/.compose.yaml.tmp" "$d/.superuser.tmp" "$d/.client.cnf.tmp"
echo cannot-write; exit 4
