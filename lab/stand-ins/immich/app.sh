#!/bin/sh
# Stand-in for immich-server, from single stored upstream files (the repository could not be
# fetched): GET /api/server/ping → 200 {"res":"pong"} (server.controller.ts @ 06c83fa6), and the
# first admin signs up at POST /api/auth/admin-sign-up, open until one exists, 400 after
# (auth.controller.ts @ 0466086b). Refuses to start without its database password.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh

ADMIN=/data/standin-admin

start() {
  stop_on_term
  [ -n "${DB_PASSWORD:-}" ] || { echo "DB_PASSWORD is not set" >&2; exit 1; }
  mkdir -p /data
  listen "${IMMICH_PORT:-2283}"
  wait
}

handle() {
  read_request
  case "$METHOD $REQ_PATH" in
    "GET /api/server/ping") json 200 OK '{"res":"pong"}' ;;
    "POST /api/auth/admin-sign-up")
      if [ -e "$ADMIN" ]; then
        json 400 "Bad Request" '{"message":"The server already has an admin","error":"Bad Request","statusCode":400}'
      else
        json_string email > "$ADMIN"
        json 201 Created "{\"email\":\"$(cat "$ADMIN")\",\"isAdmin\":true}"
      fi ;;
    "GET /api/server/config") json 200 OK '{"isInitialized":false,"isOnboarded":false}' ;;
    GET\ * | HEAD\ *) html 200 OK '<!DOCTYPE html><title>Immich</title>' ;;
    *) not_found ;;
  esac
}

"$@"
