#!/bin/sh
# Stand-in for NGINX Proxy Manager 2.15.1 (NginxProxyManager/nginx-proxy-manager), as read in
# /work/research-15:
# - docker/rootfs/etc/nginx/conf.d/production.conf @ v2.15.1: the admin page on 81 for any Host;
#   /api → 302 /api/, *.html → 302 without .html, every other page the app;
# - backend/routes/main.js @ v2.15.1 l.30-46: GET /api/ → 200 {"status":"OK","setup":…};
# - backend/setup.js @ v2.15.1 l.10-72: since 2.13.0 no default admin; INITIAL_ADMIN_EMAIL and
#   INITIAL_ADMIN_PASSWORD, both set and no user yet, make the first admin; otherwise the
#   setup wizard (POST /api/users without a token while no user exists, routes/users.js l.73-103);
# - backend/routes/tokens.js, internal/token.js l.25-102, lib/error.js @ v2.15.1: POST /api/tokens
#   {identity, secret} → 200 {token, expires}, a wrong pair → 400 (401 up to 2.12.x);
# - conf.d/default.conf: port 80 answers the default page; 443 rejects the TLS handshake
#   (here: nothing listens on 443).
# Upstream logs the initial password in plain text (setup.js l.35); the stand-in does not, so
# lab logs hold no secret.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh
USERS=/data/standin-users

start() {
  stop_on_term
  mkdir -p /data
  if [ ! -s "$USERS" ] && [ -n "${INITIAL_ADMIN_EMAIL:-}" ] && [ -n "${INITIAL_ADMIN_PASSWORD:-}" ]; then
    echo "Creating a new user: $INITIAL_ADMIN_EMAIL" >&2
    printf '%s %s\n' "$INITIAL_ADMIN_EMAIL" "$(printf %s "$INITIAL_ADMIN_PASSWORD" | sha256sum | cut -d' ' -f1)" > "$USERS"
  fi
  listen 80
  listen 81
  wait
}

setup_done() { [ -s "$USERS" ] && echo true || echo false; }

handle() {
  read_request
  if [ "$PORT" = 80 ]; then
    html 200 OK '<!DOCTYPE html><title>Default Site</title><h1>Congratulations!</h1>'
    return
  fi
  case "$METHOD $REQ_PATH" in
    "GET /api") redirect 302 /api/ ;;
    "GET /api/") json 200 OK "{\"status\":\"OK\",\"setup\":$(setup_done),\"version\":{\"major\":2,\"minor\":15,\"revision\":1}}" ;;
    "POST /api/tokens")
      id=$(json_string identity) secret=$(json_string secret)
      if [ -n "$id" ] && grep -qxF "$id $(printf %s "$secret" | sha256sum | cut -d' ' -f1)" "$USERS" 2>/dev/null; then
        json 200 OK "{\"token\":\"$(token)\",\"expires\":\"$(date -u -d @$(($(date +%s) + 86400)) +%Y-%m-%dT%H:%M:%S.000Z)\"}"
      else
        json 400 "Bad Request" '{"error":{"code":400,"message":"Invalid email or password"}}'
      fi ;;
    "POST /api/users")
      # The wizard's call: open only while no user exists (the answer's status afterwards is
      # not in the research; 403 here).
      if [ "$(setup_done)" = true ]; then
        json 403 Forbidden '{"error":{"code":403,"message":"Permission Denied"}}'
        return
      fi
      email=$(json_string email) secret=$(json_string secret)
      [ -n "$email" ] && [ -n "$secret" ] || { json 400 "Bad Request" '{"error":{"code":400,"message":"data must have email and auth.secret"}}'; return; }
      printf '%s %s\n' "$email" "$(printf %s "$secret" | sha256sum | cut -d' ' -f1)" > "$USERS"
      json 201 Created "{\"id\":1,\"email\":\"$email\",\"roles\":[\"admin\"]}" ;;
    GET\ *.html) redirect 302 "${REQ_PATH%.html}" ;;
    GET\ /api/*) json 401 Unauthorized '{"error":{"code":401,"message":"Unauthorized"}}' ;;
    "GET "* | "HEAD "*) html 200 OK '<!DOCTYPE html><title>Nginx Proxy Manager</title><div id="root"></div>' ;;
    *) not_found ;;
  esac
}

"$@"
