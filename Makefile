# Two commands matter: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lore_client.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(BIN)/ruff check lore_daemon clients tests
	$(BIN)/mypy

bench: $(STAMP)
	@for b in tests/bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

schemas: $(STAMP)
	$(BIN)/python -m lore_daemon.schemagen schema/robot

clean:
	rm -rf $(VENV) build dist *.egg-info
