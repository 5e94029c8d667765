# The two commands: `make run` serves on :8090 with embedded defaults, `make test` runs
# everything (lint, format, types, tests). Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint system-deps bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/netra-analytics serve

# redis-server for the tests that need a real Redis (installed from Debian's packages).
system-deps:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server from the system packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) system-deps lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.live_bench

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
