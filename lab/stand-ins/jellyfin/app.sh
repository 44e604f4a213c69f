#!/bin/sh
# Stand-in for Jellyfin. NOT VERIFIED: research-15/jellyfin.md was not written when this was;
# behaviour as the issue describes it (GET /health → 200 "Healthy"), / → the web client, the
# first account in its startup wizard.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh

start() {
  stop_on_term
  listen 8096
  wait
}

handle() {
  read_request
  case "$METHOD $REQ_PATH" in
    "GET /health" | "HEAD /health") respond 200 OK Healthy 'Content-Type: text/plain' ;;
    "GET /" | "HEAD /") redirect 302 web/ ;;
    "GET /System/Info/Public") json 200 OK '{"ProductName":"Jellyfin Server","StartupWizardCompleted":false}' ;;
    "GET /web/"*) html 200 OK '<!DOCTYPE html><title>Jellyfin</title>' ;;
    *) not_found ;;
  esac
}

"$@"
