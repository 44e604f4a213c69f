#!/bin/bash
# Entrypoint of the lab's `postgres:15-bookworm` (lab/README.md), Debian bookworm's own
# postgresql-15 behind the contract of the official image's docker-entrypoint.sh
# (docker-library/postgres, 15/bookworm), which this script follows but does not copy:
#
# - `postgres [ARGS]`, or ARGS alone when the first starts with `-`, runs the server with ARGS
#   (`-c key=value` ...) as `postgres` (uid 999): a root start prepares the folders, then this
#   script runs again under that user (setpriv) and finally becomes the server (exec), so the
#   server is PID 1 and Docker's stop signal reaches it. Any other command runs as given.
# - On an empty $PGDATA: initdb with POSTGRES_USER (default postgres) and the password from
#   POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (never both; the file form is what Homelab
#   uses), POSTGRES_INITDB_ARGS; pg_hba.conf as initdb writes it (local and loopback: trust)
#   plus `host all all all <password_encryption>` (scram-sha-256), or `trust` when
#   POSTGRES_HOST_AUTH_METHOD says so; POSTGRES_DB (default: the user) created; then
#   /docker-entrypoint-initdb.d/*.sh, *.sql and *.sql.gz in name order, against a server that
#   listens on its socket only. A fresh folder with no password refuses to start, as the
#   official image does, unless POSTGRES_HOST_AUTH_METHOD=trust.
# - A $PGDATA that holds a cluster (PG_VERSION) is started as it is: no second init.
# The password is never printed, never on a command line (initdb reads it from a pipe), and
# not left in the server's environment.
set -Eeuo pipefail
shopt -s nullglob

say() { printf '%s\n' "$*"; }
fail() { printf 'docker-entrypoint.sh: error: %s\n' "$*" >&2; exit 1; }

# value_of NAME [DEFAULT]: NAME's value, taken from NAME or from the file NAME_FILE names (one
# of the two, not both), exported as NAME; NAME_FILE is unset so nothing after us reads it.
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

# The flags after which postgres prints something and exits: no setup for those.
only_asks() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --describe-config | -V | --version) return 0 ;; esac
  done
  return 1
}

# Folders the server needs, owned by postgres (a root start only).
prepare_folders() {
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA" || true
  chmod 3775 /var/run/postgresql || true
  find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres: '{}' +
}

# psql as the init superuser over the socket, stopping at the first error.
sql() { psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"; }

first_init() {
  # The server's own arguments (minus the leading `postgres`) also go to the setup server.
  local -a server_args=("${@:2}") initdb_args=()
  if [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
    cat >&2 <<'MSG'
Error: the database folder is empty and no superuser password is given.
       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE, a file holding it) to a non-empty
       value. POSTGRES_HOST_AUTH_METHOD=trust would let anyone connect without a password;
       it is not recommended.
MSG
    exit 1
  fi
  [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]] &&
    say 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every connection over the network is let in without a password.' >&2
  ls /docker-entrypoint-initdb.d/ >/dev/null # fail now, not half-way, if it cannot be read

  # POSTGRES_INITDB_ARGS is shell words (quotes allowed), as the official image reads it.
  eval "initdb_args=($POSTGRES_INITDB_ARGS)"
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    "${initdb_args[@]}"

  local method="$POSTGRES_HOST_AUTH_METHOD"
  [[ -n "$method" ]] || method="$(postgres -C password_encryption "${server_args[@]}")"
  printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"

  # A setup server on the socket only; the client finds it through PGHOST's default.
  local quoted
  quoted="$(printf '%q ' "${server_args[@]}" -c listen_addresses= -p "${PGPORT:-5432}")"
  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "$quoted" -w start

  local exists
  exists="$(sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only --no-align \
    <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
  if [[ -z "$exists" ]]; then
    sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        say "docker-entrypoint.sh: running $f"
        if [[ -x "$f" ]]; then "$f"; else
          # shellcheck disable=SC1090 # the image user's own script
          . "$f"
        fi
        ;;
      *.sql) say "docker-entrypoint.sh: running $f"; sql --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) say "docker-entrypoint.sh: running $f"; gzip -dc "$f" | sql --dbname "$POSTGRES_DB" ;;
      *) say "docker-entrypoint.sh: ignoring $f" ;;
    esac
  done

  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  say 'PostgreSQL init process complete; ready for start up.'
}

main() {
  [[ "${1:-}" == -* ]] && set -- postgres "$@"
  if [[ "${1:-}" != postgres ]] || only_asks "$@"; then exec "$@"; fi

  value_of POSTGRES_PASSWORD
  value_of POSTGRES_USER postgres
  value_of POSTGRES_DB "$POSTGRES_USER"
  value_of POSTGRES_INITDB_ARGS
  export POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-}"

  if [[ "$(id -u)" == 0 ]]; then
    prepare_folders
    # Again as postgres, with the password already read (its file may be root's only).
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${BASH_SOURCE[0]}" "$@"
  fi

  if [[ -s "$PGDATA/PG_VERSION" ]]; then
    say 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
  else
    first_init "$@"
  fi
  unset POSTGRES_PASSWORD
  exec "$@"
}

main "$@"
