#!/bin/sh
# Stand-in for immich-server. NOT VERIFIED: research-15/immich.md was not written when this was;
# behaviour as the issue describes it (GET /api/server/ping → {"res":"pong"}).
# The first admin signs up in its own page (/auth/register); not reproduced beyond the page.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh

start() {
  stop_on_term
  listen "${IMMICH_PORT:-2283}"
  wait
}

handle() {
  read_request
  case "$METHOD $REQ_PATH" in
    "GET /api/server/ping") json 200 OK '{"res":"pong"}' ;;
    "GET /api/server/config") json 200 OK '{"isInitialized":false,"isOnboarded":false}' ;;
    GET\ * | HEAD\ *) html 200 OK '<!DOCTYPE html><title>Immich</title>' ;;
    *) not_found ;;
  esac
}

"$@"
