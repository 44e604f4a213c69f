#!/bin/sh
# Stand-in for AdGuard Home v0.107.79 (AdguardTeam/AdGuardHome), as read in /work/research-15:
# - internal/home/home.go @ v0.107.79 detectFirstRun l.1363-1380: no config file means the
#   setup wizard, on 0.0.0.0:3000 (config.go l.468);
# - internal/home/control.go postInstallHandler l.447-462: before setup every page redirects
#   (302) to install.html; preInstallHandler l.343-355: after it install.html is 403;
# - internal/home/controlinstall.go @ v0.107.79 l.32-60 (get_addresses: the suggested web port,
#   80, or ADGUARD_HOME_DEFAULT_WEB_PORT since v0.107.67) and l.369-381, 570-633 (configure:
#   answers 200, then serves the web page on the address it was given);
# - internal/home/authhttp.go @ v0.107.79 l.107-185, 300-330, 410-484: / → 302 /login.html
#   without a session, POST /control/login, 401 for other pages, 403 for a wrong password.
# A pre-seeded config skips the wizard (detectFirstRun) and the page listens on its
# http.address. Passwords: upstream keeps bcrypt hashes, which busybox cannot check; the
# stand-in's wizard keeps a SHA-256 of its own in the file, and a pre-seeded bcrypt user is
# refused (not reproduced). The research does not mention a --web-addr flag.
# shellcheck source=lab/stand-ins/http.sh
. /standin/http.sh
CONF=/opt/adguardhome/conf/AdGuardHome.yaml
WORK=/opt/adguardhome/work
PIDFILE=/run/standin-listener.pid

# The web page's port: http.address of the config file (block or flow style), else 3000.
web_port() {
  port=$(sed -n 's/.*address:[[:space:]]*"\{0,1\}[0-9.]*:\([0-9]*\).*/\1/p' "$CONF" 2>/dev/null | head -n 1)
  echo "${port:-3000}"
}

start() {
  stop_on_term
  mkdir -p "$WORK" "${CONF%/*}"
  # The wizard's configure call stops the listener once it has answered (finalizeInstall);
  # the loop then serves again on the address the config file now names.
  while :; do
    listen "$(web_port)"
    echo $! > "$PIDFILE"
    wait "$!" || true
  done
}

users_configured() { grep -q '^users:' "$CONF" 2>/dev/null && grep -q 'name:' "$CONF"; }

# check_password NAME PASSWORD: the wizard's user, as the stand-in wrote it.
check_password() {
  want=$(printf %s "$2" | sha256sum | cut -d' ' -f1)
  grep -q "^  - name: $1 # standin-sha256: $want\$" "$CONF" 2>/dev/null
}

authorized() {
  s=$(cookie agh_session)
  [ -n "$s" ] && grep -qx "$s" "$WORK/sessions" 2>/dev/null && return 0
  creds=$(basic_auth)
  [ -n "$creds" ] && check_password "${creds%%:*}" "${creds#*:}"
}

handle() {
  read_request
  if [ ! -f "$CONF" ]; then
    case "$METHOD $REQ_PATH" in
      "GET /install.html" | "GET /assets/"*) html 200 OK '<!DOCTYPE html><title>Setup AdGuard Home</title>' ;;
      "GET /control/install/get_addresses")
        json 200 OK "{\"version\":\"v0.107.79\",\"web_port\":${ADGUARD_HOME_DEFAULT_WEB_PORT:-80},\"dns_port\":53,\"interfaces\":{}}" ;;
      "POST /control/install/check_config") json 200 OK '{"web":{"status":""},"dns":{"status":""},"static_ip":{"static":"no"}}' ;;
      "POST /control/install/configure")
        web=$(json_number_in web port) dns=$(json_number_in dns port)
        user=$(json_string username) pass=$(json_string password)
        if [ -z "$web" ] || [ "$web" = 0 ] || [ -z "$dns" ] || [ "$dns" = 0 ] || [ -z "$user" ]; then
          respond 400 "Bad Request" "invalid web or dns port, or no user name" 'Content-Type: text/plain'
          return
        fi
        {
          printf 'http:\n  address: 0.0.0.0:%s\n' "$web"
          printf 'users:\n  - name: %s # standin-sha256: %s\n' "$user" "$(printf %s "$pass" | sha256sum | cut -d' ' -f1)"
          printf 'dns:\n  bind_hosts: [0.0.0.0]\n  port: %s\nschema_version: 34\n' "$dns"
        } > "$CONF"
        respond 200 OK "" 'Content-Type: text/plain'
        # Answer first, then move: the supervisor serves on the new port.
        exec >&-
        kill "$(cat "$PIDFILE")"
        ;;
      *)
        dir=${REQ_PATH%/*}
        redirect 302 "$dir/install.html" ;;
    esac
    return
  fi
  if ! users_configured; then
    # config.go l.831: no users, no authentication.
    case $REQ_PATH in
      /install.html) respond 403 Forbidden "" ;;
      *) html 200 OK '<!DOCTYPE html><title>AdGuard Home</title>' ;;
    esac
    return
  fi
  case "$METHOD $REQ_PATH" in
    "GET /login.html" | "GET /assets/"*) html 200 OK '<!DOCTYPE html><title>Login</title>' ;;
    "GET /install.html") respond 403 Forbidden "" ;;
    "POST /control/login")
      user=$(json_string name) pass=$(json_string password)
      if [ -z "$user" ]; then respond 400 "Bad Request" "json decode" 'Content-Type: text/plain'; return; fi
      if check_password "$user" "$pass"; then
        s=$(token)
        echo "$s" >> "$WORK/sessions"
        respond 200 OK "" "Set-Cookie: agh_session=$s; Path=/; HttpOnly; SameSite=Lax"
      else
        respond 403 Forbidden "invalid username or password" 'Content-Type: text/plain'
      fi ;;
    "GET /" | "GET /index.html")
      if authorized; then html 200 OK '<!DOCTYPE html><title>AdGuard Home</title>'; else redirect 302 /login.html; fi ;;
    *)
      if authorized; then
        json 200 OK "{\"version\":\"v0.107.79\",\"http_port\":$(web_port),\"running\":true}"
      else
        respond 401 Unauthorized ""
      fi ;;
  esac
}

"$@"
