# The two commands of the README:
#   make up      bootstrap, train if needed, serve the whole stack (ARGS=--once: exit after
#                printing the served prediction)
#   make test    bootstrap, lint, type-check, then unit and integration tests on real servers
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=
# Test processes (pytest-xdist). Run one at a time, the tests kept 0.97 of 2 cores busy
# (the rest waits on servers); in two workers the suite took 1,104 s against 1,667-1,705 s
# (2026-12-07, 2 cores). Default: 2 where there are 2 cores or more, else 0 (one process).
# A module stays in one worker, and the modules on the session's trained platform share one
# (tests/conftest.py), so each is set up once.
TEST_WORKERS ?= $(shell [ "$$(nproc)" -ge 2 ] && echo 2 || echo 0)
XDIST = -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder
CODE := trademaster gateway exporters dags tests benchmarks
# What runs in production (bandit's scope; tests use assert and subprocess by design).
SHIPPED := trademaster gateway exporters dags benchmarks

.PHONY: help bootstrap up pipeline test lint typecheck unit integration bench format clean

help:
	@grep -E '^#' Makefile | head -5

bootstrap:
	@scripts/bootstrap.sh

up: bootstrap
	@$(VENV)/bin/trademaster up $(ARGS)

pipeline: bootstrap
	@$(VENV)/bin/trademaster pipeline run

lint: bootstrap
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/bandit --quiet --recursive --severity-level medium $(SHIPPED)

typecheck: bootstrap
	$(VENV)/bin/mypy trademaster gateway exporters dags benchmarks tests

test: lint typecheck
	$(PY) -m pytest --fail-on-skip $(XDIST) $(PYTEST_ARGS)

unit: bootstrap
	$(PY) -m pytest tests/unit $(XDIST) $(PYTEST_ARGS)

integration: bootstrap
	$(PY) -m pytest tests/integration --fail-on-skip $(XDIST) $(PYTEST_ARGS)

# Load, latency and per-model benchmarks against their baselines, then the perf_analyzer
# sweep per model against the in-process floor, which tunes dynamic batching into
# exporters/cpu_batching.json (about 25 minutes); results and plots in benchmarks/results/.
bench: bootstrap
	$(PY) -m benchmarks.gateway_load
	$(PY) -m benchmarks.gateway_latency
	$(PY) -m benchmarks.models
	$(PY) -m benchmarks.serving_sweep

format: bootstrap
	$(VENV)/bin/ruff format $(CODE)
	$(VENV)/bin/ruff check --fix $(CODE)

clean:
	rm -rf var feature_repo/data model_repository/*/[0-9]*
