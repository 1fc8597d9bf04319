# UrbanPulse — the two commands of the README, and a few helpers.
#   make up     install what running needs, start the local services and the whole platform
#   make test   also install the development tools, start the tests' own services, run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
# Two stamps, so each command installs only what it needs and neither redoes the other's work:
# `make up` after `make test` installs nothing, `make test` after `make up` adds the dev tools.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: help install install-dev up test test-unit check bench-micro services-start services-stop services-status clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(RUN_STAMP): pyproject.toml
	@deploy/local/python-env.sh "$(PYTHON)" "$(VENV)" run
	@touch $@

# The dev set includes everything of the run set, so it renews the run stamp too.
$(DEV_STAMP): pyproject.toml
	@deploy/local/python-env.sh "$(PYTHON)" "$(VENV)" dev
	@touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)  ## what running needs: .venv with UrbanPulse, the local services (idempotent)
	@deploy/local/services.sh install

install-dev: $(DEV_STAMP) install  ## also the development tools: pytest, mypy, ruff, helm, kubeconform, ...
	@deploy/tools/install.sh

up: install  ## run the platform with simulated sensors (Ctrl-C stops everything)
	@deploy/local/up.sh

test: install-dev  ## lint, type-check and run unit, integration and end-to-end tests
	@deploy/local/test.sh

test-unit: $(DEV_STAMP)  ## unit tests only: no services, a few seconds
	@$(VENV)/bin/pytest tests/unit -q

check: $(DEV_STAMP)  ## lint, type-check and check the import contracts (also part of make test)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports --no-logo

bench-micro: $(RUN_STAMP)  ## hot-path micro-benchmarks against their budgets (no services; not part of make test)
	@$(VENV)/bin/python -m benchmarks.micro $(BENCH_ARGS)

services-start: install  ## start Mosquitto, Kafka, InfluxDB and Prometheus on loopback (standard ports)
	@deploy/local/services.sh start

services-stop:  ## stop the local services (the platform's; the tests stop their own)
	@deploy/local/services.sh stop

services-status:  ## show which local services run, the platform's and the tests'
	@deploy/local/services.sh status
	@deploy/local/services.sh --test status | sed 's/^/test: /'

clean: services-stop  ## remove the virtualenv and all local service data
	@deploy/local/services.sh --test stop
	rm -rf $(VENV) .local
