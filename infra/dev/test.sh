#!/usr/bin/env bash
# `make test`: lint, type checks, and the whole suite twice: on SQLite, then on PostgreSQL
# with Redis (both started here from Debian's packages). Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
infra/dev/bootstrap.sh --services

# The suite chooses its own settings; a developer's PERRON_* variables must not leak in.
for variable in $(env | grep -o '^PERRON_[A-Z_]*' || true); do unset "$variable"; done

echo "== lint (ruff) and types (mypy)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

echo "== services"
infra/postgres/pg.sh start
infra/redis/redis.sh start
infra/keycloak/keycloak.sh start
infra/stripe/stripe-mock.sh start
PG_PORT=${PERRON_PG_PORT:-55432}
REDIS_PORT=${PERRON_REDIS_PORT:-56379}
# The login tests run against this real Keycloak, once (in the SQLite pass); they fail
# rather than skip when it cannot be reached.
export PERRON_TEST_KEYCLOAK_URL="http://127.0.0.1:${PERRON_KEYCLOAK_PORT:-58080}"
PERRON_TEST_KEYCLOAK_ADMIN_PASSWORD=$(cat "${PERRON_KEYCLOAK_HOME:-$ROOT/.perron/keycloak}/admin-password")
export PERRON_TEST_KEYCLOAK_ADMIN_PASSWORD
export PERRON_TEST_KEYCLOAK_REQUIRED=1
# The billing tests call stripe-mock for real (customers, Checkout, the customer portal,
# products and prices); they fail rather than skip when it does not answer.
export PERRON_TEST_STRIPE_URL="http://127.0.0.1:${PERRON_STRIPE_MOCK_PORT:-58111}"

# Each module under modules/ is its own distribution with its own tests, run the way its
# authors run them: from its folder, with the perron.testing pytest plugin.
module_tests() {
  for module in modules/*/; do
    if [ -d "$module/tests" ]; then
      echo "-- $module"
      (cd "$module" && "$ROOT/.venv/bin/pytest" -q -p no:cacheprovider)
    fi
  done
}

echo "== tests on SQLite"
PERRON_TEST_BACKEND=sqlite \
PERRON_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/1" \
  .venv/bin/pytest "$@"
echo "== module tests on SQLite"
module_tests

echo "== tests on PostgreSQL (and Redis)"
PERRON_TEST_BACKEND=postgres \
PERRON_TEST_DATABASE_URL="postgresql://perron_app:perron_app@127.0.0.1:$PG_PORT/perron_test" \
PERRON_TEST_DATABASE_OWNER_URL="postgresql://perron_owner:perron_owner@127.0.0.1:$PG_PORT/perron_test" \
PERRON_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/2" \
  .venv/bin/pytest -m "not keycloak" "$@"
echo "== module tests on PostgreSQL"
(
  export PERRON_TEST_DATABASE_URL="postgresql://perron_app:perron_app@127.0.0.1:$PG_PORT/perron_test"
  export PERRON_TEST_DATABASE_OWNER_URL="postgresql://perron_owner:perron_owner@127.0.0.1:$PG_PORT/perron_test"
  module_tests
)
