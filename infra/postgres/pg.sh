#!/usr/bin/env bash
# A private PostgreSQL cluster for development, tests and benchmarks (Debian's packages).
#
#   infra/postgres/pg.sh start   create it on first use, start it, create roles and databases
#   infra/postgres/pg.sh stop
#   infra/postgres/pg.sh env     print the PERRON_* variables that point at it
#
# Two roles, as in production: perron_owner owns the schema and runs migrations;
# perron_app is what the application connects as. It owns nothing and cannot bypass
# row-level security, so the isolation policies apply to everything it runs.
# The cluster trades durability for speed (fsync off): never put real data in it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=${PERRON_PG_DATA:-$ROOT/.perron/postgres}
PORT=${PERRON_PG_PORT:-55432}
DATABASES=${PERRON_PG_DATABASES:-"perron perron_test perron_bench"}

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

ensure_installed() {
  if [ -z "$(find_bin)" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "PostgreSQL is not installed: run 'sudo apt-get install postgresql'" >&2; exit 1
    fi
    echo "Installing PostgreSQL from Debian's packages…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
}

as_owner() {  # initdb and the server refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

superuser() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

psql_admin() {
  as_owner "$BIN/psql" -h "$DATA" -p "$PORT" -U "$(superuser)" -v ON_ERROR_STOP=1 -q "$@"
}

start() {
  ensure_installed
  BIN=$(find_bin)
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    chmod 755 "$(dirname "$DATA")"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
    chmod 700 "$DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U "$(superuser)" -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
CONF
  fi
  if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null
  fi
  psql_admin -d postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'perron_owner') THEN
    CREATE ROLE perron_owner LOGIN PASSWORD 'perron_owner';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'perron_app') THEN
    CREATE ROLE perron_app LOGIN PASSWORD 'perron_app' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;
SQL
  for db in $DATABASES; do
    if [ -z "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql_admin -d postgres -c "CREATE DATABASE $db OWNER perron_owner"
    fi
    psql_admin -d "$db" <<'SQL'
ALTER SCHEMA public OWNER TO perron_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO perron_app;
ALTER DEFAULT PRIVILEGES FOR ROLE perron_owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO perron_app;
ALTER DEFAULT PRIVILEGES FOR ROLE perron_owner IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO perron_app;
SQL
  done
  echo "PostgreSQL is running on 127.0.0.1:$PORT (data in $DATA)."
}

stop() {
  BIN=$(find_bin)
  if [ -n "$BIN" ] && [ -f "$DATA/PG_VERSION" ]; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  echo "PostgreSQL stopped."
}

env_vars() {
  local db=${1:-perron}
  echo "export PERRON_DATABASE_URL=postgresql://perron_app:perron_app@127.0.0.1:$PORT/$db"
  echo "export PERRON_DATABASE_OWNER_URL=postgresql://perron_owner:perron_owner@127.0.0.1:$PORT/$db"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) env_vars "${2:-perron}" ;;
  *) echo "usage: $0 start|stop|env [database]" >&2; exit 2 ;;
esac
