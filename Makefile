# gotosync developer commands. Each target sets up what it needs from nothing (virtualenv,
# pip packages, Azurite from npm), idempotently; a second run only re-checks stamps.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: demo test lint format setup clean bench screenshots convergence

setup: $(PIP_STAMP) $(NPM_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(PIP_STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(PY) -m emulators.demo $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The console's screenshots in docs/console.md, taken by its browser tests on the local world.
screenshots: setup
	$(PY) -m pytest tests/console/test_console_browser.py -q --console-screenshots docs/console

bench: setup
	for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# The convergence suite's long profile (docs/safety-testing.md); ARGS go to pytest, e.g.
# ARGS="--hypothesis-seed=7".
convergence: setup
	CONVERGENCE_PROFILE=convergence-long CONVERGENCE_CLEAN_CYCLES=3 $(PY) -m pytest tests/convergence -q $(ARGS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
