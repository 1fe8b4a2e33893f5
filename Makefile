# Two commands matter: `make demo` and `make test`. Both build .venv themselves, from the lock.
#
# requirements/dev.lock pins every runtime, test, lint and build dependency with its hashes; the
# venv is rebuilt from it whenever the lock, pyproject.toml or the interpreter changes. Refresh it
# with `make lock` (needs network access to the package index).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.lock
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
STAMP := $(VENV)/.installed-$(PYVER)

.PHONY: demo test lint bench schemas lock clean

$(STAMP): $(LOCK) pyproject.toml
	@test -n "$(PYVER)" || { echo "make: $(PYTHON) does not run; set PYTHON=python3.11 (or newer)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --only-binary :all: -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lore_client.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# The layering rule (docs/architecture.md, "Layers") is a test over every module's imports.
lint: $(STAMP)
	$(BIN)/ruff check lore_daemon clients tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_architecture.py

bench: $(STAMP)
	@for b in tests/bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

schemas: $(STAMP)
	$(BIN)/python -m lore_daemon.schemagen schema/robot

# Re-resolve every dependency (pyproject.toml's ranges, requirements/tools.in) to the newest
# releases that satisfy them on Python 3.11 and later, with hashes of every published file.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml requirements/tools.in --extra test --extra lint \
		--universal --python-version 3.11 --generate-hashes --quiet -o $(LOCK)

clean:
	rm -rf $(VENV) build dist *.egg-info
