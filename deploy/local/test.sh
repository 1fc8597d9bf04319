#!/usr/bin/env bash
# `make test`: lint and type-check, start the services the tests need (reusing running ones),
# run unit, integration and end-to-end tests, and stop only what this script started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
started=$(mktemp)
cleanup() {
  if [ -s "$started" ]; then deploy/local/services.sh stop $(cat "$started"); fi
  rm -f "$started"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports --no-logo

step "deployment check tools (helm, kubeconform, hadolint, shellcheck)"
deploy/tools/install.sh

step "unit tests (no services)"
.venv/bin/pytest tests/unit -q -p no:cacheprovider

step "browser for the web tests (Debian chromium, chromium-driver)"; deploy/local/browser.sh
step "starting local services"
deploy/local/services.sh start --record "$started"

step "integration and end-to-end tests (real Mosquitto, Kafka, InfluxDB)"
.venv/bin/pytest tests/integration tests/e2e -q -p no:cacheprovider
