# The two commands a user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest screenshots bench bench-proxy bench-accept bench-flood bench-flood-sim bench-cache bench-cache-store bench-scaleout clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,redis]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/forebay demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy forebay

pytest: $(STAMP)
	$(BIN)/pytest -q -n 4 --dist worksteal --durations=15

# The dashboard's screenshots in docs/img, taken by its browser tests (needs chromium).
screenshots: $(STAMP)
	DASHBOARD_SCREENSHOTS=docs/img $(BIN)/pytest -q tests/e2e/test_dashboard.py

# Benchmarks print figures against a reference measured in the same run; see
# docs/benchmarks.md. They need wrk, nginx and redis-server on the machine.
bench: bench-proxy bench-accept bench-flood bench-cache

bench-proxy: $(STAMP)
	$(BIN)/python -m bench.proxy

bench-accept: $(STAMP)
	$(BIN)/python -m bench.accept

bench-flood: $(STAMP)
	$(BIN)/python -m bench.flood

bench-flood-sim: $(STAMP)
	$(BIN)/python -m bench.flood_sim

bench-cache: $(STAMP)
	$(BIN)/python -m bench.cache

# A cache hit from local memory against one fetched from Redis (needs redis-server only).
bench-cache-store: $(STAMP)
	$(BIN)/python -m bench.cache_store

# One gateway against two on the same Redis (not part of `bench`: it takes about nine minutes).
bench-scaleout: $(STAMP)
	$(BIN)/python -m bench.scaleout

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
