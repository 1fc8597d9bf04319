#!/usr/bin/env bash
# `make test`: lint and type-check, run the unit tests, then start the test suite's OWN local
# services (deploy/local/services.sh --test: their own ports, data and logs in .local/test-BASE/)
# and run the integration and end-to-end tests against them; stop only what this script started.
# A platform of `make up` (standard ports, .local/) may run meanwhile: the two never meet, and
# the tests that stop Kafka or Mosquitto stop the test services' only.
#
#   deploy/local/test.sh                  all of it (what `make test` runs)
#   deploy/local/test.sh PYTEST_ARGS...   only pytest with these arguments, against the test
#       services, e.g. deploy/local/test.sh tests/integration/test_broker_persistence.py -x
#
# The test services' ports come from URBANPULSE_TEST_PORT_BASE (BASE to BASE+5; by default
# derived from this checkout's path, so several checkouts on one machine each get their own).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
services=(deploy/local/services.sh --test)
started=$(mktemp)

# The clean-up ignores INT and TERM: `make` passes a SIGTERM on to this script although the
# whole process group got one already, and a second signal would end the clean-up halfway
# (this left services running after .ci/run).
cleanup() {
  trap - EXIT
  trap '' INT TERM
  local names=()
  mapfile -t names <"$started"
  if [ ${#names[@]} -gt 0 ]; then "${services[@]}" stop "${names[@]}"; fi
  rm -f "$started"
}
trap cleanup EXIT
on_signal() { trap '' INT TERM; exit "$1"; }
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

step() { printf '\n== %s\n' "$*"; }

start_test_services() {
  # From here on the settings point at the test services, for pytest and every process the
  # tests start (tests/support.py reads them through Settings()).
  eval "$("${services[@]}" env)"
  step "test services on 127.0.0.1: Mosquitto $URBANPULSE_MQTT__PORT," \
    "Kafka ${URBANPULSE_KAFKA__BOOTSTRAP##*:}, InfluxDB ${URBANPULSE_INFLUX__URL##*:}" \
    "(URBANPULSE_TEST_PORT_BASE=$URBANPULSE_TEST_PORT_BASE;" \
    "data and logs in .local/test-$URBANPULSE_TEST_PORT_BASE/)"
  "${services[@]}" start --record "$started"
}

if [ $# -gt 0 ]; then
  start_test_services
  step "pytest $*"
  .venv/bin/pytest -p no:cacheprovider "$@"
  exit
fi

step "lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports --no-logo

step "check tools (helm, kubeconform, hadolint, shellcheck, systemd-analyze, valgrind)"
deploy/tools/install.sh

step "unit tests (no services)"
.venv/bin/pytest tests/unit -q -p no:cacheprovider

step "browser for the web tests (Debian chromium, chromium-driver)"
deploy/local/browser.sh

step "local services' programs"
deploy/local/services.sh install

start_test_services

step "integration and end-to-end tests (real Mosquitto, Kafka, InfluxDB: the test services)"
.venv/bin/pytest tests/integration tests/e2e -q -p no:cacheprovider
