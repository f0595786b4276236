# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
# Both create (once) and reuse the virtual environment in .venv.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup setup-spark java run test test-spark test-all test-fast lint dev bench lock clean browser \
	data-docs-assets

## setup: the virtual environment with the DuckDB path and the dev tools (no Spark)
setup: $(STAMP)

# The pinned set installs through uv (itself pinned in constraints.txt, bootstrapped by pip),
# which fetches and unpacks in parallel: ≈ 2 s where pip takes ≈ 45 (pip compiles bytecode as
# it goes; after uv, `compile` below does). uv reads none of pip's settings, so where pip is
# given a package index of its own (PIP_INDEX_URL, PIP_NO_INDEX, or index-url / no-index in a
# pip.conf) pip installs, from that index; extra indexes and find-links only add sources, and uv resolves the same pins from
# PyPI without them. Where uv cannot be installed or fails, pip installs the same pins.
# (`$(call install,…)` splits its argument at commas: write a comma in the extras as $(comma);
# a second argument is passed to uv alone)
comma := ,
PIP_OWN_INDEX = { [ -n "$$PIP_INDEX_URL$$PIP_NO_INDEX" ] || \
	$(BIN)/python -m pip config list 2>/dev/null | grep -Eq '\.(index-url|no-index)='; }
define install
	@if $(PIP_OWN_INDEX); then \
	  echo "pip is set to a package index of its own: pip installs from it (about a minute)"; \
	  $(BIN)/python -m pip install --quiet -c constraints.txt -e "$(1)"; \
	elif $(BIN)/python -m pip install --quiet -c constraints.txt uv \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python \
	     -c constraints.txt $(2) -e "$(1)"; then :; else \
	  echo "uv could not install; pip installs instead (about a minute)"; \
	  $(BIN)/python -m pip install --quiet -c constraints.txt -e "$(1)"; fi
endef

# Bytecode for the installed packages and the project's modules, compiled once at install on
# every core: every run and test process would otherwise compile what it imports again where
# bytecode is not written (PYTHONDONTWRITEBYTECODE). Left out: the packages' own test suites
# and plotly's generated graph objects (16 of the 41 MB of source; only `plotly` itself is
# imported, by the dashboard, for the path of its plotly.min.js): 25 → 19 CPU-s. A file that
# does not compile is skipped (some packages ship such files); it would compile, or fail, at
# import as it always does.
NOT_COMPILED := /tests/|/plotly/graph_objs/
SITE_PACKAGES = $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
define compile
	$(BIN)/python -m compileall -qq -j 0 -x '$(NOT_COMPILED)' $(SITE_PACKAGES) pipelines || true
endef

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(call install,.[dev])
	@# the dbt manifest the definitions read, prepared once at install (runs never write here),
	@# while the bytecode is compiled beside it (one core each, where one after the other
	@# took ≈ 11 + 11 s)
	@{ $(compile); } & compiling=$$!; \
	  $(BIN)/python -c "from pipelines.dbt_project import parse_project; parse_project()"; \
	  prepared=$$?; wait $$compiling; exit $$prepared
	@touch $(STAMP)

## setup-spark: setup plus the `spark` extra (dbt-spark with PyHive for Thrift servers,
## pyspark 4 with its Spark Connect client: ~500 MB, pinned by constraints.txt) for the Spark
## engine and its tests; Spark in-process also needs Java 17 (make java)
SPARK_STAMP := $(VENV)/.installed-spark
setup-spark: $(SPARK_STAMP)

# Without uv's cache: pyspark, PyHive and thrift come as source distributions that uv builds,
# and it files every build (≈ 1.8 GB for pyspark: its unpacked source, its build and the
# wheel unpacked) under a new revision whenever the index answers that the file changed, which
# a proxy in front of PyPI can answer every time (seen here: a machine's disk filled by
# forty installs of this extra). Without the cache, uv builds in a temporary folder it removes:
# the install leaves the environment and nothing else, and takes as long (it built every time)
$(SPARK_STAMP): $(STAMP)
	$(call install,.[dev$(comma)spark],--no-cache)
	@$(compile)
	@touch $(SPARK_STAMP)

## java: Debian's Java 17 runtime for Spark, unless a Java 17 or newer is on PATH (needs root)
JAVA_OK := java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'
java:
	@$(JAVA_OK) || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	@java -version 2>&1 | head -1

## run: the whole nightly job on the bundled sample (generated on first use) into ./warehouse
run: setup
	$(BIN)/sales-kpi run

## test: the test suite on the default engine (real DuckDB, Dagster, dbt, GX, a real browser),
## on every core (pytest-xdist: a file at a time, the costliest first: COSTLIEST_FIRST in
## tests/conftest.py), in about 5 minutes on two cores by the machine's speed (README, "How
## long"). Everything but the Spark tests (marker `spark`), which are `make test-spark`; CI
## (.ci/run) runs both. The 25 slowest tests
## are listed at the end (where the time goes, in every CI log). One dbt thread per build: the
## test workers already keep every core busy (duckdb_threads; ≈ 10 % less CPU)
XDIST := -n auto --dist loadfile --no-loadscope-reorder
test: setup
	SALES_KPI_DUCKDB_THREADS=1 $(BIN)/python -m pytest -q $(XDIST) -m "not spark" --durations=25

## test-spark: the Spark path (marker `spark`): parity of every published mart with DuckDB's,
## the job on a local standalone cluster, Spark Connect and Thrift (the audit through a Thrift
## server too), a CRM export mapped by --source, a blocked and a stopped Spark night, one
## hung on a cluster without executors and ended by its time limit (about fifteen minutes on
## two cores). Spark is required here: a Spark test that cannot run
## (no spark extra, no Java 17) fails instead of skipping (SALES_KPI_REQUIRE_SPARK). Its dbt
## is the real one, not the warm dbt of `make test` (tests/warm_dbt.py; conftest.py
## `warm_dbt`): a Spark build's dbt hosts Spark's driver, which the tests look for under the run
test-spark: setup-spark
	SALES_KPI_REQUIRE_SPARK=1 $(BIN)/python -m pytest -q $(XDIST) -m spark --durations=15

## test-all: both suites, one after the other (what CI runs)
test-all: test test-spark

## test-fast: the rules alone, under a minute: Python unit tests and dbt's unit tests
## (everything but the tests marked `slow`, which run the job or a dbt build)
test-fast: setup
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow"

lint: setup
	$(BIN)/ruff check pipelines tests bench

## dev: the Dagster UI on http://127.0.0.1:3000 (runs are kept in .dagster_home)
dev: setup
	@mkdir -p $(DAGSTER_HOME)
	@# the instance's settings (run monitoring: a run past its time limit is stopped), unless
	@# that DAGSTER_HOME has its own
	@test -e $(DAGSTER_HOME)/dagster.yaml || cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@# PYTHONTZPATH set and empty: the daemon and the UI, which never import the project,
	@# read the pinned time-zone rules as the code does (pipelines/local_time.py)
	PYTHONTZPATH= DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

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

## lock: re-pin constraints.txt to what is installed now (every extra installed first, so
## the spark extra's pins are kept)
lock: setup-spark
	( head -2 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -v '^sales-kpi-pipeline' ) > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf warehouse data/sample .pytest_cache .ruff_cache
