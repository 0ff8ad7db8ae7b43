# The two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## start the bot (local simulator at http://127.0.0.1:8080/sim/ without WeCom credentials)
	$(BIN)/python -m bot serve

test: $(STAMP)  ## every test; PIONEER_TEST_DATABASE_URL=postgresql+asyncpg://… runs them on PostgreSQL
	$(BIN)/python -m pytest

bench: $(STAMP)  ## benchmarks; results go to docs/PERFORMANCE.md
	$(BIN)/python -m bench.run

lint: $(STAMP)  ## ruff (lint and format) and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot handlers storage

check: $(STAMP)  ## validate config.yaml
	$(BIN)/python -m bot check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
