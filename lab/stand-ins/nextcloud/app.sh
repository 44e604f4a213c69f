#!/bin/sh
# Stand-in for Nextcloud 34.0.2 (nextcloud/docker master "Bump stable to 34.0.2" and the
# server's status.php / Kernel.php as stored; exact server tag not verified), as read in
# /work/research-15:
# - docker-entrypoint.sh l.215-289: the first start installs by itself only with
#   NEXTCLOUD_ADMIN_USER, NEXTCLOUD_ADMIN_PASSWORD and a whole database set (SQLite, MySQL or
#   PostgreSQL variables); otherwise the web installer waits;
# - l.270-281: NEXTCLOUD_TRUSTED_DOMAINS (space-separated) is added right after that install,
#   and only then: a later change does not reach an installed volume;
# - lib/private/Kernel/Kernel.php boot(): once installed, a Host it does not trust gets 400
#   (status.php: {"error": "Trusted domain error.", "code": 15}); localhost is always trusted;
# - status.php: 200 JSON with installed/maintenance/version.
# An entry matches the Host with its port or without it (the research reads "with the port";
# the recipe lists both forms). The installer's own entry (index 0) is not verified: taken as
# localhost. The OCS check of a password (/ocs/v2.php/cloud/user) is not verified from source.
# The install time (Apache's port closed meanwhile) is not reproduced: the stand-in answers at once.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh
CONFIG=/var/www/html/config/standin.conf

db_set() {
  [ -n "${SQLITE_DATABASE:-}" ] && return 0
  [ -n "${MYSQL_DATABASE:-}" ] && [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ] && [ -n "${MYSQL_HOST:-}" ] && return 0
  [ -n "${POSTGRES_DB:-}" ] && [ -n "${POSTGRES_USER:-}" ] && [ -n "${POSTGRES_PASSWORD:-}" ] && [ -n "${POSTGRES_HOST:-}" ]
}

start() {
  stop_on_term
  mkdir -p "${CONFIG%/*}"
  if [ ! -f "$CONFIG" ]; then
    if [ -n "${NEXTCLOUD_ADMIN_USER:-}" ] && [ -n "${NEXTCLOUD_ADMIN_PASSWORD:-}" ] && db_set; then
      echo "Installing with the database and admin from the environment" >&2
      {
        echo "admin_user=$NEXTCLOUD_ADMIN_USER"
        echo "admin_sha256=$(printf %s "$NEXTCLOUD_ADMIN_PASSWORD" | sha256sum | cut -d' ' -f1)"
        echo "trusted=localhost"
        # Word splitting is the point: the list is space-separated.
        for d in ${NEXTCLOUD_TRUSTED_DOMAINS:-}; do echo "trusted=$d"; done
      } > "$CONFIG"
    else
      echo "Next step: Access your instance to finish the web-based installation!" >&2
    fi
  fi
  listen 80
  wait
}

trusted() {
  host=$1 bare=${1%:*}
  case $bare in localhost | 127.0.0.1 | \[::1\]) return 0 ;; esac
  grep -qxF "trusted=$host" "$CONFIG" || grep -qxF "trusted=$bare" "$CONFIG"
}

status_json() {
  printf '{"installed":%s,"maintenance":false,"needsDbUpgrade":false,"version":"34.0.2.2","versionstring":"34.0.2","edition":"","productname":"Nextcloud","extendedSupport":false}' "$1"
}

handle() {
  read_request
  if [ ! -f "$CONFIG" ]; then
    case $REQ_PATH in
      /status.php) respond 200 OK "$(status_json false)" 'Content-Type: application/json' 'Access-Control-Allow-Origin: *' ;;
      *) html 200 OK '<!DOCTYPE html><title>Nextcloud</title><form id="install">' ;;
    esac
    return
  fi
  if ! trusted "$HOST"; then
    case $REQ_PATH in
      /status.php) respond 400 "Bad Request" '{"error": "Trusted domain error.", "code": 15}' 'Content-Type: application/json' ;;
      /css/*) respond 200 OK "" 'Content-Type: text/css' ;;
      *) html 400 "Bad Request" '<!DOCTYPE html><title>Nextcloud</title><p>Access through untrusted domain</p>' ;;
    esac
    return
  fi
  case "$METHOD $REQ_PATH" in
    "GET /status.php") respond 200 OK "$(status_json true)" 'Content-Type: application/json' 'Access-Control-Allow-Origin: *' ;;
    "GET /" | "GET /index.php") redirect 302 "http://$HOST/login" ;;
    "GET /login") html 200 OK '<!DOCTYPE html><title>Login – Nextcloud</title>' ;;
    "GET /ocs/v2.php/cloud/user")
      creds=$(basic_auth)
      user=${creds%%:*} pass=${creds#*:}
      want_user=$(sed -n 's/^admin_user=//p' "$CONFIG")
      want_hash=$(sed -n 's/^admin_sha256=//p' "$CONFIG")
      if [ -n "$creds" ] && [ "$user" = "$want_user" ] && [ "$(printf %s "$pass" | sha256sum | cut -d' ' -f1)" = "$want_hash" ]; then
        json 200 OK "{\"ocs\":{\"meta\":{\"status\":\"ok\",\"statuscode\":200,\"message\":\"OK\"},\"data\":{\"id\":\"$user\"}}}"
      else
        json 401 Unauthorized '{"ocs":{"meta":{"status":"failure","statuscode":997,"message":"Current user is not logged in"},"data":[]}}'
      fi ;;
    *) not_found ;;
  esac
}

"$@"
