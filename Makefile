# The two commands: `make run` serves on :8090 with embedded defaults, `make test` runs
# everything (lint, format, types, the tag's Node tests, Python tests including the browser's).
# Both build .venv on first use; `make test` also installs node_modules (the tag's minifier).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

NODE_STAMP := node_modules/.installed-stamp

.PHONY: run test lint system-deps bench clean tag vendor-charts screenshots

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

run: $(STAMP)
	$(BIN)/netra-analytics serve

# What the tests need from Debian's packages, installed when missing: redis-server (a real
# Redis), chromium (the browser tests), Node.js and npm (the tag's unit tests).
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium node:nodejs npm:npm
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing from the system packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) system-deps lint $(NODE_STAMP)
	node --test tests/tag/
	$(BIN)/pytest

# Rebuild the minified tag after editing src/netra_analytics/tag/netra-analytics.js.
tag: $(NODE_STAMP)
	npm run -s build:tag

# Copy the dashboard's charting library from node_modules (versions pinned in package.json and
# package-lock.json) into the package, with its licences: the service serves them itself.
VENDOR := src/netra_analytics/dashboards/static/vendor
vendor-charts: $(NODE_STAMP)
	cp node_modules/echarts/dist/echarts.min.js $(VENDOR)/echarts.min.js
	cp node_modules/echarts/LICENSE $(VENDOR)/echarts.LICENSE
	cp node_modules/echarts/NOTICE $(VENDOR)/echarts.NOTICE
	cp node_modules/echarts-wordcloud/dist/echarts-wordcloud.min.js $(VENDOR)/echarts-wordcloud.min.js

# Regenerate the dashboards' screenshots under docs/ (shown in the README): the browser test
# over the demo's default data (`netra-analytics demo`: 500 people, 30 days), saving full-page
# PNGs.
screenshots: $(STAMP)
	NETRA_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/dashboards/test_browser.py -q

bench: $(STAMP)
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.live_bench

clean:
	rm -rf $(VENV) data node_modules .mypy_cache .ruff_cache .pytest_cache
