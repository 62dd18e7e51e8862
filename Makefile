# Operational entry points. `make demo` and `make test` work from a fresh clone: the first
# target that needs Python builds .venv from uv.lock (and bootstraps uv itself if missing).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The stamp lives inside .venv, so deleting .venv also forgets that it was synced.
STAMP := $(VENV)/.synced-from-lock

# uv: the one on PATH, else a private copy in a bootstrap venv outside the work tree
# (a venv rather than `pip install --user`, which PEP 668 systems refuse).
UV_VERSION := 0.13.9
UV_BOOTSTRAP := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mlops-fraud/uv-$(UV_VERSION)
UV := $(or $(shell command -v uv 2>/dev/null),$(UV_BOOTSTRAP)/bin/uv)

# Airflow and the project for local runs (the `local` profile: SQLite, folders, no services).
# `?=` lets the caller's environment win; tests set their own, isolated values in conftest.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION ?= True
export AIRFLOW__API__HOST ?= 127.0.0.1
export AIRFLOW__API__PORT ?= 8080
export MLOPS_PROFILE ?= local
export MLOPS_DATA_ROOT ?= $(CURDIR)/data
export GX_ANALYTICS_ENABLED ?= false
export MLFLOW_ALLOW_PICKLE_DESERIALIZATION ?= false

.PHONY: help venv demo e2e-prod test lint format bench bench-serving airflow serve prometheus feast-apply compose-config k8s-manifests clean distclean

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

venv: $(STAMP) ## build .venv from uv.lock (no-op when it is up to date)

$(UV_BOOTSTRAP)/bin/uv:
	@echo "uv not on PATH: installing uv==$(UV_VERSION) into $(UV_BOOTSTRAP)"
	python3 -m venv "$(UV_BOOTSTRAP)"
	"$(UV_BOOTSTRAP)/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode compiled at install: with PYTHONDONTWRITEBYTECODE set (this CI machine sets it)
# every process would compile skops, scikit-learn and MLflow from source again (the model
# service's start-up: 9-11 s instead of about 5).
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	touch $@

demo: venv ## run the closed loop on simulated data (local profile)
	$(PY) demo/run_demo.py

# The production profile as processes on this host: fresh PostgreSQL databases, a RabbitMQ
# vhost, Redis, moto's S3 server, the MLflow server, Airflow on Celery, the model service;
# the closed loop through it (demo/e2e_prod.py), judged by tests/e2e/test_production_profile.py;
# then a worker and a scheduler killed mid-run on a small world (tests/e2e/test_stack_faults.py).
E2E_PROD := $(BIN)/pytest -m e2e_prod -p no:cacheprovider tests/e2e/test_production_profile.py \
	tests/e2e/test_stack_faults.py
E2E_LOG := .e2e-prod.log

e2e-prod: venv ## the closed loop on the production profile, every component a real process
	$(E2E_PROD)

# The production loop spends most of its time waiting on its scheduler, its worker and its
# sensors, so it runs beside the rest of the suite rather than after it (its own Redis db,
# databases, vhost and ports). A background job starts with SIGINT ignored: `env` gives it
# back, so Ctrl-C stops both; SIGTERM to make is passed on as SIGINT (the loop's own stop).
test: lint ## lint (contracts, house rules), then the whole test suite and, beside it, e2e-prod
	@env --default-signal=INT $(E2E_PROD) > $(E2E_LOG) 2>&1 & loop=$$!; \
	trap 'kill -INT $$loop 2>/dev/null; wait $$loop; exit 143' TERM; \
	trap 'wait $$loop; exit 130' INT; \
	echo "make e2e-prod runs beside the suite; its output goes to $(E2E_LOG)"; \
	suite=0; $(BIN)/pytest || suite=$$?; \
	e2e=0; wait $$loop || e2e=$$?; \
	echo "===== make e2e-prod (exit $$e2e), the end of $(E2E_LOG):"; tail -n 40 $(E2E_LOG); \
	echo "suite exit $$suite, e2e-prod exit $$e2e"; \
	test $$suite -eq 0 && test $$e2e -eq 0

# The rules live in the project: ruff (with banned APIs; include/ruff.toml adds the logic's),
# the import contracts in pyproject.toml ([tool.importlinter], run from the repo root) and
# the house rules neither can say (tests/test_house_rules.py), and the CI workflow (actionlint;
# shellcheck, when installed, also checks its run: scripts).
lint: venv ## ruff check, ruff format --check, import contracts, workflows, house rules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/actionlint
	$(BIN)/pytest -q -p no:cacheprovider tests/test_house_rules.py

format: venv ## apply ruff format and the safe ruff fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv ## run the benchmarks; writes bench/results.json
	$(PY) -m bench.run

bench-serving: venv ## the model service and mlflow models serve at fixed rates; bench/serving-results.json
	$(PY) -m bench.run serving_bench --output bench/serving-results.json

airflow: venv ## Airflow UI on http://127.0.0.1:8080 (SQLite; on a demo's home, its run as it ended)
	$(PY) demo/airflow_ui.py

# The service's bearer token for `make serve` when the shell gives none: made once, kept here.
SERVE_TOKEN_FILE := $(CURDIR)/.serve-token

serve: venv ## the model service on http://127.0.0.1:8000; token from MLOPS_SERVE_TOKEN(_FILE), else .serve-token
	@if [ -z "$${MLOPS_SERVE_TOKEN:-}$${MLOPS_SERVE_TOKEN_FILE:-}" ]; then \
		test -s "$(SERVE_TOKEN_FILE)" || (umask 077 && \
			$(PY) -c 'import secrets; print(secrets.token_urlsafe(32))' > "$(SERVE_TOKEN_FILE)"); \
		export MLOPS_SERVE_TOKEN_FILE="$(SERVE_TOKEN_FILE)"; \
		echo "bearer token in $(SERVE_TOKEN_FILE); try:"; \
		echo "  curl -H \"Authorization: Bearer \$$(cat $(SERVE_TOKEN_FILE))\" http://127.0.0.1:$${MLOPS_SERVE_PORT:-8000}/metrics"; \
	fi; \
	OMP_NUM_THREADS=1 $(PY) -m mlops.serving.app

prometheus: ## install Debian's prometheus (the /metrics scrape test needs /usr/bin/prometheus)
	@command -v prometheus >/dev/null || test -x /usr/bin/prometheus || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; }

feast-apply: venv ## apply feature_repo/ to the Feast registry of the current settings (idempotent)
	$(PY) -m mlops.features.store

compose-config: venv ## validate docker-compose.yaml against the Compose specification
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yaml
	@if docker compose version >/dev/null 2>&1; then \
		docker compose --env-file .env.example config --quiet && echo "docker compose config: ok"; \
	else echo "docker compose plugin not installed: schema check only"; fi

# The image the pods run (built from Dockerfile and pushed where the cluster pulls from),
# pinned: a digest (name@sha256:...) or a version tag, never latest or local (refused).
PROJECT_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
K8S_IMAGE ?= mlops-fraud-airflow:$(PROJECT_VERSION)
K8S_NAMESPACE ?= mlops

k8s-manifests: venv ## render deploy/k8s/ from the compose model-service block (validated offline); K8S_IMAGE=...
	$(PY) -m mlops.manifests --image "$(K8S_IMAGE)" --namespace "$(K8S_NAMESPACE)" --out deploy/k8s

clean: ## remove caches, the local Airflow home and bench output (keeps .venv and data/)
	rm -rf .airflow .pytest_cache .ruff_cache .import_linter_cache bench/results.json
	find . -path ./.venv -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
