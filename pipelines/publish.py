"""Publishing the marts (write–audit–publish): a fresh DuckDB file swapped in atomically,
plus Parquet copies, plus the history of what was published.

Readers open `<warehouse>/marts.duckdb` read-only. DuckDB lets no other process open a file
while one writes it, so the published file is never written in place: a new file is built
next to it and then replaces it with an atomic rename. In a run of the job the marts are
copied into that file while the checks run (`write_marts_ahead`, started by the checks step:
pipelines/publication_ahead.py) and the publication adds the history and swaps it in; when
no ready copy of this very build is there (the copy failed, the build changed since, the
step is run again alone or retried), the publication copies the marts itself. A reader that
has the old file open keeps reading the old file; the next one opens the new one. The Parquet
copies are written to a new folder per run and `<warehouse>/parquet` is a symbolic link
swapped the same way.

The published file is also the record of what was published: each publication keeps the
previous file's `runs`, `dim_leads_history` and `kpi_scorecard_history` and appends its own
rows, so what was reported when, and under which definitions version, stays visible. The
new file starts as a byte copy of the published one (`_start_candidate`), whose marts are
replaced and to whose history the run's copies are added: a publication costs its own night
plus a sequential file copy, not a row-by-row copy of every night kept. A published file
that is not as this publisher writes it (an earlier layout, or one another program changed)
is instead rebuilt, its history carried over row by row (`_carry_history`).

What BI tools meet (marts contract v1.1): the tables sit in the file's default schema, so
`select * from kpi_scorecard` works with the file opened directly and `m.kpi_scorecard` after
`attach '…/marts.duckdb' as m` (v1 put them in a schema `marts`, which made `marts.x`
ambiguous in a file that is itself the catalog `marts`). The file is written in an older
storage format (`PUBLISHED_STORAGE_VERSION`) so the DuckDB inside BI drivers (1.1 and later)
opens it, and every table and column carries its dbt description as a comment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.files import read_json_object, write_atomically
from pipelines.run_guard import stop_if_requested
from pipelines.sql_text import comment_literal, quote_ident, sql_literal

# The schema of the marts in the build (dbt's `marts` schema); the published file has none.
MARTS_SCHEMA = "marts"
# The oldest DuckDB storage format that has everything the marts use: DuckDB 1.1 and later
# (the 1.4 LTS line, BI drivers) read it, and so does the DuckDB of this project.
PUBLISHED_STORAGE_VERSION = "v1.1.0"
_PUBLISHING = "pub"
# The published marts (contract) and the history tables kept across publications.
PUBLISHED_TABLES = (
    "dim_reps", "dim_leads", "fct_funnel_stages", "fct_activities", "fct_deals",
    "kpi_values", "kpi_baselines", "kpi_scorecard", "kpi_registry", "label_consistency",
    "fct_marketing_event_judgements",
)
HISTORY_COLUMNS = {
    # the 18 columns the published marts' contract (v1.1) requires of dim_leads — the
    # classification and what explains it: the qualifying event and its type, fit, owner, who
    # set the label — and rule 5's fingerprint; not dim_leads' further explanation columns
    "dim_leads_history": (
        "dim_leads",
        "contact_id, company_id, owner_user_id, team, stage, lead_origin, marketing_lead_at, "
        "sales_lead_at, quote_at, customer_at, qualifying_event_id, qualifying_event_type, "
        "is_fit, sales_lead_deal_id, crm_label, crm_label_set_by, crm_label_consistent, "
        "definitions_version, inputs_fingerprint",
    ),
    "kpi_scorecard_history": (
        "kpi_scorecard",
        "kpi_id, kpi_kind, scope, scope_id, period_start, actual, target, target_source, "
        "attainment, is_complete, status",
    ),
}
# Every table of the published file: the marts, `runs` and the history
PUBLISHED_FILE_TABLES = (*PUBLISHED_TABLES, "runs", *HISTORY_COLUMNS)
PARQUET_RUNS_KEPT = 3
HISTORY_DESCRIPTIONS = {
    "runs": "One row per published run: when it was published, as of which instant, under "
            "which definitions version and settings, from how many source files.",
    "dim_leads_history": "Published classifications of every live contact (the dim_leads "
                         "columns the published marts' contract v1.1 requires, and rule 5's "
                         "inputs fingerprint; a column added later is empty in the copies "
                         "published before it), one copy per published run, under its "
                         "run_id (runs.history_kept says whose copies are kept).",
    "kpi_scorecard_history": "Published scorecard rows, one copy per published run, under its "
                             "run_id: what was reported when, and under which version "
                             "(runs.history_kept says whose copies are kept).",
}
# The `runs` table: each column's DuckDB type (the publisher's DDL, and the Spark catalog's
# definition of the published `runs`: spark_build.published_catalog) and description.
RUNS_TYPES = {
    "run_id": "varchar not null", "as_of": "timestamptz", "published_at": "timestamptz not null",
    "definitions_version": "varchar not null", "settings": "varchar not null",
    "source_files": "bigint not null", "history_kept": "boolean not null",
}
RUNS_COLUMNS = {
    "run_id": "The run's id.",
    "as_of": "The instant the run counted as now (UTC).",
    "published_at": "When the run was published (UTC).",
    "definitions_version": "The definitions version (with +custom when a threshold differed).",
    "settings": "The effective settings of the run, as JSON.",
    "source_files": "How many source files the raw layer had loaded.",
    "history_kept": "Whether the run's classification and scorecard copies are in "
                    "dim_leads_history and kpi_scorecard_history (under its run_id); false "
                    "once the retention an operator set (history_runs_kept) dropped them.",
}


@dataclass(frozen=True)
class RunRecord:
    """One published run, as the `runs` table records it."""

    run_id: str
    as_of: datetime | None
    definitions_version: str
    settings: dict[str, Any]
    source_files: int


@dataclass(frozen=True)
class Published:
    database: Path
    tables: dict[str, int]  # table → rows
    written_ahead: bool = False  # the marts came from the candidate written during the checks
    # the history was appended to a copy of the published file (not carried row by row)
    history_appended: bool = False


def published_database(warehouse_dir: Path) -> Path:
    return warehouse_dir / "marts.duckdb"


def published_parquet(warehouse_dir: Path, table: str | None = None) -> Path:
    """Where readers find the published Parquet: `<warehouse>/parquet` (the link the publisher
    swaps) or one table's file in it, `<warehouse>/parquet/<table>.parquet`. The path goes
    through the link, so it always names the latest publication (the Spark catalog's tables
    are defined on these paths)."""
    folder = warehouse_dir / "parquet"
    return folder if table is None else folder / f"{table}.parquet"


def published_table(name: str, catalog: str | None = None) -> str:
    """How a reader names a published table: bare in the file's default schema, or qualified
    by the alias the reader attached the file as. The one place this layout is spelled."""
    return f"{quote_ident(catalog)}.{quote_ident(name)}" if catalog else quote_ident(name)


def published_state(
    warehouse_dir: Path, run_id: str | None = None, since: datetime | None = None
) -> str:
    """What a run left published, read from the disk (never assumed): for alerts and the
    closing summary, which must say exactly what happened. The run is known by its id, or,
    when it was interrupted before its id was known, by having published `since` it began."""
    path = published_database(warehouse_dir)
    if not path.exists():
        return "nothing is published yet (no earlier run published marts)"
    try:
        with duckdb.connect() as con:
            attach_published(con, path, "published")
            published = con.execute(
                f"select count(*) from {attached_table(con, 'published', 'runs')} "
                "where run_id = ? or published_at >= ?",
                [run_id or "", since or datetime.max.replace(tzinfo=UTC)],
            ).fetchone()[0]  # type: ignore[index]
    except PublishedFileLocked:
        return ("the published marts could not be read to say (open for writing in another "
                "program)")
    except duckdb.Error as exc:
        return f"the published marts could not be read to say ({type(exc).__name__})"
    if published:
        return "the marts WERE published by this run (a later step failed)"
    return "the published marts were left as they were (nothing was published by this run)"


class PublishedFileLocked(duckdb.IOException):
    """Another program holds the published file open for writing (DuckDB's lock on it): a
    DuckDB error still, so that whoever handled DuckDB's own handles this one."""


# DuckDB's words for a lock another process holds: "Could not set lock on file "…":
# Conflicting lock is held in /usr/bin/python3.11 (PID 1234) by user …"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def attach_published(con: duckdb.DuckDBPyConnection, path: Path, catalog: str) -> None:
    """Attach a published file read-only as `catalog`. Readers that opened it read-only never
    stand in the way; one that opened it for writing (the DuckDB CLI's default) holds a lock
    nobody else can open it past, which is said as such: which program, and what to do."""
    try:
        con.execute(f"attach {sql_literal(str(path))} as {quote_ident(catalog)} (read_only)")
    except duckdb.IOException as exc:
        raise _locked(path, exc) from None


def open_published(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a published file (its tables by bare name), a lock held by a
    writer said as `attach_published` says it."""
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise _locked(path, exc) from None


def _locked(path: Path, exc: duckdb.IOException) -> duckdb.IOException:
    """DuckDB's error as PublishedFileLocked when it is another program's lock, else itself."""
    if "Could not set lock" not in str(exc):
        return exc
    holder = _LOCK_HOLDER.search(str(exc))
    by = f" ({Path(holder['program']).name}, PID {holder['pid']})" if holder else ""
    return PublishedFileLocked(
        f"{path.name} is open for writing in another program{by}, which locks it: readers "
        "must open it read-only (`duckdb -readonly`, `read_only=True`, a BI connection's "
        "read-only setting); the run reads the last publication once it is closed"
    )


def attached_table(con: duckdb.DuckDBPyConnection, catalog: str, name: str) -> str:
    """A table of a published file attached as `catalog`: in its default schema (v1.1), or in
    the schema `marts` of a file published before v1.1 (so the first run after an upgrade
    still reads the previous publication and keeps its history)."""
    schemas = {schema for (schema,) in con.execute(
        "select schema_name from duckdb_tables() where database_name = ? and table_name = ?",
        [catalog, name],
    ).fetchall()}
    if schemas == {MARTS_SCHEMA}:
        return ".".join(quote_ident(part) for part in (catalog, MARTS_SCHEMA, name))
    return published_table(name, catalog)


def candidate_database(warehouse_dir: Path, run_id: str) -> Path:
    """Where a run's publication is written before it is swapped in: `.marts-<run_id>.duckdb`
    beside the published file (one folder, so the swap is a rename)."""
    return warehouse_dir / f".marts-{run_id}.duckdb"


def write_marts_ahead(
    build_database: Path, warehouse_dir: Path, run_id: str, memory_limit: str
) -> Path:
    """The W of write–audit–publish while the A runs: the build's marts copied into the run's
    candidate file and written as Parquet, while the checks read the same build (both open
    it read-only: DuckDB lets several processes read a file no one writes). The candidate is
    marked ready only when complete and when the build was not changed meanwhile;
    `publish_marts` then adds the history and swaps it in once the checks let it. What it
    saves is the copy, the publication's largest part (≈ 5 of 6.5 s at scale 30)."""
    candidate = candidate_database(warehouse_dir, run_id)
    discard_candidate(warehouse_dir, run_id)
    before = _file_identity(build_database)
    with _publishing_connection(memory_limit) as con:
        con.execute(f"attach {sql_literal(str(build_database))} as build (read_only)")
        copied = _start_candidate(con, published_database(warehouse_dir), candidate)
        _copy_marts(con)
        con.execute("detach build")
        _write_parquet(con, warehouse_dir, run_id, PUBLISHED_TABLES)
        con.execute(f"checkpoint {_PUBLISHING}")
        con.execute(f"detach {_PUBLISHING}")
    if _file_identity(build_database) != before:
        discard_candidate(warehouse_dir, run_id)
        raise RuntimeError(f"{build_database} changed while its marts were copied")
    write_atomically(_ready_marker(candidate), json.dumps(
        {"format": 3, "build": before, "published": copied}
    ))
    return candidate


def discard_candidate(warehouse_dir: Path, run_id: str) -> None:
    """Remove a run's unpublished candidate: its file, marker and Parquet folder (the
    audit blocked it, or its writing failed). Never for a run that may have published: its
    Parquet folder may be the one `<warehouse>/parquet` points at."""
    _remove_candidate_file(candidate_database(warehouse_dir, run_id))
    with suppress(ParquetRunsLinked):  # a cleanup: the publication refuses the link
        shutil.rmtree(_parquet_run_dir(warehouse_dir, run_id), ignore_errors=True)


def _remove_candidate_file(candidate: Path) -> None:
    for path in (_ready_marker(candidate), candidate, Path(f"{candidate}.wal")):
        path.unlink(missing_ok=True)


def publish_marts(
    build_database: Path,
    warehouse_dir: Path,
    run: RunRecord,
    memory_limit: str,
    *,
    history_runs_kept: int,
) -> Published:
    """Publish the build's marts with the history carried over; atomic for readers. The
    marts come from the candidate written during the checks (`write_marts_ahead`) when it is
    ready and made from this very build, else they are copied here."""
    target = published_database(warehouse_dir)
    published_runs = _published_run_ids(target)
    _clean_leftovers(warehouse_dir, published_runs, keep_run=run.run_id)
    staging = candidate_database(warehouse_dir, run.run_id)
    if run.run_id in published_runs:
        return _published_already(warehouse_dir, run.run_id, memory_limit)
    ready = _take_ready(staging, build_database, target)
    written_ahead = ready is not None
    if not written_ahead:
        # its Parquet folder stays: the marts' files are written again in place, and a retry
        # of this step after its swap finds that folder published (the link points at it)
        _remove_candidate_file(staging)
    try:
        with _publishing_connection(memory_limit) as con:
            con.execute(f"attach {sql_literal(str(build_database))} as build (read_only)")
            if ready is not None:
                _attach_candidate(con, staging, new=ready["published"] is None)
                appended = ready["published"] is not None
            else:
                appended = _start_candidate(con, target, staging) is not None
                _copy_marts(con)
            if appended:
                _append_history(con, run, history_runs_kept)
            else:
                previous = target.exists()
                if previous:
                    attach_published(con, target, "previous")
                _carry_history(con, run, previous, history_runs_kept)
                if previous:
                    con.execute("detach previous")
            _copy_comments(con)
            tables = _table_counts(con)
            con.execute("detach build")
            parquet_dir = _write_parquet(
                con, warehouse_dir, run.run_id,
                ("runs", *HISTORY_COLUMNS) if written_ahead else PUBLISHED_FILE_TABLES,
            )
            con.execute(f"checkpoint {_PUBLISHING}")
            con.execute(f"detach {_PUBLISHING}")
        stop_if_requested()  # a run stopped meanwhile publishes nothing
        os.replace(staging, target)
        # a write-ahead log another program left beside the replaced file belongs to it, not
        # to this one: left there, it would keep every later publication from appending
        Path(f"{target}.wal").unlink(missing_ok=True)
        _swap_link(published_parquet(warehouse_dir), parquet_dir)
        _prune_parquet_runs(warehouse_dir, keep=parquet_dir)
    finally:
        staging.unlink(missing_ok=True)
        Path(str(staging) + ".wal").unlink(missing_ok=True)
    return Published(target, tables, written_ahead, appended)


@contextmanager
def _publishing_connection(memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB session for writing a publication."""
    # no progress bar: DuckDB draws it straight onto the process's stdout, past the
    # console (which promises no escape codes off a terminal) and the run's log
    with duckdb.connect(config={"memory_limit": memory_limit}) as con:
        # a session setting: DuckDB refuses it as a global option at connect
        con.execute("set enable_progress_bar = false")
        con.execute("set TimeZone = 'UTC'")
        yield con


def _attach_candidate(con: duckdb.DuckDBPyConnection, candidate: Path, *, new: bool) -> None:
    """Attach the run's candidate as `_PUBLISHING`: a new file in the published storage
    format, or a copy of the published file (which keeps the format it was written in)."""
    storage = f" (storage_version '{PUBLISHED_STORAGE_VERSION}')" if new else ""
    con.execute(f"attach {sql_literal(str(candidate))} as {_PUBLISHING}{storage}")


def _start_candidate(
    con: duckdb.DuckDBPyConnection, published: Path, candidate: Path
) -> list[list[int] | None] | None:
    """Begin the run's candidate and attach it as `_PUBLISHING`, without marts (`_copy_marts`
    adds them). When the published file is laid out as this publisher writes it, the candidate
    is a byte copy of it without its marts: the history it holds stays where it is and the
    run's copies are appended (`_append_history`) — the cost of one night and of copying a
    file, where carrying every earlier copy over row by row grew with each night kept (65 s
    a publication after 100 nights at scale 30: bench/README). The published file's identity
    is returned, so the publication appends only to a copy of the file still published.
    Otherwise — nothing published yet, a file of an earlier layout, or one another program
    changed (tables of its own, a write-ahead log) — the candidate is a new file and None is
    returned: the publication rebuilds the history row by row (`_carry_history`). `build` is
    attached: the history's columns are judged against its marts."""
    identity = _file_identity(published)
    copied = False
    if identity[0] is not None and identity[1] is None:  # published, and no write-ahead log
        try:
            attach_published(con, published, "previous")  # read-only: no writer meanwhile
        except PublishedFileLocked:
            pass  # a new file: the publication meets the lock itself, and says so
        else:
            try:
                if _laid_out_as_published(con, "previous"):
                    shutil.copyfile(published, candidate)
                    copied = True
            finally:
                con.execute("detach previous")
    _attach_candidate(con, candidate, new=not copied)
    if not copied:
        return None
    for name in PUBLISHED_TABLES:
        con.execute(f"drop table {_PUBLISHING}.{name}")
    # the dropped marts' blocks free now, for the new marts to reuse, rather than carried
    # forward empty in every later copy of the file
    con.execute(f"checkpoint {_PUBLISHING}")
    return identity


def _laid_out_as_published(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    """Whether the file attached as `catalog` holds exactly what this publisher writes: the
    published tables in its default schema and nothing else, `runs` with `RUNS_TYPES`'
    columns, history tables whose columns are the run_id and the marts' columns they copy
    (judged against the build attached as `build`), in order, of the same types; no
    constraint but `runs`' NOT NULLs, no default, no collation; and history rows for exactly
    the runs whose `history_kept` says so. Anything else is what another program changed,
    which a rebuild sets right (the row-by-row carry keeps only what it writes itself)."""
    if not _readable_as_published(con, catalog):
        return False
    tables = set(con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ?",
        [catalog],
    ).fetchall())
    if tables != {("main", name) for name in PUBLISHED_FILE_TABLES}:
        return False
    others = con.execute(
        """
        select (select count(*) from duckdb_views() where database_name = $1 and not internal)
             + (select count(*) from duckdb_sequences() where database_name = $1)
             + (select count(*) from duckdb_indexes() where database_name = $1)
             + (select count(*) from duckdb_types() where database_name = $1 and not internal)
             + (select count(*) from duckdb_functions() where database_name = $1
                and function_type in ('macro', 'table_macro'))
             + (select count(*) from duckdb_schemas() where database_name = $1
                and schema_name <> 'main' and not internal)
        """,
        [catalog],
    ).fetchone()[0]  # type: ignore[index]
    if others:
        return False
    columns = con.execute(
        "select table_name, column_name, data_type, is_nullable from duckdb_columns() "
        "where database_name = ? order by table_name, column_index", [catalog],
    ).fetchall()

    def of(table: str) -> list[tuple[str, str, bool]]:
        return [(c, t, n) for (name, c, t, n) in columns if name == table]

    runs = [(c, t.split()[0].upper(), "not null" not in t) for c, t in RUNS_TYPES.items()]
    if [(c, t.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"), n)
            for c, t, n in of("runs")] != runs:
        return False
    built = dict(con.execute(
        "select table_name || '.' || column_name, data_type from duckdb_columns() "
        "where database_name = 'build' and schema_name = ?", [MARTS_SCHEMA],
    ).fetchall())
    for history, (source, names) in HISTORY_COLUMNS.items():
        wanted = [("run_id", "VARCHAR", True)] + [
            (c.strip(), built.get(f"{source}.{c.strip()}"), True) for c in names.split(",")
        ]
        if of(history) != wanted:
            return False
    return _constraints_as_published(con, catalog) and _history_matches_runs(con, catalog)


def _constraints_as_published(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    """No constraint but the NOT NULLs `RUNS_TYPES` gives `runs`, no column default and no
    collation: a key or NOT NULL another program put on a history table would fail every
    later append (the carry's `create table … as` has none)."""
    constraints = sorted(
        (table, kind, tuple(columns)) for table, kind, columns in con.execute(
            "select table_name, constraint_type, constraint_column_names "
            "from duckdb_constraints() where database_name = ?", [catalog],
        ).fetchall()
    )
    if constraints != sorted(
        ("runs", "NOT NULL", (column,)) for column, type_ in RUNS_TYPES.items()
        if "not null" in type_
    ):
        return False
    return con.execute(
        "select not exists (select 1 from duckdb_columns() where database_name = $1 "
        "and column_default is not null) and not exists (select 1 from duckdb_tables() "
        "where database_name = $1 and upper(sql) like '% COLLATE %')", [catalog],
    ).fetchone()[0]  # type: ignore[index]


def _history_matches_runs(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    """Whether the history tables hold rows for exactly the runs whose `history_kept` is
    true (one scan of their run_id columns: ≈ 0.15 s for 12 M rows): rows deleted or added by
    hand, or a flag set by hand, are mended by a rebuild, which judges `history_kept` from the
    rows it carries and carries no rows of a run `runs` does not list."""
    runs, *histories = (
        attached_table(con, catalog, name) for name in ("runs", *HISTORY_COLUMNS)
    )
    held = " union ".join(f"select run_id from {history}" for history in histories)
    kept = f"select run_id from {runs} where history_kept"
    return con.execute(
        f"select not exists (({held}) except ({kept})) "
        f"and not exists (({kept}) except ({held}))"
    ).fetchone()[0]  # type: ignore[index]


def _readable_as_published(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    """Whether the file attached as `catalog` is in a storage format the published file's
    readers open (DuckDB's tag: the oldest DuckDB that reads it, `v1.0.0+`, no later than
    `PUBLISHED_STORAGE_VERSION`): a copy keeps its file's format, and one written before the
    publisher chose the format would stay unreadable to older DuckDBs night after night."""
    tag = con.execute(
        "select tags['storage_version'] from duckdb_databases() where database_name = ?",
        [catalog],
    ).fetchone()
    oldest = _STORAGE_TAG.fullmatch((tag[0] if tag else None) or "")
    return oldest is not None and tuple(map(int, oldest.groups())) <= _PUBLISHED_STORAGE


_STORAGE_TAG = re.compile(r"v(\d+)\.(\d+)\.(\d+)\+?")
_PUBLISHED_STORAGE = tuple(int(part) for part in PUBLISHED_STORAGE_VERSION[1:].split("."))


def _copy_marts(con: duckdb.DuckDBPyConnection) -> None:
    for name in PUBLISHED_TABLES:
        con.execute(
            f"create table {_PUBLISHING}.{name} as select * from build.{MARTS_SCHEMA}.{name}"
        )


def _ready_marker(candidate: Path) -> Path:
    return Path(f"{candidate}.ready")


def _file_identity(database: Path) -> list[list[int] | None]:
    """A DuckDB file and its write-ahead log as they are on disk (inode, size, modification
    and change times; None where absent): a candidate is published only from the build it was
    copied from, and appended to only while the file it copied is the one published. (On
    Spark the build file is the views over Spark's Parquet, which every Spark build replaces.)"""
    identity: list[list[int] | None] = []
    for path in (database, Path(f"{database}.wal")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            identity.append(None)
        else:
            identity.append([stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns])
    return identity


def _take_ready(
    candidate: Path, build_database: Path, published: Path
) -> dict[str, Any] | None:
    """The ready marker of `candidate` when the candidate is complete, copied from
    `build_database` as it is now, and begun from the file still published (or from nothing,
    when it was begun as a new file): its `published` is the identity of the file copied,
    None for a new file. None when it is not to be trusted. The marker is taken (removed)
    either way: a publication that fails after this point leaves a candidate nobody will
    trust again."""
    marker = _ready_marker(candidate)
    recorded = read_json_object(marker)
    marker.unlink(missing_ok=True)
    trusted = (
        recorded.get("format") == 3 and candidate.exists()
        and recorded.get("build") == _file_identity(build_database)
        and recorded.get("published") in (None, _file_identity(published))
    )
    return recorded if trusted else None


def _carry_history(
    con: duckdb.DuckDBPyConnection, run: RunRecord, previous: bool, history_runs_kept: int
) -> None:
    """`runs` gets a row per published run, the history tables this run's classification and
    scorecard under its run_id: every published run's copy is kept (the marts contract), an
    identical re-publication's too, unless an operator bounds them to the last
    `history_runs_kept` runs' (0: no bound). `runs.history_kept` says whose copies are there.

    A file published before every run kept its own copy has runs whose `history_run_id` named
    the earlier run whose rows held theirs: those runs get their own copy of those rows here,
    so a run's rows are always found by its run_id."""
    runs_columns = ", ".join(f"{column} {type_}" for column, type_ in RUNS_TYPES.items())
    con.execute(f"create table {_PUBLISHING}.runs ({runs_columns})")
    copy_of = "run_id"
    if previous:
        copy_of = history_copy_column(con, "previous")
        con.execute(
            f"insert into {_PUBLISHING}.runs select run_id, as_of, published_at, "
            f"definitions_version, settings, source_files, false from {_previous(con, 'runs')}"
        )
    _record_run(con, run, history_kept=False)  # set below, from the copies carried
    kept = _runs_kept(con, run, history_runs_kept)
    for history, (source, columns) in HISTORY_COLUMNS.items():
        parts, params = [], []
        if previous:
            carried = _carried_columns(con, history, source, columns, "copy")
            parts.append(
                # each run once, however often an earlier file listed it
                f"select earlier.run_id, {carried} from (select distinct run_id, "
                f"{copy_of} as copy_of from {_previous(con, 'runs')}) as earlier "
                f"join {_previous(con, history)} as copy on copy.run_id = earlier.copy_of "
                "where list_contains(?, earlier.run_id)"
            )
            params.append(kept)
        parts.append(f"select ? as run_id, {columns} from build.{MARTS_SCHEMA}.{source}")
        params.append(run.run_id)
        con.execute(
            f"create table {_PUBLISHING}.{history} as " + " union all ".join(parts), params
        )
    copied = " union ".join(
        f"select distinct run_id from {_PUBLISHING}.{history}" for history in HISTORY_COLUMNS
    )
    con.execute(
        f"update {_PUBLISHING}.runs set history_kept = "
        f"run_id = ? or run_id in ({copied})", [run.run_id],
    )


def _append_history(
    con: duckdb.DuckDBPyConnection, run: RunRecord, history_runs_kept: int
) -> None:
    """The run's row in `runs` and its copies in the history tables, appended to the copy
    of the published file the candidate began as (`_start_candidate`); the copies beyond an
    operator's bound (`history_runs_kept`, 0: none) deleted, as `_carry_history` leaves them
    out, and marked so in `runs.history_kept`."""
    _record_run(con, run, history_kept=True)
    for history, (source, columns) in HISTORY_COLUMNS.items():
        con.execute(
            f"insert into {_PUBLISHING}.{history} "
            f"select ? as run_id, {columns} from build.{MARTS_SCHEMA}.{source}",
            [run.run_id],
        )
    if history_runs_kept <= 0:
        return
    dropped = [run_id for (run_id,) in con.execute(
        f"select run_id from {_PUBLISHING}.runs "
        "where history_kept and not list_contains(?, run_id)",
        [_runs_kept(con, run, history_runs_kept)],
    ).fetchall()]
    if dropped:
        for history in HISTORY_COLUMNS:
            con.execute(
                f"delete from {_PUBLISHING}.{history} where list_contains(?, run_id)", [dropped]
            )
        con.execute(
            f"update {_PUBLISHING}.runs set history_kept = false "
            "where list_contains(?, run_id)", [dropped],
        )


def _record_run(con: duckdb.DuckDBPyConnection, run: RunRecord, *, history_kept: bool) -> None:
    """The run's row in the candidate's `runs`, published now."""
    con.execute(
        f"insert into {_PUBLISHING}.runs values (?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id, run.as_of, datetime.now(UTC), run.definitions_version,
            json.dumps(run.settings, sort_keys=True), run.source_files, history_kept,
        ],
    )


def _runs_kept(
    con: duckdb.DuckDBPyConnection, run: RunRecord, history_runs_kept: int
) -> list[str]:
    """The runs whose history copies are kept (both ways a history is written read the rule
    here): with an operator's bound, the last `history_runs_kept` runs of the candidate's
    `runs` by `published_at`, and always the run being published (an earlier run recorded as
    published later must not push its copy out); without one (0), every run."""
    kept = [run_id for (run_id,) in con.execute(
        f"select run_id from {_PUBLISHING}.runs order by published_at desc"
        + (" limit ?" if history_runs_kept > 0 else ""),
        [history_runs_kept] if history_runs_kept > 0 else [],
    ).fetchall()]
    return kept if run.run_id in kept else [*kept, run.run_id]


def _carried_columns(
    con: duckdb.DuckDBPyConnection, history: str, source: str, columns: str, alias: str
) -> str:
    """The select list that carries the previous file's copies of `history` (as `alias`) over
    with today's `columns`: a column the previous file's table lacks (published before it was
    added to the history) is empty in those copies — it was not recorded then — typed as the
    mart's."""
    found = {column[0] for column in con.execute(
        f"select * from {_previous(con, history)} limit 0"
    ).description}
    types = dict(con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = 'build' "
        "and schema_name = ? and table_name = ?", [MARTS_SCHEMA, source],
    ).fetchall())
    names = [column.strip() for column in columns.split(",")]
    return ", ".join(
        f"{alias}.{name}" if name in found else f"cast(null as {types[name]}) as {name}"
        for name in names
    )


def history_copy_column(con: duckdb.DuckDBPyConnection, catalog: str) -> str:
    """The `runs` column naming the run whose history rows hold a run's classification and
    scorecard: `run_id`, or `history_run_id` in a file published while an identical
    re-publication added no copy of its own (2026-12-06 to 2026-12-08)."""
    found = con.execute(
        "select count(*) from duckdb_columns() where database_name = ? and table_name = 'runs' "
        "and column_name = 'history_run_id'", [catalog],
    ).fetchone()[0]  # type: ignore[index]
    return "history_run_id" if found else "run_id"


def _previous(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return attached_table(con, "previous", name)


def _copy_comments(con: duckdb.DuckDBPyConnection) -> None:
    """Every published table and column gets its dbt description (dbt writes them into the
    build with persist_docs); the history tables and `runs` get the publisher's own."""
    # tables on DuckDB; views over Spark's Parquet on Spark (pipelines/spark_build.py)
    described = con.execute(
        """
        select table_name, comment from duckdb_tables()
        where database_name = 'build' and schema_name = ?
        union all
        select view_name, comment from duckdb_views()
        where database_name = 'build' and schema_name = ?
        """,
        [MARTS_SCHEMA, MARTS_SCHEMA],
    ).fetchall()
    columns = con.execute(
        """
        select table_name, column_name, comment from duckdb_columns()
        where database_name = 'build' and schema_name = ?
        """,
        [MARTS_SCHEMA],
    ).fetchall()
    table_comments = {table: comment for table, comment in described if comment}
    column_comments = {(t, c): comment for t, c, comment in columns if comment}
    for history, (source, _columns) in HISTORY_COLUMNS.items():
        table_comments[history] = HISTORY_DESCRIPTIONS[history]
        column_comments[(history, "run_id")] = "The published run of these rows (runs.run_id)."
        for (table, column), comment in list(column_comments.items()):
            if table == source:
                column_comments[(history, column)] = comment
    table_comments["runs"] = HISTORY_DESCRIPTIONS["runs"]
    column_comments.update({("runs", c): text for c, text in RUNS_COLUMNS.items()})
    published = {name for (name,) in con.execute(
        "select table_name from duckdb_tables() where database_name = ?", [_PUBLISHING]
    ).fetchall()}
    published_columns = set(con.execute(
        "select table_name, column_name from duckdb_columns() where database_name = ?",
        [_PUBLISHING],
    ).fetchall())
    for table, comment in table_comments.items():
        if table in published:
            con.execute(f"comment on table {_PUBLISHING}.{table} is {comment_literal(comment)}")
    for (table, column), comment in column_comments.items():
        if (table, column) in published_columns:
            con.execute(
                f"comment on column {_PUBLISHING}.{table}.{quote_ident(column)} "
                f"is {comment_literal(comment)}"
            )


def _write_parquet(
    con: duckdb.DuckDBPyConnection, warehouse_dir: Path, run_id: str, names: tuple[str, ...]
) -> Path:
    """Each table as `<run folder>/<table>.parquet`, every column OPTIONAL (nullable).

    DuckDB 2 marks a column REQUIRED when the table's statistics show it held no NULL that
    night, so a column's nullability would follow the data (`fct_deals.rate_to_eur` REQUIRED
    on a night without an FX gap, OPTIONAL on the next): a BI tool or catalog that pins the
    files' schema would see it change. A NULL-preserving CASE hides the statistics from the
    writer: every column is written OPTIONAL, as DuckDB 1.x and Spark write them, every night
    the same; whether a column may be empty is in the marts' docs."""
    folder = _parquet_run_dir(warehouse_dir, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        file = folder / published_parquet(warehouse_dir, name).name
        columns = [column for (column,) in con.execute(
            "select column_name from duckdb_columns() where database_name = ? "
            "and table_name = ? order by column_index", [_PUBLISHING, name],
        ).fetchall()]
        select = ", ".join(
            f"case when {quote_ident(c)} is null then null else {quote_ident(c)} end "
            f"as {quote_ident(c)}" for c in columns
        )
        con.execute(
            f"copy (select {select} from {_PUBLISHING}.{name}) to {sql_literal(str(file))} "
            "(format parquet)"
        )
    return folder


class ParquetRunsLinked(RuntimeError):
    """`<warehouse>/parquet-runs` is a symbolic link: nothing is written or removed there."""


def _parquet_runs(warehouse_dir: Path) -> Path:
    """`<warehouse>/parquet-runs`, where every run's Parquet copies are written and old ones
    removed: never through a link (the cleanup would remove folders wherever it pointed)."""
    folder = warehouse_dir / "parquet-runs"
    if folder.is_symlink():
        raise ParquetRunsLinked(
            f"{folder} is a symbolic link: the publisher writes and removes run folders "
            "there and does not follow it (replace it with a folder)"
        )
    return folder


def _parquet_run_dir(warehouse_dir: Path, run_id: str) -> Path:
    return _parquet_runs(warehouse_dir) / run_id


def remove_leftovers(warehouse_dir: Path) -> None:
    """What stopped runs left (`_clean_leftovers`), removed by a run that publishes nothing
    — a night with nothing new — so a candidate stopped in its checks does not stay on disk
    until the next delivery. The caller holds the warehouse's lock."""
    if any(warehouse_dir.glob(".marts-*")):
        try:
            published = _published_run_ids(published_database(warehouse_dir))
        except PublishedFileLocked:
            return  # which runs are published cannot be read: left for the next run
        _clean_leftovers(warehouse_dir, published, keep_run=None)


def _clean_leftovers(
    warehouse_dir: Path, published: set[str], keep_run: str | None
) -> None:
    """What stopped runs left: a killed publication's unfinished file, the candidates of
    checks steps that were stopped or whose publication never ran, and the Parquet folders
    of runs that were never published — but for the publishing run's own candidate. Safe
    because a run holds the warehouse's lock (run_guard)."""
    own = candidate_database(warehouse_dir, keep_run).name if keep_run else None
    for leftover in warehouse_dir.glob(".marts-*.duckdb*"):
        if own is None or not leftover.name.startswith(own):
            leftover.unlink(missing_ok=True)
    runs_dir = _parquet_runs(warehouse_dir)
    if not runs_dir.is_dir():
        return
    for folder in runs_dir.iterdir():
        if folder.is_dir() and folder.name not in published and folder.name != keep_run:
            shutil.rmtree(folder, ignore_errors=True)


def _published_run_ids(target: Path) -> set[str]:
    """The runs the published file records (none when nothing is published yet)."""
    if not target.exists():
        return set()
    with duckdb.connect() as con:
        attach_published(con, target, "published")
        return {run_id for (run_id,) in con.execute(
            f"select run_id from {attached_table(con, 'published', 'runs')}"
        ).fetchall()}


def _published_already(warehouse_dir: Path, run_id: str, memory_limit: str) -> Published:
    """A publication run again after its file was swapped in (its step failed later — say,
    before the Parquet link was swapped — and was retried): nothing is copied or added again
    (`runs` keeps one row per run); the Parquet link is pointed at the run's folder, as the
    first attempt would have."""
    target = published_database(warehouse_dir)
    folder = _parquet_run_dir(warehouse_dir, run_id)
    if folder.is_dir():
        _swap_link(published_parquet(warehouse_dir), folder)
        _prune_parquet_runs(warehouse_dir, keep=folder)
    with _publishing_connection(memory_limit) as con:
        attach_published(con, target, _PUBLISHING)
        return Published(target, _table_counts(con))


def _table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows of every table of the publication attached as `_PUBLISHING`."""
    return {
        name: con.execute(f"select count(*) from {_PUBLISHING}.{name}").fetchone()[0]  # type: ignore[index]
        for name in PUBLISHED_FILE_TABLES
    }


def _swap_link(link: Path, target: Path) -> None:
    """Point `link` at `target` atomically (a real folder left by an older layout is moved)."""
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)
    temporary = link.with_name(f".{link.name}-{uuid.uuid4().hex}")
    temporary.symlink_to(target.relative_to(link.parent), target_is_directory=True)
    os.replace(temporary, link)


def _prune_parquet_runs(warehouse_dir: Path, keep: Path) -> None:
    """Keep the last few runs' Parquet folders (a reader may still be reading one)."""
    runs = sorted(
        (p for p in _parquet_runs(warehouse_dir).iterdir() if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
    )
    for old in runs[:-PARQUET_RUNS_KEPT]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
