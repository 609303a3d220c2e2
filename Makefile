# genesys-scim-sync: the project's command-line interface. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.9.30
export GENESYS_SYNC_HOME ?= $(CURDIR)/.sync-home
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/dags$(if $(PYTHONPATH),:$(PYTHONPATH))
CLI := $(PY) -m genesys_sync.cli
EXPORT ?=
CONF ?= {}
PYTEST_ARGS ?=
# pytest-xdist workers: the e2e and deployment tiers mostly wait on Airflow and the targets.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: help install demo test test-fast airflow sync sandbox lint format lock bench clean audit-verify audit-deps

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml scripts/check_install.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	# Compiled once here: with PYTHONDONTWRITEBYTECODE set, every process would compile Airflow and
	# Great Expectations again (about 6 s a process on 2 cores).
	$(VENV)/bin/uv pip install --python $(PY) --compile-bytecode -r requirements-dev.txt -c constraints.txt
	# The project itself, editable: registers its Airflow provider (the Genesys Cloud connection type).
	$(VENV)/bin/uv pip install --python $(PY) --no-deps -e .
	$(PY) scripts/check_install.py constraints.txt
	@touch $@

install: $(VENV)/.installed  ## create .venv and install the pinned dependencies

demo: install  ## start the sandbox, sync the sample export through the DAG, print the summary
	$(CLI) demo

test: install  ## the whole test suite (what CI runs); writes docs/reliability.md from its figures
	GENESYS_SYNC_RELIABILITY_DOC=docs/reliability.md $(PYTEST) $(PYTEST_ARGS)

test-fast: install  ## unit + stage tier (no Airflow run): the loop while developing
	$(PYTEST) -m "not e2e" $(PYTEST_ARGS)

airflow: install  ## Airflow (what `airflow standalone` runs) + the sandbox, on 127.0.0.1 (UI :8080)
	$(CLI) standalone

sync: install  ## one sync: make sync EXPORT=<path or URI> [CONF='{"dry_run": true}']
	$(CLI) sync $(if $(EXPORT),--export "$(EXPORT)") --conf '$(CONF)'

audit-deps: install  ## pip-audit of every pinned package in constraints.txt (needs a vulnerability service)
	$(VENV)/bin/uv tool run --from pip-audit==2.10.1 pip-audit -r constraints.txt --no-deps \
		--disable-pip --strict --progress-spinner off

audit-verify: install  ## check the audit log's hash chain ($AUDIT_LOG_PATH or the home's audit/audit.jsonl)
	$(PY) -m genesys_sync.audit verify

sandbox: install  ## run the Genesys Cloud sandbox in the foreground (port 8089)
	$(PY) -m genesys_sandbox --port 8089 --data-file $(GENESYS_SYNC_HOME)/sandbox/users.json

lint: install  ## ruff check + format check
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

lock: install  ## re-resolve requirements*.txt and rewrite constraints.txt
	$(VENV)/bin/uv pip compile --universal --python-version 3.11 requirements-dev.txt -o constraints.txt --no-header --no-annotate

bench: install  ## every benchmark in one run (~15 min): writes benchmarks/RESULTS.md
	$(PY) benchmarks/bench.py

clean:  ## remove the local state (runs, audit log, Airflow home); keeps .venv
	rm -rf $(GENESYS_SYNC_HOME)
