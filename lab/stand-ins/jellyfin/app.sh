#!/bin/sh
# Stand-in for Jellyfin 10.11.11: GET /health → 200 "Healthy" (Jellyfin.Server/Startup.cs), but
# while it starts or migrates a library a setup server answers /health with 200 "Degraded" and
# everything else with 503 (Jellyfin.Server/ServerSetupApp/SetupServer.cs). Here the first
# DEGRADED answers to /health are "Degraded", counted rather than timed: a check that reads only
# the status calls the app up at once, and the lab test then finds it still "Degraded".
# / → 302 web/ (relative, BaseUrlRedirectionMiddleware.cs); the startup wizard is open until
# finished.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh

# How many /health answers the setup server gives before the app is up.
DEGRADED=3
COUNT=/tmp/standin-health-asked

start() {
  stop_on_term
  : > "$COUNT"
  listen 8096
  wait
}

handle() {
  read_request
  if [ "$(wc -c < "$COUNT")" -lt "$DEGRADED" ]; then
    case "$REQ_PATH" in
      /health) printf . >> "$COUNT"; respond 200 OK Degraded 'Content-Type: text/plain' ;;
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
