#!/bin/sh
# Stand-in for Home Assistant, as observed on homeassistant 2024.3.3 from PyPI (core's repository
# could not be fetched): /manifest.json 200 from the first start, / → 302 /onboarding.html until
# onboarding is done, GET /api/onboarding lists its steps.
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
    # Until the owner finishes onboarding, / sends them there (frontend/__init__.py).
    "GET /") redirect 302 /onboarding.html ;;
    "GET /onboarding.html") html 200 OK '<!DOCTYPE html><title>Home Assistant</title>' ;;
    *) not_found ;;
  esac
}

"$@"
