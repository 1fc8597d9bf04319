# UrbanPulse — the two commands of the README, and a few helpers.
#   make up     install what is missing, start the local services and the whole platform
#   make test   install what is missing, start the services the tests need, run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: help install up test test-unit check bench-micro services-start services-stop services-status clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@deploy/local/python-env.sh "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the local services (idempotent)
	@deploy/local/services.sh install

up: install  ## run the platform with simulated sensors (Ctrl-C stops everything)
	@deploy/local/up.sh

test: install  ## lint, type-check and run unit, integration and end-to-end tests
	@deploy/local/test.sh

test-unit: $(STAMP)  ## unit tests only: no services, a few seconds
	@$(VENV)/bin/pytest tests/unit -q

check: $(STAMP)  ## lint, type-check and check the import contracts (also part of make test)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports --no-logo

bench-micro: $(STAMP)  ## hot-path micro-benchmarks against their budgets (no services; not part of make test)
	@$(VENV)/bin/python -m benchmarks.micro $(BENCH_ARGS)

services-start: install  ## start Mosquitto, Kafka and InfluxDB on loopback
	@deploy/local/services.sh start

services-stop:  ## stop the local services
	@deploy/local/services.sh stop

services-status:  ## show which local services run
	@deploy/local/services.sh status

clean: services-stop  ## remove the virtualenv and all local service data
	rm -rf $(VENV) .local
