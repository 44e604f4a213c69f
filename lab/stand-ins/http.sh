# shellcheck shell=sh
# What every stand-in shares: one HTTP/1.1 request in, one answer out, then the connection
# closes. A stand-in's app.sh sources this file; `nc -ll -e` (or socat, for TLS) hands it the
# connection as stdin/stdout, so a request is plain text read line by line. Sourced, not run.

CR=$(printf '\r')

# Reads the request line, the headers a stand-in looks at, and the body (Content-Length bytes).
read_request() {
  IFS=' ' read -r METHOD TARGET _proto || exit 0
  REQ_PATH=${TARGET%%\?*}
  QUERY=
  case $TARGET in *\?*) QUERY=${TARGET#*\?} ;; esac
  HOST= AUTHORIZATION= CONTENT_TYPE= CONTENT_LENGTH=0 COOKIE= OCS_APIREQUEST=
  while IFS= read -r line; do
    line=${line%"$CR"}
    [ -z "$line" ] && break
    value=${line#*:}
    value=${value# }
    case $(printf %s "${line%%:*}" | tr '[:upper:]' '[:lower:]') in
      host) HOST=$value ;;
      authorization) AUTHORIZATION=$value ;;
      content-type) CONTENT_TYPE=$value ;;
      content-length) CONTENT_LENGTH=$value ;;
      cookie) COOKIE=$value ;;
      ocs-apirequest) OCS_APIREQUEST=$value ;;
    esac
  done
  case $CONTENT_LENGTH in '' | *[!0-9]*) CONTENT_LENGTH=0 ;; esac
  BODY=
  if [ "$CONTENT_LENGTH" -gt 0 ]; then BODY=$(head -c "$CONTENT_LENGTH"); fi
  # Logged to the container's output (nc leaves our stderr on it): what a test reads back.
  echo "standin: $METHOD $REQ_PATH (Host: $HOST)" >&2
}

# respond STATUS REASON BODY [HEADER...]: one complete answer; HEAD gets the headers only.
respond() {
  _status=$1 _reason=$2 _body=$3
  shift 3
  printf 'HTTP/1.1 %s %s\r\n' "$_status" "$_reason"
  for _h in "$@"; do printf '%s\r\n' "$_h"; done
  printf 'Content-Length: %s\r\nConnection: close\r\n\r\n' "$(printf %s "$_body" | wc -c)"
  [ "$METHOD" = HEAD ] || printf %s "$_body"
}

json() { respond "$1" "$2" "$3" 'Content-Type: application/json'; }
html() { respond "$1" "$2" "$3" 'Content-Type: text/html; charset=utf-8'; }
redirect() { respond "$1" Found "" "Location: $2"; }
not_found() { html 404 "Not Found" "<h1>Not Found</h1>"; }

# json_string NAME: the string value of "NAME" in the JSON body (flat values without escaped
# quotes, which is all a test or the box sends).
json_string() {
  printf %s "$BODY" | tr -d '\n' |
    sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
}

# json_number_in OBJECT NAME: the number "NAME" inside the object "OBJECT" ({"web":{"port":80}}).
json_number_in() {
  printf %s "$BODY" | tr -d '\n' |
    sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*{[^}]*"'"$2"'"[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p'
}

# form_field NAME: the URL-decoded value of NAME in a form-encoded body.
form_field() {
  printf %s "$BODY" | tr '&' '\n' | sed -n "s/^$1=//p" | head -n 1 | tr '+' ' ' |
    while IFS= read -r v || [ -n "$v" ]; do busybox httpd -d "$v"; done
}

# basic_auth: "user:password" from an Authorization: Basic header, or nothing.
basic_auth() {
  case $AUTHORIZATION in
    Basic\ * | basic\ *) printf %s "${AUTHORIZATION#* }" | base64 -d 2>/dev/null ;;
  esac
}

# cookie NAME: the value of cookie NAME sent with the request.
cookie() {
  printf %s "$COOKIE" | tr ';' '\n' | sed -n "s/^ *$1=//p" | head -n 1
}

# A random hex token (session cookies, API tokens).
token() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# listen PORT: answer on PORT (every interface) with `app.sh handle`, in the background.
listen() {
  PORT=$1 nc -ll -p "$1" -e /bin/sh "$0" handle &
}

# Stops at once on SIGTERM (as PID 1, with the listeners started by `listen`).
stop_on_term() {
  # shellcheck disable=SC2046 # one pid per word
  trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT
}
