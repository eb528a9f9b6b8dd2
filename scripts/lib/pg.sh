# A private PostgreSQL cluster for Portcullis: owned by an unprivileged user
# (PostgreSQL refuses root), unix socket only, fsync on, nothing shared with
# a system cluster. Sourced, not executed.
#
# Layout under BASE:  data/  sock/  log/  and passwords in SECRETS (db_admin,
# db_gateway, db_vault, db_auditor), readable by the invoking user only.

pc_pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

pc_pg_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

pc_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pc_pg_base WANTED: prints WANTED if the cluster's user can reach it, else a
# directory under /var/tmp (a checkout under /root is not traversable).
pc_pg_base() {
  local want=$1
  mkdir -p "$want"
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$want"; then
    echo "$want"
  else
    local alt="/var/tmp/portcullis-pg-$(printf '%s' "$want" | sha1sum | cut -c1-12)"
    mkdir -p "$alt" && chmod 755 "$alt"
    echo "$alt"
  fi
}

pc_secret_new() { # FILE: 32 random bytes as hex, mode 0600, created once
  [ -s "$1" ] && return 0
  (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$1")
}

pc_pg_init() { # BASE SECRETS
  local base=$1 secrets=$2 bin pguser
  bin=$(pc_pg_bindir) || pc_die "PostgreSQL server binaries not found"
  pguser=$(pc_pg_user)
  mkdir -p "$secrets" && chmod 700 "$secrets"
  local r
  for r in admin gateway vault auditor; do pc_secret_new "$secrets/db_$r"; done
  [ -f "$base/data/PG_VERSION" ] && return 0
  mkdir -p "$base/data" "$base/sock" "$base/log"
  chmod 755 "$base"
  [ "$(id -u)" = 0 ] && chown "$pguser" "$base/data" "$base/sock" "$base/log"
  chmod 700 "$base/data"
  local pw
  pw=$(mktemp)
  cp "$secrets/db_admin" "$pw"
  [ "$(id -u)" = 0 ] && chown "$pguser" "$pw"
  chmod 600 "$pw"
  pc_as_pg "$bin/initdb" -D "$base/data" -U portcullis_admin --pwfile="$pw" \
    --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null \
    || { rm -f "$pw"; pc_die "initdb failed"; }
  rm -f "$pw"
  cat >> "$base/data/postgresql.conf" <<CONF
# --- Portcullis: private cluster, unix socket only ---
listen_addresses = ''
unix_socket_directories = '$base/sock'
unix_socket_permissions = 0777
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 400
shared_buffers = 256MB
wal_buffers = 16MB
max_wal_size = 2GB
checkpoint_timeout = 15min
log_min_messages = warning
log_statement = 'none'
log_min_error_statement = panic
log_min_duration_statement = -1
CONF
}

pc_pg_running() { pc_as_pg "$(pc_pg_bindir)/pg_ctl" -D "$1/data" status >/dev/null 2>&1; }

pc_psql_admin() { # BASE SECRETS DB [psql args...]
  local base=$1 secrets=$2 db=$3; shift 3
  PGPASSWORD=$(cat "$secrets/db_admin") psql -X -q -v ON_ERROR_STOP=1 -h "$base/sock" \
    -U portcullis_admin -d "$db" "$@"
}

pc_pg_start() { # BASE SECRETS
  local base=$1 secrets=$2
  if ! pc_pg_running "$base"; then
    pc_as_pg "$(pc_pg_bindir)/pg_ctl" -D "$base/data" -l "$base/log/postgres.log" -w -t 120 \
      start >/dev/null || { tail -20 "$base/log/postgres.log" >&2; pc_die "PostgreSQL did not start"; }
  fi
  # Login roles for the services; the migrations grant them their schemas.
  # The passwords reach psql on stdin (printf is a builtin), never in a
  # process's arguments where any local user could read them.
  {
    printf '\\set pw_gateway %s\n\\set pw_vault %s\n\\set pw_auditor %s\n' \
      "$(cat "$secrets/db_gateway")" "$(cat "$secrets/db_vault")" "$(cat "$secrets/db_auditor")"
    cat <<'SQL'
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['portcullis_gateway','portcullis_vault','portcullis_auditor']) r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE portcullis_gateway LOGIN PASSWORD :'pw_gateway';
ALTER ROLE portcullis_vault LOGIN PASSWORD :'pw_vault';
ALTER ROLE portcullis_auditor LOGIN PASSWORD :'pw_auditor';
ALTER ROLE portcullis_gateway SET statement_timeout = '15s';
ALTER ROLE portcullis_gateway SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE portcullis_vault SET statement_timeout = '15s';
ALTER ROLE portcullis_vault SET idle_in_transaction_session_timeout = '60s';
SQL
  } | pc_psql_admin "$base" "$secrets" postgres >/dev/null
}

pc_pg_createdb() { # BASE SECRETS DB
  pc_psql_admin "$1" "$2" postgres -v db="$3" >/dev/null <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

pc_pg_stop() { # BASE
  pc_pg_running "$1" || return 0
  pc_as_pg "$(pc_pg_bindir)/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null
}
