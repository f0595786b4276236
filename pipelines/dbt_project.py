"""The dbt project as Dagster sees it, with a manifest that is never missing or stale.

dagster-dbt prepares the manifest only under `dagster dev`; the CLI, the tests and a
production deployment load these definitions too, so the manifest is (re)built here whenever
a model, seed, macro or the project file is newer than it. (`make setup` does it once at
install; without it, the first process to load the definitions parses — and another loading
them meanwhile must never read half a manifest: the parse is written beside and renamed in.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.dbt_ahead import AHEAD_ENV
from pipelines.run_guard import GUARDED, guarded_executable, process_ended
from pipelines.settings import (
    DEFINITION_SETTINGS,
    PROJECT_ROOT,
    Settings,
    chosen_dbt,
    installed_dbt,
)

if TYPE_CHECKING:
    from dagster_dbt import DbtProject

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DBT_DATABASE_ENV = "SALES_KPI_DBT_DATABASE"
DUCKDB_THREADS_ENV = "SALES_KPI_DUCKDB_THREADS"
# The folder dbt runs in: the run's warehouse (the launcher changes to it), so that the profile
# can name the warehouse file by a path relative to it (see profile_environment)
DBT_WORKDIR_ENV = "SALES_KPI_DBT_WORKDIR"
# What the install's parse (`make setup`) was made with: its vars and profile environment
INSTALL_PARSE_INPUTS = "partial_parse.inputs.json"
PARTIAL_PARSE = "partial_parse.msgpack"  # dbt's saved parse state
MANIFEST = "manifest.json"
STAGING_PREFIX = ".parse-"  # + pid: a parse of the install's project on its way into target/
# Where `make setup` leaves the project's parse (manifest, saved state, INSTALL_PARSE_INPUTS)
INSTALL_TARGET = DBT_PROJECT_DIR / "target"
_SOURCE_FOLDERS = ("models", "seeds", "macros", "tests")


def dbt_executable() -> str:
    """The dbt the install names (pipelines/settings.py `chosen_dbt`), else the one installed
    beside this Python, started through a guard that dies with the run, in the folder the run
    names (DBT_WORKDIR_ENV; pipelines/run_guard.py)."""
    installed = installed_dbt()
    executable = chosen_dbt() or (str(installed) if installed.exists() else "dbt")
    return guarded_executable(executable, workdir_env=DBT_WORKDIR_ENV, hand_over_env=AHEAD_ENV)


def manifest_is_stale(project_dir: Path = DBT_PROJECT_DIR) -> bool:
    """Whether the project's manifest (under `target/`) is missing or older than one of its
    sources."""
    manifest = project_dir / INSTALL_TARGET.name / MANIFEST
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in _SOURCE_FOLDERS:
        sources.extend(p for p in (project_dir / folder).rglob("*") if p.is_file())
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def prepared_dbt_project(project_dir: Path = DBT_PROJECT_DIR) -> DbtProject:
    """The project (the install's, unless another folder is named), its manifest freshly
    parsed when missing or older than its sources (`parse_project`)."""
    from dagster_dbt import DbtProject

    parse_project(project_dir)
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir,
                      target_path=Path(INSTALL_TARGET.name))


def parse_project(project_dir: Path = DBT_PROJECT_DIR) -> None:
    """Parse the project into its `target/` when its manifest is missing or stale (`make
    setup` runs this once; without it, the first process to load the definitions does).

    The parse writes into a folder of its own under `target/`, and its files are renamed into
    `target/` one by one, the manifest last: a process that reads the manifest meanwhile reads
    the old one or the new one, whole (dbt itself writes the file in place, in pieces). Two
    processes that find the manifest stale at once both parse; the last rename wins.

    dbt is started here as dagster-dbt would start it, without dagster-dbt's two preliminaries
    (`dbt --version` in a subprocess and a dbt adapter in this process: ≈ 5 of the ≈ 13 CPU-s
    the install's parse took, the builds skip them too: pipelines/resources.py), and without
    importing dagster-dbt at all: the install's parse is the longest step of `make setup`."""
    project_dir = project_dir.resolve()  # dbt runs in it and is told it: one meaning for both
    if not manifest_is_stale(project_dir):
        return
    target = project_dir / INSTALL_TARGET.name
    target.mkdir(exist_ok=True)
    for leftover in target.glob(f"{STAGING_PREFIX}*"):  # of a parse killed on its way
        pid = leftover.name.removeprefix(STAGING_PREFIX).split("-")[0]
        if not pid.isdigit() or process_ended(pid):
            shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=target))
    reuse_partial_parse(target, staging)  # dbt re-parses only what changed since
    try:
        # Parsed as a run with the default settings parses (the same vars, the profile
        # rendered the same way), so that the first build of a new warehouse can start
        # from this parse (install_parse_serves). Our own dbt, not whatever `dbt` is on PATH.
        inputs = parse_inputs(Settings())
        env = {**os.environ, **inputs["profile"], **dbt_folders_environment(project_dir, staging)}
        parse = subprocess.run(
            [dbt_executable(), "parse", "--quiet", "--vars", json.dumps(inputs["vars"])],
            cwd=project_dir, env=env, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, check=False,
        )
        if parse.returncode != 0:
            raise RuntimeError(
                f"dbt could not parse the project in {project_dir} (exit {parse.returncode}):\n"
                + (parse.stdout + parse.stderr).strip()[-4000:]
            )
        record = {**inputs, "state": _state_digest(staging / PARTIAL_PARSE)}
        (staging / INSTALL_PARSE_INPUTS).write_text(
            json.dumps(record, sort_keys=True), encoding="utf-8"
        )
        for part in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST):
            if part.is_file():
                part.replace(target / part.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def reuse_partial_parse(runs: Path, target: Path) -> None:
    """Start a dbt invocation in `target` from the parse state kept in `runs`: a warehouse's
    previous build (`dbt_runs`), or the install's own parse when it parses again.

    dbt re-parses the whole project (seconds) when the vars or the profile differ from those
    of the parse it finds, and otherwise only what changed; the last build of the same
    warehouse, with the same settings, serves the next (dagster-dbt copies the project's
    file only where none is present)."""
    kept = runs / PARTIAL_PARSE
    if kept.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, target / PARTIAL_PARSE)


def keep_partial_parse(runs: Path, target: Path) -> None:
    """Keep a build's parse state for the next build of this warehouse (written beside and
    renamed into place: a killed copy never leaves half a file)."""
    built = target / PARTIAL_PARSE
    if built.exists():
        shutil.copyfile(built, runs / f".{PARTIAL_PARSE}.new")
        (runs / f".{PARTIAL_PARSE}.new").replace(runs / PARTIAL_PARSE)


@contextmanager
def environment_set(values: Mapping[str, str]) -> Iterator[None]:
    """Environment variables set for the duration of one dbt invocation (dagster-dbt starts
    dbt with this process's environment)."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def install_parse_serves(settings: Settings) -> Path | None:
    """The install's saved parse state, if a build with these settings can start from it.

    dbt keeps a saved parse only when the vars and the rendered profile are those it was made
    with, and re-parses the whole project otherwise (seconds of CPU). The profile names the
    warehouse file relative to dbt's working folder (profile_environment), so it renders the
    same for every warehouse, and the install parsed with the default settings' vars: the
    first build of a new (or copied) warehouse with those settings needs no parse of its own.
    dbt still checks the state itself and re-parses whatever changed."""
    try:
        record = json.loads((INSTALL_TARGET / INSTALL_PARSE_INPUTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    state = INSTALL_TARGET / PARTIAL_PARSE
    # the record describes this very state: not one that dbt run by hand wrote since
    made_here = record.pop("state", None) == _state_digest(state)
    return state if made_here and record == parse_inputs(settings) else None


def _state_digest(state: Path) -> str | None:
    """sha256 of a saved parse state (1–2 MB; milliseconds), None when there is none."""
    try:
        return hashlib.sha256(state.read_bytes()).hexdigest()
    except OSError:
        return None


def parse_inputs(settings: Settings) -> dict[str, dict[str, object]]:
    """What dbt keys a saved parse on, as this project sets it: vars and profile environment
    (JSON round-tripped, as they are written down)."""
    inputs = {"vars": dbt_vars(settings), "profile": profile_environment(settings)}
    return json.loads(json.dumps(inputs, sort_keys=True))


def profile_environment(settings: Settings) -> dict[str, str]:
    """The environment the DuckDB profile renders: the warehouse file, relative to the folder
    dbt runs in (the warehouse folder: DBT_WORKDIR_ENV, set by dbt_environment_values) where
    the launcher can change to it, so that the rendered profile is the same for every
    warehouse; and DuckDB's memory budget."""
    database = settings.raw_database.name if GUARDED else str(settings.raw_database)
    return {
        DBT_DATABASE_ENV: database,
        "SALES_KPI_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
    }


def dbt_environment_values(settings: Settings) -> dict[str, str]:
    """What the dbt profile reads from the environment for a run: the warehouse file and
    DuckDB's memory budget (on Spark: where and how Spark runs, pipelines/spark_build.py),
    where dbt logs, and no colour codes. One home for the build, the docs and the parse
    ahead (pipelines/dbt_parse_ahead.py), which must all parse with the same profile."""
    # dbt starts in the project folder and its launcher changes to the warehouse: a path
    # given relative to this process's folder would name another place in either
    warehouse = settings.warehouse_dir.resolve()
    env = {
        **profile_environment(settings),
        # not part of what dbt keys a saved parse on (threads is not a connection setting)
        DUCKDB_THREADS_ENV: str(settings.duckdb_threads),
        DBT_WORKDIR_ENV: str(warehouse),
        # dbt's logs go under the warehouse, never into the (possibly read-only) project
        "DBT_LOG_PATH": str(warehouse / "logs" / "dbt"),
        # plain text: dbt's lines end up in the run's log file and the Dagster UI, where
        # colour codes are noise (the CLI's console draws its own)
        "DBT_USE_COLORS": "false",
        # no second, debug-level copy of dbt's output (5.5 MB of JSON and ≈ 0.6 CPU-s per build
        # of the sample): its lines are in the run's log already. An operator who wants it
        # sets dbt's own variable (`DBT_LOG_LEVEL_FILE=debug`), which is then kept.
        "DBT_LOG_LEVEL_FILE": os.environ.get("DBT_LOG_LEVEL_FILE", "none"),
    }
    if settings.engine == "spark":
        from pipelines.spark_build import spark_dbt_environment

        env.update(spark_dbt_environment(settings))
    return env


def dbt_cli_environment(settings: Settings, target: Path) -> dict[str, str]:
    """The environment of a dbt this process starts itself, beside its own: what a run's dbt
    reads (dbt_environment_values) and what dagster-dbt sets for the build — the project and
    profiles folder, `target` for its artifacts and log, no usage statistics. With the same
    vars, such a dbt parses as the build does (the parse ahead's state serves the build)."""
    return {**dbt_environment_values(settings), **dbt_folders_environment(DBT_PROJECT_DIR, target)}


def dbt_folders_environment(project_dir: Path, target: Path) -> dict[str, str]:
    """What dagster-dbt sets for a dbt it starts, for one this process starts itself: the
    project and profiles folder, `target` for the artifacts and the log, no usage statistics."""
    return {
        "DBT_PROJECT_DIR": str(project_dir),
        "DBT_PROFILES_DIR": str(project_dir),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def dbt_vars(settings: Settings) -> dict[str, object]:
    """The run's settings as dbt vars: every threshold of the definitions (the vars
    dbt_project.yml declares with their defaults), as_of, and whether any differs."""
    values: dict[str, object] = {
        name: _var_value(getattr(settings, name)) for name in DEFINITION_SETTINGS
    }
    values["as_of"] = settings.as_of.isoformat() if settings.as_of else None
    values["definitions_custom"] = bool(settings.definition_overrides())
    return values


def _var_value(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value
