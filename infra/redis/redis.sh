#!/usr/bin/env bash
# A private Redis for development, tests and benchmarks (Debian's redis-server).
#
#   infra/redis/redis.sh start | stop | env
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=${PERRON_REDIS_DATA:-$ROOT/.perron/redis}
PORT=${PERRON_REDIS_PORT:-56379}

start() {
  if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
      echo "Redis is not installed: run 'sudo apt-get install redis-server'" >&2; exit 1
    fi
    echo "Installing Redis from Debian's packages…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p "$DATA"
  if redis-cli -p "$PORT" ping >/dev/null 2>&1; then
    echo "Redis is already running on 127.0.0.1:$PORT."; return
  fi
  redis-server --port "$PORT" --bind 127.0.0.1 --daemonize yes --dir "$DATA" \
    --pidfile "$DATA/redis.pid" --logfile "$DATA/redis.log" --save "" --appendonly no \
    --protected-mode yes
  for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$PORT" ping >/dev/null
  echo "Redis is running on 127.0.0.1:$PORT."
}

stop() {
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  echo "Redis stopped."
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) echo "export PERRON_REDIS_URL=redis://127.0.0.1:$PORT/0" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
