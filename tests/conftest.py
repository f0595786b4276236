"""Shared helpers: tiny landing folders and one-call loading for the ingestion tests, and the
one sample warehouse of a test session.

The ingestion tests write their own small files under `tmp_path`. Tests that need a whole run
on the generated sample share one: `sample_extracts` and `published_warehouse` are built once
per session (once per machine-wide session under pytest-xdist: the first worker builds them
under a file lock, the others wait and reuse them). They are read-only: a test that writes
copies them first (`copy_of_published_warehouse`), which costs a copy, not a run.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from filelock import FileLock

from pipelines.engines import spark_available
from pipelines.ingest.landing import scan_landing
from pipelines.ingest.loader import EntityLoad, load_entity
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.settings import ENV_PREFIX, PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from engine_runs import EngineRuns

DELIVERY = "2026-11-24T0200"
LATER_DELIVERY = "2026-11-25T0200"

# One valid row per entity; the rows refer to each other, so a landing folder made of them
# is consistent (user u1, company c1, contact p1, deal d1, ...).
VALID: dict[str, dict[str, str]] = {
    "users": {
        "user_id": "u1", "full_name": "Ann Smit", "email": "ann@example.com", "role": "ae",
        "team": "North", "is_active": "true", "updated_at": "2026-11-01T09:00:00Z",
    },
    "companies": {
        "company_id": "c1", "name": "Acme BV", "domain": "acme.example", "industry": "Software",
        "employee_count": "40", "country": "NL", "created_at": "2026-10-01T09:00:00Z",
        "updated_at": "2026-11-01T09:00:00Z", "is_deleted": "false",
    },
    "contacts": {
        "contact_id": "p1", "company_id": "c1", "email": "piet@acme.example",
        "first_name": "Piet", "last_name": "Jansen", "job_title": "CTO", "owner_user_id": "u1",
        "created_at": "2026-10-02T09:00:00Z", "updated_at": "2026-11-01T09:00:00Z",
        "is_deleted": "false",
    },
    "lifecycle_changes": {
        "change_id": "lc1", "contact_id": "p1", "lifecycle_stage": "lead",
        "changed_at": "2026-10-02T09:00:00Z", "changed_by_user_id": "u1", "is_deleted": "false",
    },
    "marketing_events": {
        "event_id": "me1", "contact_id": "p1", "event_type": "demo_request",
        "occurred_at": "2026-10-03T09:00:00Z", "campaign": "autumn", "channel": "web",
        "is_deleted": "false",
    },
    "activities": {
        "activity_id": "a1", "activity_type": "call", "direction": "outbound",
        "owner_user_id": "u1", "contact_id": "p1", "deal_id": "d1",
        "occurred_at": "2026-10-04T09:00:00Z", "duration_seconds": "420",
        "outcome": "connected", "updated_at": "2026-10-04T09:10:00Z", "is_deleted": "false",
    },
    "deals": {
        "deal_id": "d1", "contact_id": "p1", "company_id": "c1", "owner_user_id": "u1",
        "deal_type": "new_business", "stage": "proposal", "amount": "1000.00",
        "currency": "EUR", "created_at": "2026-10-05T09:00:00Z", "closed_at": "",
        "lost_reason": "", "updated_at": "2026-10-06T09:00:00Z", "is_deleted": "false",
    },
    "deal_stage_changes": {
        "deal_id": "d1", "stage": "proposal", "changed_at": "2026-10-06T09:00:00Z",
        "changed_by_user_id": "u1", "is_deleted": "false",
    },
    "quotes": {
        "quote_id": "q1", "deal_id": "d1", "status": "sent", "amount": "1000.00",
        "currency": "EUR", "created_at": "2026-10-06T09:00:00Z",
        "sent_at": "2026-10-06T10:00:00Z", "updated_at": "2026-10-06T10:00:00Z",
        "is_deleted": "false",
    },
    "fx_rates": {"currency": "USD", "month": "2026-10", "rate_to_eur": "0.92"},
}


def row(entity: str, **values: str) -> dict[str, str]:
    """A valid row of `entity` with some values replaced."""
    return {**VALID[entity], **values}


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    names: list[str] = []
    for record in rows:
        names += [name for name in record if name not in names]
    return names


def csv_text(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, delimiter: str = ","
) -> str:
    names = _columns(rows, columns)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(names)
    for record in rows:
        writer.writerow([record.get(name, "") for name in names])
    return out.getvalue()


def write_file(
    landing: Path,
    delivery: str,
    file_name: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    delimiter: str = ",",
    bom: bool = False,
) -> Path:
    """Write `rows` (all values as text) as `<landing>/<delivery>/<file_name>`, in the format
    its extension names: csv, csv.gz, jsonl, parquet (string columns) or xlsx."""
    path = landing / delivery / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    names = _columns(rows, columns)
    lowered = file_name.lower()
    if lowered.endswith((".csv", ".csv.gz")):
        data = (("\ufeff" if bom else "") + csv_text(rows, names, delimiter)).encode("utf-8")
        path.write_bytes(gzip.compress(data) if lowered.endswith(".gz") else data)
    elif lowered.endswith(".jsonl"):
        lines = [json.dumps({n: r[n] for n in names if n in r}) for r in rows]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    elif lowered.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {n: pa.array([r.get(n) for r in rows], pa.string()) for n in names}
        )
        pq.write_table(table, path)
    elif lowered.endswith(".xlsx"):
        import openpyxl

        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.append(names)
        for record in rows:
            sheet.append([record.get(n) for n in names])
        workbook.save(path)
    else:
        raise ValueError(f"no writer for {file_name}")
    return path


def damaged(data: bytes, start: int, length: int) -> bytes:
    """`data` with `length` bytes from `start` flipped (XOR 0x5A): a file damaged inside, its
    size and the rest of it as they were."""
    flipped = bytearray(data)
    for at in range(start, start + length):
        flipped[at] ^= 0x5A
    return bytes(flipped)


def write_delivery(
    landing: Path, delivery: str, files: Mapping[str, Sequence[Mapping[str, Any]]]
) -> None:
    """One CSV per entity: {"deals": [row, ...], ...}."""
    for entity, rows in files.items():
        write_file(landing, delivery, f"{entity}.csv", rows)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory warehouse whose session prints instants in UTC (as the job's does)."""
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    ensure_raw_layer(connection)
    yield connection
    connection.close()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


def load(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    entity: str,
    settings: Settings | None = None,
) -> EntityLoad:
    """scan_landing + ensure_raw_layer + load_entity, as the raw asset does."""
    settings = settings or Settings(extracts_dir=landing, warehouse_dir=landing.parent / "wh")
    files, _notes = scan_landing(landing)
    ensure_raw_layer(con)
    return load_entity(con, entity, files, settings, run_id="test")


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict]:
    """Rows of a query as dicts."""
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def manifest(con: duckdb.DuckDBPyConnection) -> list[dict]:
    return fetch(con, "select * from raw.load_manifest order by load_id")


def quarantine(con: duckdb.DuckDBPyConnection) -> list[dict]:
    return fetch(con, "select * from raw.quarantine order by line, column_name")


# --- markers ------------------------------------------------------------------------------------

# Session fixtures that run the whole job: a test that needs one is `slow` wherever it is.
JOB_FIXTURES = {"published_warehouse", "second_night_warehouse", "labelled_sample_warehouse",
                "engine_runs"}


# --- Spark: the tests marked `spark` ----------------------------------------------------------

# `make test` sets it: there a Spark test that cannot run fails (CI must prove the Spark path),
# elsewhere it is skipped, saying why.
REQUIRE_SPARK_ENV = "SALES_KPI_REQUIRE_SPARK"
MIN_JAVA = 17


def java_major_version(java: str) -> int | None:
    """The major version `java -version` reports (17 for "17.0.15", 8 for "1.8.0_392")."""
    try:
        shown = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if match is None:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major


def spark_missing() -> str | None:
    """Why the Spark tests cannot run on this machine, or None when they can."""
    if not spark_available():
        return ("pyspark and dbt-spark are not installed (the `spark` extra: make setup-spark, "
                "or pip install -c constraints.txt -e '.[spark]')")
    java = shutil.which("java")
    if java is None:
        return ("Spark needs Java 17 and there is no `java` on PATH (Debian: make java, "
                "i.e. apt-get install openjdk-17-jre-headless)")
    version = java_major_version(java)
    if version is None or version < MIN_JAVA:
        return f"Spark needs Java {MIN_JAVA} or newer; {java} is Java {version or 'unknown'}"
    return None


_SPARK_MISSING: list[str | None] = []


def pytest_configure(config: pytest.Config) -> None:
    """The install's dbt parse brought up to date once, by the real dbt, before the test
    workers start (in the controlling process: one parse, not one per worker), as `make
    setup` leaves it: every warm dbt's warm-up starts from it. On a project edited since the
    install (a model's description, say), the warm-up's own re-parse left a thread running,
    so each warm dbt ended and every dbt of the session failed ("connection reset"). A project
    that does not parse is left for the tests that run dbt to report."""
    if hasattr(config, "workerinput"):  # an xdist worker: its controller parsed
        return
    from pipelines.dbt_project import parse_project

    try:
        parse_project()
    except RuntimeError as exc:
        config.issue_config_time_warning(
            pytest.PytestWarning(f"the dbt project did not parse: {exc}"), stacklevel=2
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `spark` is skipped when Spark cannot run here, or fails under
    SALES_KPI_REQUIRE_SPARK=1 — saying why, before any of its fixtures is built."""
    if item.get_closest_marker("spark") is None:
        return
    if not _SPARK_MISSING:
        _SPARK_MISSING.append(spark_missing())
    reason = _SPARK_MISSING[0]
    if reason is None:
        return
    if os.environ.get(REQUIRE_SPARK_ENV) == "1":
        pytest.fail(f"{REQUIRE_SPARK_ENV}=1 but the Spark tests cannot run: {reason}",
                    pytrace=False)
    pytest.skip(reason)


# --- spreading the suite over the xdist workers -----------------------------------------------

# The test files in the order pytest-xdist hands them out (`--dist loadfile
# --no-loadscope-reorder`: a file at a time, so a module's fixtures are built once), costliest
# first as measured with `--durations` (each of these runs the job or a dbt build; the rest
# follow in file order). Long files first and short ones last keep both cores busy till the end
# instead of leaving one worker alone with a long file; the order changes speed, never outcomes.
COSTLIEST_FIRST = (
    # `make test-spark`: the job run on DuckDB and on a Spark cluster, then dbt's unit tests on
    # Spark (conftest `engine_runs`); test_spark_job reads those runs and runs three more Spark
    # jobs of its own (blocked, SIGTERM, no-op night), so it starts the runs while the other
    # core takes the next files (READ_SPARK_RUNS come last)
    "test_spark_job",
    # a Spark night hung on a cluster without executors, ended by its time limit (≈ 2
    # minutes, mostly waiting: beside the shared runs' builds)
    "test_spark_time_limit",
    # a Spark Connect and a Thrift server, a small Spark build on each (minutes under load)
    "test_spark_servers",
    # a Salesforce export mapped by --source, on Spark and on DuckDB (≈ 3 minutes)
    "test_spark_sources",
    # a DuckDB build handed to a Thrift server, audited through it (≈ 4 minutes)
    "test_spark_thrift_audit",
    # `make test` (2026-12-05, worker-seconds): the kills (77 s) build the shared run and the
    # night stopped after its build while the other core builds the labelled run for the
    # reporting tests (79 s); the files that read those runs follow; the fact-mart file builds
    # both oracle runs (the pinned one first), and the KPI file, which reads both, comes a few
    # files later (next to it, each had waited ≈ 15 s for the run the other was building); so
    # do the run guard's and the end-to-end files after the console file, which builds the
    # second night they read; the cheap files last, to fill the tail
    "test_run_guard_kill_at_each_step", "test_reporting", "test_run_guard_sigterm_at_each_step",
    "test_write_audit_publish", "test_source_twins", "test_marts_match_definitions",
    "test_vendor_exports", "test_console", "test_dbt_unit_tests", "test_kpis_match_definitions",
    "test_adapters", "test_run_guard", "test_end_to_end", "test_data_docs",
    "test_ingest_deliveries", "test_explain", "test_trust_boundaries", "test_read_only_install",
    "test_targets_and_registry", "test_dbt_parse_ahead", "test_spark_requirements",
    "test_gx_duckdb",
)
# Files that only read the shared Spark runs (`engine_runs`, started by test_spark_job): after
# every other file, when the runs are done, instead of holding a worker that waits for them.
READ_SPARK_RUNS = ("test_engine_parity", "test_spark_cluster")


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Until `condition()` holds; a failed assertion naming `what` after `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def held_for_writing(database: Path) -> Iterator[subprocess.Popen[str]]:
    """Another program holding the DuckDB file `database` open for writing (the DuckDB CLI's
    default: DuckDB's lock on it) until the block ends; its process is yielded (its PID is
    what the messages name)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(120)", str(database)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


# How a process of another run takes a warehouse's lock: as the CLI does (for a block), or as
# a run of the Dagster daemon or UI does (for the rest of its process, garbage collected since)
_TAKE_THE_LOCK = {
    "cli": "with warehouse_lock(Path(sys.argv[1])):\n"
           "    print('holding', flush=True); time.sleep(60)\n",
    "for_life": "hold_for_this_process(Path(sys.argv[1])); gc.collect()\n"
                "print('holding', flush=True); time.sleep(60)\n",
}


@contextmanager
def lock_held_elsewhere(
    warehouse: Path, how: str = "cli"
) -> Iterator[subprocess.Popen[str]]:
    """Another process holding `warehouse`'s run lock (`how`: _TAKE_THE_LOCK) until the block
    ends (it is killed then, if it still runs); yields it once it holds the lock."""
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import gc, sys, time; from pathlib import Path\n"
         "from pipelines.run_guard import hold_for_this_process, warehouse_lock\n"
         + _TAKE_THE_LOCK[how], str(warehouse)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def session_settings() -> tuple[str, ...]:
    """This test session's own settings in the environment: SALES_KPI_* (`make test`'s
    SALES_KPI_DUCKDB_THREADS, an operator's) but not the install's choice of dbt (the warm
    dbt), and DAGSTER_HOME (without it a run keeps its history in memory)."""
    from pipelines.settings import DBT_EXECUTABLE_ENV

    return tuple(name for name in os.environ
                 if name == "DAGSTER_HOME"
                 or (name.startswith(ENV_PREFIX) and name != DBT_EXECUTABLE_ENV))


def without_session_settings(patch: pytest.MonkeyPatch) -> None:
    """For a run whose settings are all its own or the defaults: `session_settings()`
    removed from the environment."""
    for name in session_settings():
        patch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def warm_dbt(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every dbt this worker's runs start is forked from a warm dbt (tests/warm_dbt.py),
    named as the install's dbt in this process's environment (SALES_KPI_DBT_EXECUTABLE) —
    where the session runs the job (tests marked `slow`) and no Spark test (a Spark build's
    dbt hosts Spark's driver, which those tests look for under the run)."""
    from warm_dbt import start_warm_dbt, stop_warm_dbt

    markers = {marker.name for item in request.session.items for marker in item.iter_markers()}
    warm = start_warm_dbt() if "slow" in markers and "spark" not in markers else None
    yield
    if warm is not None:
        stop_warm_dbt(warm)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that needs a whole run of the job through a shared fixture
    (`make test-fast` leaves them out; modules that run the job themselves say so), and
    hand out the costliest files first."""
    for item in items:
        if JOB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {name: place for place, name in enumerate(COSTLIEST_FIRST)}
    rank |= {name: len(rank) + 1 for name in READ_SPARK_RUNS}  # the rest rank len(COSTLIEST_FIRST)
    items.sort(key=lambda item: rank.get(item.path.stem, len(COSTLIEST_FIRST)))  # stable


# --- the session's sample warehouse ---------------------------------------------------------

# The shared sample: small enough to run in seconds of dbt work, large enough that every
# entity, stage and KPI has rows (the end-to-end tests check that).
SHARED_SAMPLE = {"scale": 0.1, "seed": 11}

# Not the project's files: the virtual environment, caches, and what tests themselves write.
OUTSIDE_PROJECT = {".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "artifacts", ".git",
                   "warehouse", "data", ".dagster_home"}


def project_snapshot() -> dict[str, tuple[int, int]]:
    """(size, modification time) of every file of the project folder, for the read-only
    install rule: a run must leave all of them as they were."""
    return {
        str(path.relative_to(PROJECT_ROOT)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in PROJECT_ROOT.rglob("*")
        if path.is_file() and not OUTSIDE_PROJECT & set(path.relative_to(PROJECT_ROOT).parts)
    }


def _session_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder every worker of this test session sees: under pytest-xdist each worker has its
    own base temp, and their parent is the session's."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / name


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """`<session folder>/name`, made by `build(folder)` by the first worker that asks; the
    others wait for it (a file lock) and get the finished folder. A build that failed is
    tried again by the next one that asks, and fails its tests the same way."""
    folder = _session_folder(tmp_path_factory, name)
    done = folder.parent / f"{name}.done"
    with FileLock(f"{folder}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def sample_extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated sample (scale 0.1, seed 11), read-only: copy it to add a delivery."""
    from pipelines.sample import generate_sample

    return built_once(
        tmp_path_factory, "sample_extracts", lambda out: generate_sample(out, **SHARED_SAMPLE)
    )


# A secret setting in the shared run's environment: its console and log must not show it
# (test_console.py); the webhook is unreachable and only called on a failure.
SHARED_RUN_WEBHOOK = "http://127.0.0.1:9/services/T000/B000/CONSOLE-SECRET-4711"


@pytest.fixture(scope="session")
def published_warehouse(
    sample_extracts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """One whole nightly run through the CLI (load, dbt build, checks, publish, site) over the
    shared sample, as `make run` does it: `sales-kpi run` in a new interpreter (`cold`: not
    forked from the warm CLI), stdout and stderr piped (as under cron), with a secret setting
    in its environment, from the project folder as it is (writable: the read-only install
    test's snapshot would not see a write the code tolerates on a read-only mount); read-only.
    Kept next to it: the run's console (`<warehouse>.cli.json`: exit code, stdout, stderr,
    seconds; the console tests read it) and the project folder's snapshot before and after the run
    (`<warehouse>.project-before.json`, `…-after.json`; the read-only install test)."""
    from pipelines.dbt_project import prepared_dbt_project

    def build(warehouse: Path) -> None:
        prepared_dbt_project()  # the install step (make setup) prepares the manifest
        before = project_snapshot()
        run = run_cli_subprocess(
            "--extracts", str(sample_extracts), "--warehouse", str(warehouse),
            env={"SALES_KPI_ALERT_WEBHOOK_URL": SHARED_RUN_WEBHOOK},
            drop=("SALES_KPI_WRITE_SITE", "NO_COLOR"), cold=True,
        )
        after = project_snapshot()
        assert run["code"] == 0, run["stdout"][-3000:] + run["stderr"][-3000:]
        for when, snapshot in (("before", before), ("after", after)):
            (warehouse.parent / f"{warehouse.name}.project-{when}.json").write_text(
                json.dumps(snapshot), encoding="utf-8"
            )
        (warehouse.parent / f"{warehouse.name}.cli.json").write_text(
            json.dumps(run), encoding="utf-8"
        )

    return built_once(tmp_path_factory, "published_warehouse", build)


@pytest.fixture(scope="session")
def second_night_warehouse(
    published_warehouse: Path, sample_extracts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the published warehouse with the leftovers of a killed publication planted in
    it (a half-written `.marts-0123.duckdb`, a never-published `parquet-runs` folder), and on
    it a second whole run over the same files: `sales-kpi run --force --quiet`, without the
    site, in a subprocess; read-only. Kept next to it: its console (`<warehouse>.cli.json`) and
    the raw layer's row counts before and after it (`<warehouse>.raw-counts.json`). Read by the
    second-night tests of test_end_to_end.py, the --quiet console test and the leftovers test of
    test_run_guard.py: one run instead of one each."""

    def build(warehouse: Path) -> None:
        copy_warehouse(published_warehouse, warehouse)
        (warehouse / ".marts-0123.duckdb").write_bytes(b"half a file")
        (warehouse / "parquet-runs" / "never-published").mkdir(parents=True)
        before = raw_counts(warehouse)
        run = run_cli_subprocess(
            "--extracts", str(sample_extracts), "--warehouse", str(warehouse), "--force",
            "--quiet", env={"SALES_KPI_WRITE_SITE": "false"},
        )
        assert run["code"] == 0, run["stdout"][-3000:] + run["stderr"][-3000:]
        (warehouse.parent / f"{warehouse.name}.cli.json").write_text(
            json.dumps(run), encoding="utf-8"
        )
        (warehouse.parent / f"{warehouse.name}.raw-counts.json").write_text(
            json.dumps({"before": before, "after": raw_counts(warehouse)}), encoding="utf-8"
        )

    return built_once(tmp_path_factory, "second_night_warehouse", build)


@pytest.fixture(scope="session")
def stopped_after_build(
    published_warehouse: Path, sample_extracts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the published warehouse on which the next night's run (site included; the
    shared sample with one file delivered again unchanged) was killed -9 at its checks, after
    a complete dbt build (tests/run_guard_steps.py `stop_after_build`); read-only. Its folder
    holds `extracts` (that night's landing folder), `warehouse` and the kill (`kill/`). The
    stop tests copy it: a run there without --force resumes from the build (checks,
    publication, site), so they stop runs at those steps without building again for each."""
    from run_guard_steps import stop_after_build

    return built_once(
        tmp_path_factory, "stopped_after_build",
        lambda folder: stop_after_build(sample_extracts, published_warehouse, folder),
    )


JOB_FIXTURES.add("stopped_after_build")


def recorded(warehouse: Path, what: str) -> Any:
    """What a shared run kept beside its warehouse (`cli`, `raw-counts`, ...)."""
    return json.loads((warehouse.parent / f"{warehouse.name}.{what}.json").read_text(
        encoding="utf-8"))


def raw_counts(warehouse: Path) -> dict[str, int]:
    """Rows per raw entity, and of the load manifest, in a warehouse."""
    from pipelines.contract import ENTITY_NAMES

    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        counts = {
            e: con.execute(f"select count(*) from raw.{e}").fetchone()[0] for e in ENTITY_NAMES
        }
        counts["manifest"] = con.execute("select count(*) from raw.load_manifest").fetchone()[0]
    return counts


def run_cli_subprocess(
    *args: str, env: Mapping[str, str] | None = None, drop: Sequence[str] = (),
    timeout: float = 900, read_only_project: bool = False, cold: bool = False,
) -> dict[str, Any]:
    """`sales-kpi run ARGS` in a process of its own from this checkout, stdout and stderr
    piped (as under cron or `| cat`): its exit code, stdout, stderr and seconds. The process
    is a fork of this worker's warm CLI (tests/warm_cli.py: the same `main()`, without ≈ 9
    CPU-s of imports); with `cold` a new interpreter (`python -c`), as cron starts it. With
    `read_only_project` (a new interpreter too) the project folder is bind-mounted read-only
    for it (a private mount namespace: `read_only_project_command`), as a read-only install
    would be."""
    import time

    started = time.monotonic()
    result = _cli_process(args, env, drop, read_only_project, text=True, timeout=timeout,
                          cold=cold)
    return {"code": result.returncode, "stdout": result.stdout, "stderr": result.stderr,
            "seconds": time.monotonic() - started, "read_only_project": read_only_project}


# The careless labellers of the generated sample (scale 0.05, seed 42); at that scale they
# label 14 contacts each, so the labelled run judges from 10 labels on.
MISLABELLERS = {"USR-0005", "USR-0011"}


# What the labelled run sets beyond the defaults (a test that repeats one of its steps, e.g.
# the dbt docs, uses the same settings).
LABELLED_RUN = {"min_labels_judged": 10}


@pytest.fixture(scope="session")
def labelled_sample_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One whole run (with the site) over the sample at scale 0.05, seed 42, that judges
    labels from `min_labels_judged=10` on, so the label check flags MISLABELLERS (a `+custom`
    run). Read-only: the dashboard tests read it, the Data Docs tests run again on a copy.
    Its extracts are the folder `extracts` beside it."""
    from pipelines.job_runner import run_nightly_job
    from pipelines.sample import generate_sample

    def build(folder: Path) -> None:
        extracts, warehouse = folder / "extracts", folder / "warehouse"
        generate_sample(extracts, scale=0.05, seed=42)
        settings = Settings(extracts_dir=extracts, warehouse_dir=warehouse, **LABELLED_RUN)
        outcome = run_nightly_job(settings, log_level="WARNING")
        assert outcome.success, outcome.failures

    return built_once(tmp_path_factory, "labelled_sample", build) / "warehouse"


@pytest.fixture(scope="session")
def engine_runs(tmp_path_factory: pytest.TempPathFactory) -> EngineRuns:
    """The job run on DuckDB and on Spark over one small sample with target overrides, the
    Spark run on a local standalone cluster started for it, and dbt's unit tests on Spark
    (tests/engine_runs.py); read-only. Once per session: the parity, cluster and Spark job
    tests read the same two runs."""
    from engine_runs import EngineRuns, run_both_engines

    return EngineRuns(built_once(tmp_path_factory, "engine_runs", run_both_engines))


def copy_warehouse(warehouse: Path, to: Path) -> Path:
    """A copy of a published warehouse (its `parquet` link kept a link) to run on again."""
    shutil.copytree(warehouse, to, symlinks=True)
    return to


@pytest.fixture
def copy_of_published_warehouse(published_warehouse: Path, tmp_path: Path) -> Path:
    """This test's own copy of the shared published warehouse."""
    return copy_warehouse(published_warehouse, tmp_path / "warehouse")


# --- shared runs of the oracle, source and reporting tests ---------------------------------------

# Both run the whole job: a test that needs one is `slow` (see JOB_FIXTURES above).
JOB_FIXTURES |= {"derived_oracle_run", "pinned_oracle_run"}


@pytest.fixture(scope="session")
def derived_oracle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run with `as_of` derived from the data that both oracle files compare (the fact
    marts and the KPI marts) and whose published marts test_explain.py explains:
    tests/oracle_runs.py `build_derived_run`; read-only. Its folder holds `extracts/`,
    `warehouse/` and `overrides.csv`."""
    from oracle_runs import build_derived_run

    return built_once(tmp_path_factory, "derived_oracle_run", build_derived_run)


@pytest.fixture(scope="session")
def pinned_oracle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run with `as_of` pinned and `kpi_program_start` set that both oracle files compare:
    tests/oracle_runs.py `build_pinned_run`; read-only, laid out as `derived_oracle_run`."""
    from oracle_runs import build_pinned_run

    return built_once(tmp_path_factory, "pinned_oracle_run", build_pinned_run)


# --- shared runs of the run guard, the console and the trust boundaries ---------------------


def read_only_mount_works(folder: Path) -> bool:
    """Whether this machine lets a test bind-mount `folder` read-only in a private mount
    namespace (root in a container usually may; elsewhere the read-only install test is
    skipped and the shared run is an ordinary one)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         'mount --rbind "$1" "$1" && mount -o remount,bind,ro "$1" && [ ! -w "$1" ]',
         "probe", str(folder)],
        capture_output=True, check=False,
    )
    return probe.returncode == 0


def read_only_project_command(command: Sequence[str]) -> list[str]:
    """`command` run from the project folder bind-mounted read-only onto itself, in a private
    mount namespace (nobody else sees the mount); it refuses to start if the folder is still
    writable."""
    script = ('mount --rbind "$1" "$1" && mount -o remount,bind,ro "$1" && cd "$1" && '
              '[ ! -w "$1" ] && shift && exec "$@"')
    return ["unshare", "-m", "sh", "-c", script, "read-only-project", str(PROJECT_ROOT),
            *command]


# Every kind of character that can steer a terminal: a colour, an OSC title (ended by BEL),
# carriage return, backspace, DEL, the C1 control sequence introducer, a bidi override.
ESC_RED = "\x1b[31m"
OSC_TITLE = "\x1b]0;pwned\x07"
HOSTILE = f"{ESC_RED}{OSC_TITLE}\r\b\x7f\x9b2J\u202e"
# HOSTILE as a folder's name: without the colour's `[`, which opens a file pattern (a delivery
# named with one is refused before anything is read: test_trust_boundaries.py); the OSC title's
# ESC, the C1 introducer and the bidi override stay
HOSTILE_FOLDER_NAME = f"{OSC_TITLE}\r\b\x7f\x9b2J\u202e"
# The delivery of hostile names added after the shared sample's last one.
HOSTILE_DELIVERY = f"2026-11-27T0200{HOSTILE_FOLDER_NAME}"


def plant_hostile_names(extracts: Path) -> None:
    """A later delivery that renames every rep and team of the first one with HOSTILE
    appended, in a folder whose name carries HOSTILE too, beside a stray file and a hidden
    folder named with it."""
    first = sorted(extracts.iterdir())[0]
    with (first / "users.csv").open(newline="", encoding="utf-8") as handle:
        users = list(csv.DictReader(handle))
    for user in users:
        user["full_name"] += HOSTILE
        user["team"] = user["team"] and user["team"] + HOSTILE
    delivery = extracts / HOSTILE_DELIVERY
    delivery.mkdir()
    with (delivery / "users.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(users[0]))
        writer.writeheader()
        writer.writerows(users)
    (delivery / f"notes{HOSTILE}.txt").write_text("x", encoding="utf-8")
    (extracts / f".hidden{HOSTILE}").mkdir()


# The hostile-names run's warehouse folder: a quote and a space in the path are a name like
# any other (every SQL statement that names a file quotes it: pipelines/sql_text.py)
HOSTILE_WAREHOUSE = "o'brien's warehouse"


@pytest.fixture(scope="session")
def hostile_verbose_run(
    sample_extracts: Path, published_warehouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """One whole run (site included) through the CLI with `--force --verbose`, stdout and
    stderr piped, on a copy of the published warehouse, over a copy of the shared sample with
    a delivery of hostile names added (`plant_hostile_names`), into a warehouse folder whose
    name has a quote and a space (HOSTILE_WAREHOUSE); read-only. Its folder holds
    `extracts`, the warehouse, the run's raw `stdout` and `stderr` (bytes: a stray byte or a
    carriage return must stay visible), `code`, and `read_only_project`: the project folder
    is bind-mounted read-only for it where this machine allows (the read-only install test).
    Read by the console's --verbose test
    (Dagster's and dbt's lines live) and the trust boundaries' hostile-names test (no byte a
    terminal acts on in any of them): one run instead of one each."""

    def build(folder: Path) -> None:
        extracts = folder / "extracts"
        shutil.copytree(sample_extracts, extracts)
        plant_hostile_names(extracts)
        warehouse = copy_warehouse(published_warehouse, folder / HOSTILE_WAREHOUSE)
        run_cli_recording_bytes(
            folder, "--extracts", str(extracts), "--warehouse", str(warehouse), "--force",
            "--verbose", drop=("SALES_KPI_WRITE_SITE",),
            read_only_project=read_only_mount_works(PROJECT_ROOT),
        )

    return built_once(tmp_path_factory, "hostile_verbose_run", build)


# The secret setting in the environment of the run that fails at the load.
REJECTED_RUN_WEBHOOK = SHARED_RUN_WEBHOOK


@pytest.fixture(scope="session")
def rejected_hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run through the CLI (stdout and stderr piped) that fails at the load: its only
    delivery, named `DELIVERY` + HOSTILE, holds a users.csv whose header and value are
    HOSTILE (the contract's columns missing: rejected); a secret webhook in its environment
    and no retries. Its folder holds the raw `stdout`, `stderr` and `code`. Read by the
    console's exit-code test (exit 1 naming the file and the log; the alert in the log, not
    the secret) and the trust boundaries' hostile-failure test (no byte a terminal acts on):
    one run instead of one each."""

    def build(folder: Path) -> None:
        delivery = folder / "extracts" / f"{DELIVERY}{HOSTILE_FOLDER_NAME}"
        delivery.mkdir(parents=True)
        (delivery / "users.csv").write_text(f"user_id,{HOSTILE}\nu1,{HOSTILE}\n",
                                            encoding="utf-8")
        run_cli_recording_bytes(
            folder, "--extracts", str(folder / "extracts"), "--warehouse",
            str(folder / "warehouse"),
            env={"SALES_KPI_ALERT_WEBHOOK_URL": REJECTED_RUN_WEBHOOK,
                 "SALES_KPI_STEP_RETRIES": "0"},
        )

    return built_once(tmp_path_factory, "rejected_hostile_run", build)


def run_cli_recording_bytes(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, drop: Sequence[str] = (),
    read_only_project: bool = False,
) -> None:
    """`sales-kpi run ARGS` in a subprocess, stdout and stderr piped, kept as they came
    (bytes: a stray byte or a carriage return stays visible) in `folder/stdout`,
    `folder/stderr`, its exit code in `folder/code`, and in `folder/read_only_project` whether
    the project folder was bind-mounted read-only for it (`read_only_project_command`)."""
    result = _cli_process(args, env, drop, read_only_project, text=False, timeout=900)
    (folder / "stdout").write_bytes(result.stdout)
    (folder / "stderr").write_bytes(result.stderr)
    (folder / "code").write_text(str(result.returncode), encoding="utf-8")
    (folder / "read_only_project").write_text(str(read_only_project).lower(), encoding="utf-8")


def _cli_process(
    args: Sequence[str], env: Mapping[str, str] | None, drop: Sequence[str],
    read_only_project: bool, *, text: bool, timeout: float, cold: bool = False,
) -> subprocess.CompletedProcess[Any]:
    """`sales-kpi run ARGS` from the project folder, this environment without `drop` plus
    `env`, its output captured: forked from the warm CLI (tests/warm_cli.py), or with `cold`
    a new interpreter. A run with `read_only_project` is always a new interpreter, started in
    a mount namespace where the project folder is read-only (`read_only_project_command`):
    its own imports must not write the project either."""
    from warm_cli import run_warm
    from warm_dbt import real_dbt

    environment = {k: v for k, v in os.environ.items() if k not in drop}
    environment |= env or {}
    if not (cold or read_only_project):
        return run_warm(["run", *args], env=environment, timeout=timeout, text=text)
    environment = real_dbt(environment)  # and the install's own dbt
    command = cli_run_command(*args)
    if read_only_project:
        command = read_only_project_command(command)
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=text,
        check=False, timeout=timeout,
    )


def cli_run_command(*args: str) -> list[str]:
    """`sales-kpi run ARGS` with this test session's Python (the checkout's CLI)."""
    import sys

    return [sys.executable, "-c",
            "import sys; from pipelines.cli import main; raise SystemExit(main(sys.argv[1:]))",
            "run", *args]
