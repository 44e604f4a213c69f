#!/bin/sh
# Stand-in for Uptime Kuma 2.5.3 (louislam/uptime-kuma), as read in /work/research-15:
# - server/setup-database.js @ 2.5.3 start(): with no database chosen (no data/db-config.json,
#   no kuma.db, no UPTIME_KUMA_DB_TYPE) a temporary server asks for one first;
# - server/server.js @ 2.5.3 l.264-285, 355, 380-386 and server/routers/api-router.js l.28-45:
#   the main server redirects / to /dashboard, answers /api/entry-page, guards /metrics with
#   Basic auth, and serves its page for every other path.
# The first account is made over socket.io only (server.js l.705-730): not reproduced, so
# /metrics refuses every password here, as upstream does before an account exists.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh
DATA=/app/data

start() {
  stop_on_term
  mkdir -p "$DATA"
  # setup-database.js l.84-111: an old kuma.db means SQLite; UPTIME_KUMA_DB_TYPE chooses up front.
  if [ ! -f "$DATA/db-config.json" ]; then
    if [ -f "$DATA/kuma.db" ]; then
      echo '{"type":"sqlite"}' > "$DATA/db-config.json"
    elif [ -n "${UPTIME_KUMA_DB_TYPE:-}" ]; then
      printf '{"type":"%s"}\n' "$UPTIME_KUMA_DB_TYPE" > "$DATA/db-config.json"
    fi
  fi
  listen "${UPTIME_KUMA_PORT:-${PORT:-3001}}"
  wait
}

page='<!DOCTYPE html><html><head><title>Uptime Kuma</title></head><body><div id="app"></div></body></html>'

handle() {
  read_request
  if [ ! -f "$DATA/db-config.json" ]; then
    case "$METHOD $REQ_PATH" in
      "GET /") redirect 302 /setup-database ;;
      "GET /setup-database-info") json 200 OK '{"runningSetup":false,"needSetup":true,"isEnabledEmbeddedMariaDB":false,"isEnabledMariaDBSocket":false}' ;;
      "GET /api/entry-page") json 200 OK '{"type":"setup-database"}' ;;
      "POST /setup-database")
        type=$(json_string type)
        [ -n "$type" ] || { json 400 "Bad Request" '{"ok":false}'; return; }
        printf '{"type":"%s"}\n' "$type" > "$DATA/db-config.json"
        json 200 OK '{"ok":true}' ;;
      *) html 200 OK "$page" ;;
    esac
    return
  fi
  case "$METHOD $REQ_PATH" in
    "GET /" | "HEAD /") redirect 302 /dashboard ;;
    "GET /api/entry-page") json 200 OK '{"type":"entryPage","entryPage":"dashboard"}' ;;
    "GET /metrics") respond 401 Unauthorized "" 'WWW-Authenticate: Basic realm="Application"' ;;
    GET* | HEAD*) html 200 OK "$page" ;;
    *) not_found ;;
  esac
}

"$@"
