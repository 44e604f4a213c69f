#!/bin/sh
# Stand-in for Portainer CE. NOT VERIFIED: research-15/portainer.md was not written when this
# was; behaviour as the issue describes it: HTTPS on 9443 with a self-signed certificate made
# for it. TLS comes from socat (busybox has no TLS server); each connection runs `handle`.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh

start() {
  stop_on_term
  socat "OPENSSL-LISTEN:9443,fork,reuseaddr,cert=/standin/tls.pem,verify=0" \
    "EXEC:/bin/sh /standin/app.sh handle" &
  wait
}

handle() {
  read_request
  case "$METHOD $REQ_PATH" in
    "GET /" | "HEAD /") html 200 OK '<!DOCTYPE html><title>Portainer</title>' ;;
    "GET /api/system/status" | "GET /api/status") json 200 OK '{"Version":"2.21.4"}' ;;
    *) not_found ;;
  esac
}

"$@"
