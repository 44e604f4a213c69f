#!/bin/sh
# Stand-in for Home Assistant. NOT VERIFIED: research-15/home-assistant.md was not written when
# this was; behaviour as the issue and the recipe describe it: the device's own network,
# port 8123, /manifest.json → 200, the first account in its onboarding page.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh

start() {
  stop_on_term
  listen 8123
  wait
}

handle() {
  read_request
  case "$METHOD $REQ_PATH" in
    "GET /manifest.json") json 200 OK '{"name":"Home Assistant","short_name":"Assistant","start_url":"/?homescreen=1"}' ;;
    "GET /api/onboarding") json 200 OK '[{"step":"user","done":false}]' ;;
    "GET /" | "GET /onboarding.html") html 200 OK '<!DOCTYPE html><title>Home Assistant</title>' ;;
    *) not_found ;;
  esac
}

"$@"
