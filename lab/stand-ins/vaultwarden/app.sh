#!/bin/sh
# Stand-in for Vaultwarden 1.37.2 (dani-garcia/vaultwarden), as read in /work/research-15:
# - src/config.rs @ 1.37.2 l.996-1001: DOMAIN must start with http:// or https:// or it does not
#   start; l.1270-1282: an ADMIN_TOKEN that is not a valid Argon2 PHC string is a start error,
#   a plain one works with a warning;
# - src/main.rs @ 1.37.2 launch_rocket l.584-593: a path in DOMAIN is where everything lives;
# - src/api/web.rs @ 1.37.2 l.152-170, 243-252: GET/HEAD /alive → 200 with the time as a JSON
#   string, / → 200 page, /index.html → 303 to /;
# - src/api/admin.rs @ 1.37.2 l.41-44, 100-103, 145-226: /admin is disabled text without a
#   token; POST /admin with token=… → 200 and a VW_ADMIN cookie, a wrong token → 401.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh

# The mount base: the path part of DOMAIN ("https://h:8443/vw" → "/vw"), else nothing.
base_path() {
  rest=${DOMAIN#*://}
  case $rest in */*) p="/${rest#*/}"; echo "${p%/}" ;; esac
}

start() {
  stop_on_term
  case ${DOMAIN:-http://localhost} in
    http://* | https://*) ;;
    *) echo "DOMAIN variable needs to contain the protocol (http, https). Use 'http[s]://bw.example.com' instead of 'bw.example.com'" >&2; exit 1 ;;
  esac
  case ${ADMIN_TOKEN:-} in
    '') ;;
    \$argon2*)
      printf '' | hash-verify "$ADMIN_TOKEN"
      [ $? -ne 2 ] || { echo "[ERROR] ADMIN_TOKEN is not a valid Argon2 PHC string" >&2; exit 1; } ;;
    *) echo "[NOTICE] You are using a plain text ADMIN_TOKEN which is insecure." >&2 ;;
  esac
  listen "${ROCKET_PORT:-80}"
  wait
}

token_ok() {
  case $ADMIN_TOKEN in
    \$argon2*) printf %s "$1" | hash-verify "$ADMIN_TOKEN" ;;
    *) [ -n "$1" ] && [ "$1" = "$ADMIN_TOKEN" ] ;;
  esac
}

login_page='<!DOCTYPE html><title>Vaultwarden Admin Panel</title><form method="post"><input type="password" name="token"></form>'

handle() {
  read_request
  base=$(base_path)
  case $REQ_PATH in
    "$base"/* | "$base") path=${REQ_PATH#"$base"} ;;
    *) not_found; return ;;
  esac
  case "$METHOD ${path:-/}" in
    "GET /alive" | "HEAD /alive" | "GET /api/alive") json 200 OK "\"$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)\"" ;;
    "GET /" | "HEAD /") html 200 OK '<!DOCTYPE html><title>Vaultwarden Web</title>' ;;
    "GET /index.html") respond 303 "See Other" "" "Location: $base/" ;;
    "GET /admin")
      if [ -z "${ADMIN_TOKEN:-}" ]; then
        respond 200 OK "The admin panel is disabled, please configure the 'ADMIN_TOKEN' variable to enable it" 'Content-Type: text/plain'
      else
        html 200 OK "$login_page"
      fi ;;
    "POST /admin")
      [ -n "${ADMIN_TOKEN:-}" ] || { not_found; return; }
      if token_ok "$(form_field token)"; then
        respond 200 OK '<!DOCTYPE html><title>Vaultwarden Admin Panel</title><h1>Users</h1>' 'Content-Type: text/html; charset=utf-8' \
          "Set-Cookie: VW_ADMIN=$(token); Path=$base/admin; HttpOnly; SameSite=Strict"
      else
        html 401 Unauthorized "$login_page"
      fi ;;
    *) not_found ;;
  esac
}

"$@"
