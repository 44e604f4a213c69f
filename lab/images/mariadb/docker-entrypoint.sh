#!/bin/bash
# Entrypoint of the lab's `mariadb:10.11` (lab/README.md), Debian bookworm's own MariaDB 10.11
# behind the contract of the official image's docker-entrypoint.sh (MariaDB/mariadb-docker,
# 10.11), which this script follows but does not copy:
#
# - `mariadbd [ARGS]` (or `mysqld`), or ARGS alone when the first starts with `-`, runs the
#   server with ARGS (`--transaction-isolation=...`) as `mysql` (uid 999): a root start
#   prepares the folders, then this script runs again under that user (setpriv) and finally
#   becomes the server (exec), so the server is PID 1 and gets Docker's SIGTERM. Any other
#   command runs as given.
# - On a data folder without the `mysql` schema: mariadb-install-db, then a setup server on the
#   socket only, time zones loaded (unless MARIADB_INITDB_SKIP_TZINFO), and the accounts:
#     root@localhost gets the root password and password authentication only, exactly as the
#       official image sets it up (mariadb-install-db --auth-root-authentication-method=normal,
#       then SET PASSWORD), so `mariadb -uroot` inside the container needs the password too;
#     root@MARIADB_ROOT_HOST (default `%`) with the same password and every privilege;
#     mysql@localhost through unix_socket, only when MARIADB_MYSQL_LOCALHOST_USER is set (with
#       MARIADB_MYSQL_LOCALHOST_GRANTS, default USAGE);
#     healthcheck@{127.0.0.1,::1,localhost} with a random password kept in
#       $DATADIR/.my-healthcheck.cnf (for healthcheck.sh);
#     MARIADB_DATABASE, and MARIADB_USER/MARIADB_PASSWORD with every privilege on it.
#   Each of ROOT_PASSWORD, DATABASE, USER, PASSWORD, ROOT_HOST may come as MARIADB_x or
#   MYSQL_x, and from a file with the _FILE suffix. A fresh folder needs MARIADB_ROOT_PASSWORD
#   (or _FILE), MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD. Then
#   /docker-entrypoint-initdb.d/*.sh, *.sql and *.sql.gz run in name order.
# - A folder that holds a database is started as it is. (The official image's upgrade step,
#   MARIADB_AUTO_UPGRADE, and its restore-from-backup and replication options are not here.)
# Passwords are never put on a command line (SQL goes in on stdin, the client reads the root
# password from MYSQL_PWD) nor printed (but for a generated root password: the log is the only
# place to learn it, as with the official image), and are removed from the server's
# environment.
set -Eeuo pipefail
shopt -s nullglob

note() { printf '%s [Note] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*"; }
fail() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; exit 1; }

# value_of NAME [DEFAULT]: NAME from NAME or from the file NAME_FILE names (not both),
# exported; NAME_FILE unset.
value_of() {
  local name="$1" default="${2:-}" file_var="${1}_FILE"
  local value="${!name:-}" file="${!file_var:-}"
  [[ -n "$value" && -n "$file" ]] && fail "$name and $file_var are both set; give only one"
  if [[ -z "$value" && -n "$file" ]]; then
    [[ -r "$file" ]] || fail "$file_var names $file, which cannot be read"
    value="$(<"$file")"
  fi
  export "$name=${value:-$default}"
  unset "$file_var"
}

# aliased SUFFIX [DEFAULT]: MARIADB_SUFFIX, else MYSQL_SUFFIX (each also from its _FILE), and
# both names left holding the one value.
aliased() {
  local suffix="$1" default="${2:-}"
  value_of "MYSQL_$suffix"
  local mysql_var="MYSQL_$suffix"
  value_of "MARIADB_$suffix" "${!mysql_var:-$default}"
  local maria_var="MARIADB_$suffix"
  export "MYSQL_$suffix=${!maria_var}"
}

# The flags after which mariadbd prints something and exits: no setup for those.
only_asks() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --print-defaults | -V | --version) return 0 ;; esac
  done
  return 1
}

# setting NAME SERVER ARGS...: the value the server would use (config files, then ARGS), read
# from the table at the end of `mariadbd --verbose --help`, which also lists compiled-in
# defaults (its rows start at the line's first column; the option descriptions above it are
# indented). awk reads to the end: the server must not die of SIGPIPE under pipefail.
setting() {
  local name="$1"; shift
  "$@" --verbose --help 2>/dev/null |
    awk -v n="$name" '!done && $1 == n && /^[^ \t]/ { sub(/^[^ \t]+[ \t]+/, ""); print; done = 1 }'
}

# SQL string literal body: backslash, quote and newline escaped.
quoted() {
  local s="${1//\\/\\\\}"
  s="${s//$'\n'/\\n}"
  printf '%s' "${s//\'/\\\'}"
}

# The client as root@localhost over the socket (MYSQL_PWD, when set, is its password).
client() { mariadb --protocol=socket --user=root --host=localhost --socket="$SOCKET" "$@"; }

# 32 characters from 600 random bytes (~150 pass the filter); no pipe is cut short.
random_password() {
  local chars
  chars="$(head -c 600 /dev/urandom | tr -dc 'A-Za-z0-9,.:;!@%^*()_+-')"
  printf '%s' "${chars:0:32}"
}

start_setup_server() {
  "$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep-on=OFF \
    --expire-logs-days=0 --skip-slave-start --loose-innodb-buffer-pool-load-at-startup=0 &
  SETUP_PID=$!
  note "Waiting for server startup"
  local _
  for _ in $(seq 1 300); do
    MYSQL_PWD='' client --database=mysql <<<'SELECT 1' >/dev/null 2>&1 && return 0
    kill -0 "$SETUP_PID" 2>/dev/null || fail "the setup server exited; see its messages above"
    sleep 0.1
  done
  fail "Unable to start server."
}

stop_setup_server() {
  kill "$SETUP_PID"
  wait "$SETUP_PID"
}

first_init() {
  if [[ -z "$MARIADB_ROOT_PASSWORD" && -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" &&
    -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]]; then
    fail $'Database is uninitialized and password option is not specified\n\tSet one of MARIADB_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD_FILE), MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD'
  fi
  ls /docker-entrypoint-initdb.d/ >/dev/null # fail now, not half-way, if it cannot be read

  note "Initializing database files"
  # The server's own arguments go to mariadb-install-db too, except any holding a space (it
  # cannot pass those on).
  local -a args=() arg
  for arg in "${@:2}"; do [[ "$arg" =~ [[:space:]] ]] || args+=("$arg"); done
  mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
    "${args[@]}" --cross-bootstrap --skip-test-db --old-mode=UTF8_IS_UTF8MB3 \
    --default-time-zone=SYSTEM --enforce-storage-engine= --skip-log-bin --expire-logs-days=0 \
    --loose-innodb-buffer-pool-load-at-startup=0 --loose-innodb-buffer-pool-dump-at-shutdown=0
  note "Database files initialized"

  note "Starting temporary server"
  start_setup_server "$@"
  note "Temporary server started."

  if [[ -z "$MARIADB_INITDB_SKIP_TZINFO" ]]; then
    mariadb-tzinfo-to-sql --skip-write-binlog /usr/share/zoneinfo 2>/dev/null |
      MYSQL_PWD='' client --database=mysql
  fi
  if [[ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]]; then
    MARIADB_ROOT_PASSWORD="$(random_password)"
    export MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD="$MARIADB_ROOT_PASSWORD"
    note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD" # asked for: the only way to learn it
  fi

  local root_pw health_pw port host
  root_pw="$(quoted "$MARIADB_ROOT_PASSWORD")"
  health_pw="$(random_password)"
  port="$(setting port "$@")"
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');"
    # mariadb-install-db made root@localhost, root@127.0.0.1, root@::1 and root@<host name>:
    # only the first stays, with the password.
    echo "DROP USER IF EXISTS root@'127.0.0.1', root@'::1';"
    echo "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');"
    echo "SET PASSWORD FOR root@localhost = PASSWORD('$root_pw');"
    if [[ -n "$MARIADB_ROOT_HOST" && "$MARIADB_ROOT_HOST" != localhost ]]; then
      echo "CREATE USER root@'$MARIADB_ROOT_HOST' IDENTIFIED BY '$root_pw';"
      echo "GRANT ALL ON *.* TO root@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;"
      echo "GRANT PROXY ON ''@'%' TO root@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;"
    fi
    # Optional, as in the official image: the container's `mysql` user logs in as itself
    # through the socket without a password (`docker exec --user mysql ... mariadb`).
    if [[ -n "${MARIADB_MYSQL_LOCALHOST_USER:-}" ]]; then
      echo "CREATE USER mysql@localhost IDENTIFIED VIA unix_socket;"
      if [[ -n "${MARIADB_MYSQL_LOCALHOST_GRANTS:-}" ]]; then
        echo "GRANT $MARIADB_MYSQL_LOCALHOST_GRANTS ON *.* TO mysql@localhost;"
      fi
    fi
    for host in 127.0.0.1 ::1 localhost; do
      echo "CREATE USER IF NOT EXISTS healthcheck@'$host' IDENTIFIED BY '$health_pw';"
      echo "GRANT USAGE ON *.* TO healthcheck@'$host';"
    done
    echo "SET @@SESSION.SQL_LOG_BIN=1;"
    if [[ -n "$MARIADB_DATABASE" ]]; then
      note "Creating database $MARIADB_DATABASE" >&2
      echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
    fi
    if [[ -n "$MARIADB_USER" && -n "$MARIADB_PASSWORD" ]]; then
      note "Creating user $MARIADB_USER" >&2
      echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$(quoted "$MARIADB_PASSWORD")';"
      if [[ -n "$MARIADB_DATABASE" ]]; then
        note "Giving user $MARIADB_USER access to schema $MARIADB_DATABASE" >&2
        # `_` is a wildcard in a grant's database name: escaped, the grant names this one only.
        echo "GRANT ALL ON \`${MARIADB_DATABASE//_/\\_}\`.* TO '$MARIADB_USER'@'%';"
      fi
    fi
  } | MYSQL_PWD='' client --database=mysql --binary-mode
  (
    umask 077
    printf '[mariadb-client]\nport=%s\nsocket=%s\nuser=healthcheck\npassword=%s\n' \
      "$port" "$SOCKET" "$health_pw" >"$DATADIR/.my-healthcheck.cnf"
  )

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        note "$0: running $f"
        if [[ -x "$f" ]]; then "$f"; else
          # shellcheck disable=SC1090 # the image user's own script
          . "$f"
        fi
        ;;
      *.sql) note "$0: running $f"; MYSQL_PWD="$MARIADB_ROOT_PASSWORD" client ${MARIADB_DATABASE:+"--database=$MARIADB_DATABASE"} <"$f" ;;
      *.sql.gz) note "$0: running $f"; gzip -dc "$f" | MYSQL_PWD="$MARIADB_ROOT_PASSWORD" client ${MARIADB_DATABASE:+"--database=$MARIADB_DATABASE"} ;;
      *) note "$0: ignoring $f" ;;
    esac
  done

  note "Stopping temporary server"
  stop_setup_server
  note "Temporary server stopped"
  note "MariaDB init process done. Ready for start up."
}

main() {
  [[ "${1:-}" == -* ]] && set -- mariadbd "$@"
  if [[ "${1:-}" != mariadbd && "${1:-}" != mysqld ]] || only_asks "$@"; then exec "$@"; fi
  note "Entrypoint script for MariaDB Server $(mariadbd --version | awk '{print $3}') started."

  local errors
  errors="$("$@" --verbose --help 2>&1 >/dev/null)" ||
    fail $'mariadbd failed while attempting to check config\n\t'"$errors"
  DATADIR="$(setting datadir "$@")"
  SOCKET="$(setting socket "$@")"
  aliased ROOT_HOST '%'
  aliased DATABASE
  aliased USER
  aliased PASSWORD
  aliased ROOT_PASSWORD
  export MARIADB_ALLOW_EMPTY_ROOT_PASSWORD="${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
  export MARIADB_RANDOM_ROOT_PASSWORD="${MARIADB_RANDOM_ROOT_PASSWORD:-${MYSQL_RANDOM_ROOT_PASSWORD:-}}"
  export MARIADB_INITDB_SKIP_TZINFO="${MARIADB_INITDB_SKIP_TZINFO:-${MYSQL_INITDB_SKIP_TZINFO:-}}"

  if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$DATADIR"
    find "$DATADIR" \! -user mysql -exec chown mysql: '{}' +
    [[ "$SOCKET" == @* ]] || find "${SOCKET%/*}" -maxdepth 0 \! -user mysql -exec chown mysql: '{}' +
    note "Switching to dedicated user 'mysql'"
    # Again as mysql, with the passwords already read (their files may be root's only).
    exec setpriv --reuid=mysql --regid=mysql --init-groups -- "${BASH_SOURCE[0]}" "$@"
  fi

  [[ -d "$DATADIR/mysql" ]] || first_init "$@"
  unset MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD MARIADB_PASSWORD MYSQL_PASSWORD
  exec "$@"
}

main "$@"
