#!/bin/sh
# Stand-in for Portainer CE, read at 2.21.4 (the newest tag in the snapshot; the pin's 2.39.3 is
# known from release pull requests only): HTTPS on 9443 with a self-signed certificate made for
# it; /api/status public and always 200 (api/http/handler/system/handler.go); the first admin
# "admin" from --admin-password, a bcrypt hash, when there is none (api/cmd/portainer/main.go);
# /api/users/admin/check 204 once an admin exists, 404 before (users/admin_check.go); sign-in
# at POST /api/auth {Username, Password} (auth/handler.go; the refusal's status was not read
# there, 422 is what its handler returns for bad credentials). TLS comes from socat (busybox
# has no TLS server); each connection runs `handle`.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh
ADMIN=/data/standin-admin-hash

start() {
  stop_on_term
  mkdir -p /data
  while [ $# -gt 0 ]; do
    case $1 in
      --admin-password) [ -s "$ADMIN" ] || printf %s "$2" > "$ADMIN"; shift 2 ;;
      --http-disabled) shift ;;
      *) echo "unknown flag: $1" >&2; exit 1 ;;
    esac
  done
  socat "OPENSSL-LISTEN:9443,fork,reuseaddr,cert=/standin/tls.pem,verify=0" \
    "EXEC:/bin/sh /standin/app.sh handle" &
  wait
}

handle() {
  read_request
  case "$METHOD $REQ_PATH" in
    "GET /" | "HEAD /") html 200 OK '<!DOCTYPE html><title>Portainer</title>' ;;
    "GET /api/status" | "GET /api/system/status") json 200 OK '{"Version":"2.39.3"}' ;;
    "GET /api/users/admin/check")
      if [ -s "$ADMIN" ]; then respond 204 "No Content" ""; else json 404 "Not Found" '{"message":"No administrator account found inside the database"}'; fi ;;
    "POST /api/auth")
      user=$(json_string Username) pass=$(json_string Password)
      if [ "$user" = admin ] && [ -s "$ADMIN" ] && printf %s "$pass" | hash-verify "$(cat "$ADMIN")"; then
        json 200 OK "{\"jwt\":\"$(token)\"}"
      else
        json 422 "Unprocessable Entity" '{"message":"Invalid credentials"}'
      fi ;;
    *) not_found ;;
  esac
}

"$@"
