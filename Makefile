# The Makefile is the interface: run, test, lint, bench, fmt, clean.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench fuzz fmt clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Paygate needs Python >= 3.11"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/paygate demo

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with its own embedded
# PostgreSQL + Redis; most tests wait on servers they start, so two fit two cores.
TEST_WORKERS ?= 2

test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/paygate bench

# A longer fuzz run than the one in `make test` (300 examples per operation and mode).
fuzz: $(STAMP)
	PAYGATE_FUZZ_CASES=300 $(BIN)/python -m pytest -s tests/integration/test_fuzz.py

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	@# Embedded PostgreSQL/Redis still running from .paygate/ (their command lines name it).
	-pkill -f '$(CURDIR)/[.]paygate/' || true
	rm -rf $(VENV) .paygate .mypy_cache .ruff_cache .pytest_cache *.egg-info
