#!/bin/sh
# Stand-in for Paperless-ngx 3.0.5's web server: it refuses to start without a secret key
# (settings/__init__.py), makes the first admin from PAPERLESS_ADMIN_USER/PASSWORD only while no
# superuser exists and never changes an existing password (manage_superuser.py), / → 302 to the
# login page (urls.py), sign-in at POST /api/token/ (views.py).
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh
USERS=/usr/src/paperless/data/standin-users

start() {
  stop_on_term
  case ${PAPERLESS_SECRET_KEY:-change-me} in
    change-me) echo "ImproperlyConfigured: PAPERLESS_SECRET_KEY must be set" >&2; exit 1 ;;
  esac
  mkdir -p "${USERS%/*}"
  if [ -n "${PAPERLESS_ADMIN_USER:-}" ] && [ -n "${PAPERLESS_ADMIN_PASSWORD:-}" ] && [ ! -s "$USERS" ]; then
    echo "Creating superuser $PAPERLESS_ADMIN_USER" >&2
    printf '%s %s\n' "$PAPERLESS_ADMIN_USER" "$(printf %s "$PAPERLESS_ADMIN_PASSWORD" | sha256sum | cut -d' ' -f1)" >> "$USERS"
  fi
  listen "${PAPERLESS_PORT:-8000}"
  wait
}

handle() {
  read_request
  case "$METHOD $REQ_PATH" in
    "GET /" | "HEAD /") redirect 302 "/accounts/login/?next=/" ;;
    "GET /accounts/login/" | "HEAD /accounts/login/") html 200 OK '<!DOCTYPE html><title>Paperless-ngx sign in</title>' ;;
    "POST /api/token/")
      case $CONTENT_TYPE in
        application/json*) user=$(json_string username) pass=$(json_string password) ;;
        *) user=$(form_field username) pass=$(form_field password) ;;
      esac
      if [ -n "$user" ] && grep -qxF "$user $(printf %s "$pass" | sha256sum | cut -d' ' -f1)" "$USERS" 2>/dev/null; then
        json 200 OK "{\"token\":\"$(token)\"}"
      else
        json 400 "Bad Request" '{"non_field_errors":["Unable to log in with provided credentials."]}'
      fi ;;
    "GET /api/"*) json 401 Unauthorized '{"detail":"Authentication credentials were not provided."}' ;;
    *) not_found ;;
  esac
}

"$@"
