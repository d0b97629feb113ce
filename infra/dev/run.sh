#!/usr/bin/env bash
# `make run`: Perron on this machine, embedded: SQLite under .perron/, jobs in process,
# the demo communes of tenants/ loaded. Extra arguments go to `perron dev` (e.g. --port 8080).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
infra/dev/bootstrap.sh
export PERRON_LOG_FORMAT=${PERRON_LOG_FORMAT:-console}
exec .venv/bin/perron dev "$@"
