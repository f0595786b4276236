# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
# Both create (once) and reuse the virtual environment in .venv.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup run test test-fast lint dev bench lock clean browser data-docs-assets

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@# the dbt manifest the definitions read, prepared once at install (runs never write here)
	$(BIN)/python -c "from pipelines.dbt_project import prepared_dbt_project as p; p()"
	@touch $(STAMP)

## run: the whole nightly job on the bundled sample (generated on first use) into ./warehouse
run: setup
	$(BIN)/sales-kpi run

## test: the whole test suite (real DuckDB, Dagster, dbt, GX), on every core (pytest-xdist:
## a file at a time, the costliest first: COSTLIEST_FIRST in tests/conftest.py)
XDIST := -n auto --dist loadfile --no-loadscope-reorder
test: setup
	$(BIN)/python -m pytest -q $(XDIST)

## test-fast: the rules alone, under a minute: Python unit tests and dbt's unit tests
## (everything but the tests marked `slow`, which run the job or a dbt build)
test-fast: setup
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow"

lint: setup
	$(BIN)/ruff check pipelines tests bench

## dev: the Dagster UI on http://127.0.0.1:3000 (runs are kept in .dagster_home)
dev: setup
	@mkdir -p $(DAGSTER_HOME)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## browser: Debian's Chromium for the dashboard's browser test (needs root; skipped without it)
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@chromium --version

## data-docs-assets: fetch the Data Docs' vendored scripts, styles and fonts again from the npm
## registry (pinned in pipelines/quality/data_docs.py) into expectations/data_docs_assets; needs npm
data-docs-assets: setup
	$(BIN)/python -m pipelines.quality.data_docs vendor

## bench: generate, load and time the job at SCALE (default 1); JSON report in bench/results
SCALE ?= 1
bench: setup
	$(BIN)/python bench/run_bench.py --scale $(SCALE)

## lock: re-pin constraints.txt to what is installed now
lock: setup
	( head -2 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -v '^sales-kpi-pipeline' ) > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf warehouse data/sample .pytest_cache .ruff_cache
