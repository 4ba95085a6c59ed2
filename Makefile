# `make run` and `make test` set everything up themselves (virtualenv, install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-postgres test-sqlite lint format schema migrations services soak fuzz bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

run: $(STAMP)  ## API + worker + scheduler on SQLite and an embedded Redis, with demo data
	$(BIN)/loyalty dev

test: $(STAMP) lint services  ## lint, then the suite on PostgreSQL + Redis and on SQLite + embedded Redis
	LOYALTY_TEST_BACKEND=postgres $(BIN)/pytest
	LOYALTY_TEST_BACKEND=sqlite $(BIN)/pytest

test-postgres: $(STAMP) services
	LOYALTY_TEST_BACKEND=postgres $(BIN)/pytest

test-sqlite: $(STAMP)
	LOYALTY_TEST_BACKEND=sqlite $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

schema: $(STAMP)  ## regenerate schema.graphql
	$(BIN)/loyalty export-schema -o schema.graphql

migrations: $(STAMP)  ## write a migration for model changes
	LOYALTY_DATABASE_URL=sqlite://:memory: $(BIN)/tortoise -c loyalty.db.TORTOISE_ORM makemigrations

services:  ## start PostgreSQL and Redis on this machine when they do not answer
	@bash scripts/ensure-services.sh

soak: $(STAMP) services  ## long mixed concurrent workload on both backends
	LOYALTY_SOAK=1 LOYALTY_TEST_BACKEND=postgres $(BIN)/pytest tests/test_soak.py
	LOYALTY_SOAK=1 LOYALTY_TEST_BACKEND=sqlite $(BIN)/pytest tests/test_soak.py

fuzz: $(STAMP) services  ## property-based tests with many more examples
	HYPOTHESIS_PROFILE=fuzz LOYALTY_TEST_BACKEND=postgres $(BIN)/pytest tests/points/test_ledger_model.py
	HYPOTHESIS_PROFILE=fuzz LOYALTY_TEST_BACKEND=sqlite $(BIN)/pytest tests/points/test_ledger_model.py

bench: $(STAMP) services  ## full benchmarks (results in bench/results/)
	$(BIN)/python -m bench.run --full

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
