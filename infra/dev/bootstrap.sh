#!/usr/bin/env bash
# Install what Perron needs on a fresh machine: uv, the locked Python dependencies in .venv,
# and (with --services, as root) the Debian packages the test suite starts.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "Installing uv (Python package manager) from PyPI…"
  python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
fi
UV_PYTHON_DOWNLOADS=never python3 -m uv sync --frozen --quiet

# axe-core for the accessibility check (tests/a11y), from the committed lock; skipped when current.
if [ ! -f infra/a11y/node_modules/axe-core/axe.min.js ] \
  || [ infra/a11y/package-lock.json -nt infra/a11y/node_modules/.package-lock.json ]; then
  if command -v npm >/dev/null; then
    npm ci --prefix infra/a11y --ignore-scripts --no-audit --no-fund --loglevel=error
  else
    echo "npm is missing: the accessibility check (tests/a11y) needs Node.js and npm for axe-core" >&2
  fi
fi

if [ "${1:-}" = "--services" ]; then
  missing=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ -x /usr/bin/chromium ] || missing+=(chromium)  # the accessibility check's browser
  # stripe-mock (the billing tests' Stripe) is built from the Go module proxy on first use:
  # it needs Go 1.22 or later, which Debian 12 does not package (its golang-go is 1.19).
  if ! infra/stripe/stripe-mock.sh check; then
    echo "The billing tests need stripe-mock, built with Go 1.22 or later: install Go from https://go.dev/dl/" >&2
    exit 1
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "Missing system packages: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}" >&2
      exit 1
    fi
    echo "Installing ${missing[*]} from Debian's packages…"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
