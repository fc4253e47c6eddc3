# One command per task. Every target sets up what it needs (idempotently) first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1
export MPLBACKEND := Agg
CDK := npx --no-install cdk
CDK_FLAGS := --no-notices

.PHONY: setup test lint synth demo deploy destroy bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.installed node_modules/.installed

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n 2

lint: setup
	$(VENV)/bin/ruff check .

synth: setup
	$(CDK) synth --quiet $(CDK_FLAGS)

demo: setup
	$(VENV)/bin/novajudge demo $(DEMO_ARGS)

deploy: setup
	$(CDK) deploy --all $(CDK_FLAGS) $(CDK_ARGS)

destroy: setup
	$(CDK) destroy --all $(CDK_FLAGS) $(CDK_ARGS)

bench: setup
	$(PY) benchmarks/bench_summarize.py
	$(PY) benchmarks/bench_scale.py
	$(PY) benchmarks/bench_generation.py

clean:
	rm -rf cdk.out .build .pytest_cache .ruff_cache
