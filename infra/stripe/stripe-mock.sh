#!/usr/bin/env bash
# stripe-mock, Stripe's own mock of its API (github.com/stripe/stripe-mock), for development
# and tests: built from the Go module proxy on first use, run on the loopback interface.
#
#   infra/stripe/stripe-mock.sh start    build it if missing, start it, wait until it answers
#   infra/stripe/stripe-mock.sh stop
#   infra/stripe/stripe-mock.sh env      print the variables that point Perron (and its tests) at it
#   infra/stripe/stripe-mock.sh check    exit 0 when it is built or can be (Go 1.22 or later)
#
# stripe-mock is stateless: it checks requests against Stripe's OpenAPI specification and
# answers with fixture objects (the same ids every time). It never remembers what was
# created; Perron's tests drive state changes through signed webhook payloads instead.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VERSION=${PERRON_STRIPE_MOCK_VERSION:-v0.203.0}
PORT=${PERRON_STRIPE_MOCK_PORT:-58111}
HTTPS_PORT=${PERRON_STRIPE_MOCK_HTTPS_PORT:-$((PORT + 1))}
BIN_DIR=${PERRON_BIN_DIR:-$ROOT/.perron/bin}
STATE=${PERRON_STRIPE_MOCK_HOME:-$ROOT/.perron/stripe-mock}
BINARY=$BIN_DIR/stripe-mock
PID_FILE=$STATE/stripe-mock.pid
LOG_FILE=$STATE/stripe-mock.log
URL=http://127.0.0.1:$PORT

for name in PORT HTTPS_PORT; do
  value=${!name}
  if [[ ! $value =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
    echo "PERRON_STRIPE_MOCK_$name must be a number between 1 and 65535, not '$value'." >&2; exit 2
  fi
done

answers() {  # stripe-mock answers any API path; a customer list is the cheapest
  curl -fsS -o /dev/null --max-time 2 -u sk_test_perron: "$URL/v1/customers" 2>/dev/null
}

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

go_usable() {  # stripe-mock $VERSION needs Go 1.22 or later
  local version
  command -v go >/dev/null || return 1
  version=$(go env GOVERSION 2>/dev/null || true)
  [[ $version =~ ^go1\.([0-9]+) ]] && ((BASH_REMATCH[1] >= 22))
}

install() {
  [ -x "$BINARY" ] && return
  if ! go_usable; then
    echo "stripe-mock is built with Go 1.22 or later, and none was found (found: $(go env GOVERSION 2>/dev/null || echo 'no go'))." >&2
    echo "Install Go from https://go.dev/dl/ (Debian 12's golang-go is 1.19, too old)." >&2
    exit 1
  fi
  echo "Building stripe-mock $VERSION with $(go version | cut -d' ' -f3) (about a minute the first time)…"
  mkdir -p "$BIN_DIR"
  GOBIN=$BIN_DIR go install "github.com/stripe/stripe-mock@$VERSION"
}

start() {
  command -v curl >/dev/null || { echo "curl is missing: sudo apt-get install curl" >&2; exit 1; }
  if answers; then
    echo "stripe-mock is already answering at $URL."; return
  fi
  install
  mkdir -p "$STATE"
  if pid=$(running_pid); then
    echo "stripe-mock (pid $pid) is running but does not answer; stopping it first."
    kill "$pid" 2>/dev/null || true
  fi
  # Given an HTTP address, stripe-mock still opens its HTTPS listener (on every interface,
  # port 12112) unless told where: keep that one on the loopback interface too.
  setsid "$BINARY" -http-addr "127.0.0.1:$PORT" -https-addr "127.0.0.1:$HTTPS_PORT" \
    >"$LOG_FILE" 2>&1 < /dev/null &
  echo $! > "$PID_FILE"
  for _ in $(seq 100); do
    answers && { echo "stripe-mock is running at $URL (log in $LOG_FILE)."; return; }
    if ! running_pid >/dev/null; then break; fi
    sleep 0.1
  done
  echo "stripe-mock did not start; its log ($LOG_FILE) says:" >&2
  tail -n 20 "$LOG_FILE" >&2 || true
  exit 1
}

stop() {
  if pid=$(running_pid); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  echo "stripe-mock stopped."
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  check) [ -x "$BINARY" ] || go_usable ;;
  env)
    echo "export PERRON_STRIPE_API_BASE=$URL"
    echo "export PERRON_TEST_STRIPE_URL=$URL"
    ;;
  *) echo "usage: $0 start|stop|env|check" >&2; exit 2 ;;
esac
