#!/bin/sh
# Stand-in for Jellyfin 10.11.11: GET /health → 200 "Healthy" (Jellyfin.Server/Startup.cs), but
# for its first seconds a setup server answers /health with 200 "Degraded" and everything else
# with 503 (Jellyfin.Server/ServerSetupApp/SetupServer.cs), as while it migrates a library: a
# check that reads only the status would call it up too early. / → 302 web/ (relative,
# BaseUrlRedirectionMiddleware.cs); the startup wizard is open until finished.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh

# How long the setup server answers after a start, in seconds.
SETTING_UP=4

start() {
  stop_on_term
  date +%s > /tmp/standin-started
  listen 8096
  wait
}

handle() {
  read_request
  if [ $(($(date +%s) - $(cat /tmp/standin-started))) -lt "$SETTING_UP" ]; then
    case "$REQ_PATH" in
      /health) respond 200 OK Degraded 'Content-Type: text/plain' ;;
      *) respond 503 "Service Unavailable" "Jellyfin is starting" 'Retry-After: 5' ;;
    esac
    return
  fi
  case "$METHOD $REQ_PATH" in
    "GET /health" | "HEAD /health") respond 200 OK Healthy 'Content-Type: text/plain' ;;
    "GET /" | "HEAD /") redirect 302 web/ ;;
    "GET /System/Info/Public") json 200 OK '{"ProductName":"Jellyfin Server","StartupWizardCompleted":false}' ;;
    "GET /web/"*) html 200 OK '<!DOCTYPE html><title>Jellyfin</title>' ;;
    *) not_found ;;
  esac
}

"$@"
