# make train: set up .venv (if missing) and run the default experiment.
# make test:  same set-up, then the whole test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.astro-exp-installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup train test lint bench clean-cache browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -e ".[dev,sweep]"
	@touch $(STAMP)

setup: $(STAMP)

train: setup
	$(BIN)/python train.py $(ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python scripts/bench.py $(ARGS)

clean-cache:
	rm -rf data/cache

# Debian's Chromium for the browser tests (Playwright drives it; no browser download needed)
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
