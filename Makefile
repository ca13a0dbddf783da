# Two entry points (see README.md):
#   make demo   the main job: render the Internet-Draft and run the multi-agent recovery demo
#   make test   every gate: lint, format, types, the test suite with coverage
# Both create or reuse the virtual environment in .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE   := tools/node_modules/.installed

.PHONY: demo test draft sync lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

$(NODE): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

draft: $(STAMP)
	$(BIN)/python scripts/drafttools.py render

demo: draft
	$(BIN)/agent-recovery demo --out build/demo

sync: $(STAMP)
	$(BIN)/python scripts/sync_draft.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP) $(NODE)
	$(BIN)/python -m pytest --cov --cov-report=term

test: lint typecheck pytest

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .coverage
