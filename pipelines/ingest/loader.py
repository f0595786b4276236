"""Loading the new files of the contract's entities into the raw layer.

One file is one transaction: its good rows, its quarantined rows and its manifest row land
together or not at all, so a killed run never leaves half a file behind and the next run
simply loads it again. The entities load side by side (`load_entities`): the largest file,
a gzipped CSV, is read by one thread, and the other entities load on the other core meanwhile.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field

import duckdb

from pipelines.contract import ENTITIES, Entity
from pipelines.ingest.landing import (
    ADAPTER_MARKER_FILE,
    ADAPTER_REPORT_JSON_FILE,
    SOURCE_TRACE_COLUMNS,
    LandingFile,
    OutsideLandingError,
    check_inside,
    read_own_file,
)
from pipelines.ingest.raw_layer import RAW_SCHEMA, entity_table
from pipelines.ingest.readers import (
    NOT_ABOUT_THE_FILE,
    TEXT_TABLE,
    UnreadableFileError,
    open_source,
)
from pipelines.ingest.validation import (
    ColumnMatch,
    DuplicateColumnError,
    MissingColumnsError,
    checked_select_with_evidence,
    match_columns,
)
from pipelines.safe_text import excerpt, single_line
from pipelines.settings import Settings
from pipelines.sql_text import quote_ident, sql_literal

CHECKED_TABLE = "landing_checked"
ERRORS_TABLE = "landing_errors"
# What the checked table keeps of the source adapter's trace columns, for bad rows only.
TRACE_ALIASES = ("_source_file", "_source_line")
# How much of a mapping's description of a column (an expression may be long) a problem quotes.
SOURCE_DESCRIPTION_CHARACTERS = 120


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file in this run."""

    file: LandingFile
    status: str  # loaded | duplicate | rejected | skipped | unchanged
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    message: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        if self.status == "loaded":
            text = f"{self.file.label}: loaded {self.rows_loaded:,} rows"
            if self.rows_quarantined:
                text += f", quarantined {self.rows_quarantined:,}"
            return text + f" ({self.seconds:.1f}s)"
        return f"{self.file.label}: {self.status}" + (f" — {self.message}" if self.message else "")


@dataclass
class EntityLoad:
    """The outcome of loading one entity's files in one run."""

    entity: str
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(o.rows_loaded for o in self.outcomes)

    @property
    def rows_quarantined(self) -> int:
        return sum(o.rows_quarantined for o in self.outcomes)

    @property
    def rejected(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "rejected"]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


class FileRejected(Exception):
    """The file is rejected whole; the message names the file and the reason."""


def load_entity(
    con: duckdb.DuckDBPyConnection,
    entity_name: str,
    files: Sequence[LandingFile],
    settings: Settings,
    run_id: str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> EntityLoad:
    """Load every file of `entity_name` not loaded before, in delivery order."""
    entity = ENTITIES[entity_name]
    result = EntityLoad(entity_name)
    for file in files:
        if file.entity != entity_name:
            continue
        outcome = _load_file(con, entity, file, settings, run_id)
        result.outcomes.append(outcome)
        if outcome.status != "unchanged":
            log(outcome.describe())
    return result


# How many entities load at once: the machine's two cores (DuckDB parallelises the typing of
# each file over its threads, but the largest file's gzipped CSV is read by one thread).
LOAD_WORKERS = 2


def load_entities(
    con: duckdb.DuckDBPyConnection,
    entity_names: Sequence[str],
    files: Sequence[LandingFile],
    settings: Settings,
    run_id: str | None = None,
    log: Callable[[str], None] = lambda _: None,
    loaded: Callable[[str, EntityLoad], None] = lambda _name, _load: None,
    workers: int = LOAD_WORKERS,
) -> dict[str, EntityLoad]:
    """Load the new files of every entity named, `workers` entities at a time, those with the
    most bytes of files first; the outcome of each entity, in the order named.

    Each entity loads on a connection of its own to the same database (`_session`, from
    `con`: DuckDB runs their transactions side by side; they write different tables, and the
    manifest and the quarantine only take appends) and its files one after another, in
    delivery order, as `load_entity` does. `log` (each file's outcome) and `loaded` (each
    entity's, as it finishes) are called in the calling thread only (a Dagster step's), as
    they arrive. The first error raised by a worker is raised here once every worker has
    stopped; the entities finished by then have been passed to `loaded` (not so when the
    calling thread itself stops: its step ends there, whatever finished meanwhile).

    If the calling thread is interrupted (a stopped step, an error in `log`), the workers'
    queries are interrupted and the workers waited for before the error goes on: no file of
    this load commits after it has ended, where a retry could load it a second time. The
    workers are daemons besides: a stopped CLI run (pipelines/run_guard.py) ends the process
    without waiting for them, and an uncommitted file never lands."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for name in sorted(entity_names, key=lambda n: -_bytes(files, n)):
        todo.put(name)
    news: queue.SimpleQueue[str | tuple[str, EntityLoad] | None] = queue.SimpleQueue()
    loads: dict[str, EntityLoad] = {}
    errors: list[BaseException] = []

    def work(cursor: duckdb.DuckDBPyConnection) -> None:
        try:
            while not errors:
                try:
                    name = todo.get_nowait()
                except queue.Empty:
                    return
                news.put((name, load_entity(cursor, name, files, settings, run_id, news.put)))
        except BaseException as exc:  # handed to the calling thread
            errors.append(exc)
        finally:
            news.put(None)

    count = max(1, min(workers, len(entity_names)))
    with ExitStack() as stack:
        cursors = [stack.enter_context(_session(con)) for _ in range(count)]
        threads = [
            threading.Thread(target=work, args=(cursor,), name=f"load-{number}", daemon=True)
            for number, cursor in enumerate(cursors)
        ]
        try:
            for thread in threads:
                thread.start()
            for item in _until_done(news, count):
                if isinstance(item, str):
                    log(item)
                else:
                    loads[item[0]] = item[1]
                    loaded(*item)
        except BaseException as exc:
            errors.append(exc)  # no worker takes another entity
            _stop(threads, cursors)
            raise
    if errors:
        raise errors[0]
    return {name: loads[name] for name in entity_names}


def _bytes(files: Sequence[LandingFile], entity_name: str) -> int:
    """The bytes of an entity's landing files, as the scan found them (`lstat`: a link is
    not followed here; the loader checks each file inside the landing before it reads it)."""
    total = 0
    for file in files:
        if file.entity == entity_name:
            with suppress(OSError):  # gone since the scan: its load will say so
                total += file.path.lstat().st_size
    return total


def _until_done(
    news: queue.SimpleQueue[str | tuple[str, EntityLoad] | None], workers: int
) -> Iterator[str | tuple[str, EntityLoad]]:
    """The workers' news (a file's outcome, an entity done) until each has said it stopped
    (None)."""
    while workers:
        item = news.get()
        if item is None:
            workers -= 1
        else:
            yield item


def _stop(
    threads: Sequence[threading.Thread], cursors: Sequence[duckdb.DuckDBPyConnection]
) -> None:
    """Interrupt the workers' queries until every worker has ended. (An interrupt reaches
    only the query running at that moment, so it is repeated: a worker between two queries
    runs into the next one.) A second stop while it waits (another SIGINT) does not cut it
    short: the cursors are closed only after it."""
    while any(thread.is_alive() for thread in threads):
        try:
            for cursor in cursors:
                with suppress(duckdb.Error):
                    cursor.interrupt()
            for thread in threads:
                thread.join(0.05)
        except BaseException:  # the first stop is being carried out
            continue


@contextmanager
def _session(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of its own to `con`'s database, with `con`'s session: DuckDB's cursors
    share the database, not every setting a connection was given (pipelines/resources.py:
    the time zone). Made in the calling thread: a connection serves one call at a time."""
    cursor = con.cursor()
    try:
        for name, value in con.execute(
            "select name, value from duckdb_settings() where name in ('TimeZone', "
            "'enable_progress_bar')"
        ).fetchall():
            cursor.execute(f"set {name} = {sql_literal(value)}")
        yield cursor
    finally:
        cursor.close()


def _load_file(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    file: LandingFile,
    settings: Settings,
    run_id: str | None,
) -> FileOutcome:
    try:  # again at the last moment: the scan's check could have been raced by a new link
        check_inside(file.path, settings.landing_dir, file.label)
    except OutsideLandingError as exc:
        # Not recorded in the manifest: that would hash and measure the file behind the link.
        return FileOutcome(file, "rejected", message=str(exc))
    try:
        content_hash = file.content_hash
    except OSError as exc:  # gone or unreadable since the scan listed it
        # Not recorded in the manifest: there is no content to hash or measure; the next
        # run's scan sees the folder as it is then.
        return FileOutcome(
            file, "rejected", message=f"the file cannot be read: {excerpt(exc.strerror or exc)}"
        )
    previous = con.execute(
        f"""
        select status, message from {RAW_SCHEMA}.load_manifest
        where delivery = ? and file_name = ? and content_hash = ?
        order by load_id desc limit 1
        """,
        [file.delivery, file.name, content_hash],
    ).fetchone()
    skipped = con.execute(
        f"""
        select skipped_by, skipped_at from {RAW_SCHEMA}.skipped_files
        where delivery = ? and file_name = ? and content_hash = ?
        """,
        [file.delivery, file.name, content_hash],
    ).fetchone()
    if previous is not None and previous[0] != "rejected":
        return FileOutcome(file, "unchanged")
    if skipped is not None:
        message = f"skipped by {skipped[0]} at {skipped[1]:%Y-%m-%d %H:%M %Z}"
        _record(con, file, run_id, "skipped", message=message)
        return FileOutcome(file, "skipped", message=message)
    if previous is not None:  # rejected before, same content: still rejected
        return FileOutcome(
            file,
            "rejected",
            message=f"{previous[1]} (rejected in an earlier run; replace, remove or skip it)",
        )
    twin = con.execute(
        f"""
        select delivery || '/' || file_name from {RAW_SCHEMA}.load_manifest
        where entity = ? and content_hash = ? and status = 'loaded'
        order by load_id limit 1
        """,
        [entity.name, content_hash],
    ).fetchone()
    if twin is not None:
        message = f"byte-identical to {twin[0]}, ignored"
        _record(con, file, run_id, "duplicate", message=message)
        return FileOutcome(file, "duplicate", message=message)

    started = time.perf_counter()
    try:
        return _validate_and_insert(con, entity, file, settings, run_id, started)
    except FileRejected as exc:
        _record(con, file, run_id, "rejected", message=str(exc))
        return FileOutcome(
            file, "rejected", message=str(exc), seconds=time.perf_counter() - started
        )
    finally:
        for table in (ERRORS_TABLE, CHECKED_TABLE, TEXT_TABLE):
            con.execute(f"drop table if exists {table}")


def _validate_and_insert(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    file: LandingFile,
    settings: Settings,
    run_id: str | None,
    started: float,
) -> FileOutcome:
    try:
        source = open_source(con, file)
        match = match_columns(entity, source.columns)
    except (UnreadableFileError, MissingColumnsError, DuplicateColumnError) as exc:
        raise FileRejected(str(exc)) from exc

    trace = _trace_columns(match)
    note = _source_note(entity, settings) if trace else "cast(null as varchar)"
    kept = dict(zip(TRACE_ALIASES, trace, strict=True)) if trace else {}
    # One pass over the file: read, typed, checked; the text is kept for bad rows only.
    select = checked_select_with_evidence(
        entity, match, settings.business_timezone, source.relation(), kept, source.line
    )
    try:
        con.execute(f"create temp table {CHECKED_TABLE} as {select}")
    except NOT_ABOUT_THE_FILE:
        raise
    except duckdb.Error as exc:
        raise FileRejected(source.unreadable(exc)) from exc
    rows, bad_rows = con.execute(
        f"select count(*), count(*) filter (where _is_bad) from {CHECKED_TABLE}"
    ).fetchone()  # type: ignore[misc]
    evidence = ", ".join(["_record", *TRACE_ALIASES[: len(kept)]])
    con.execute(
        f"""
        create temp table {ERRORS_TABLE} as
        select _line, {evidence}, problem.column_name, problem.reason
        from (select *, unnest(_problems) as problem from {CHECKED_TABLE} where _is_bad)
        """
    )
    if rows and bad_rows > settings.max_bad_row_share * rows and (
        bad_rows >= settings.min_bad_rows_to_reject
    ):
        raise FileRejected(
            f"{bad_rows:,} of {rows:,} rows have bad values (more than "
            f"{settings.max_bad_row_share:.0%}); first: {_first_problems(con, note)}"
        )

    columns = ", ".join(quote_ident(c.name) for c in entity.columns)
    con.execute("begin transaction")
    try:
        load_id = _record(
            con, file, run_id, "loaded", rows_read=rows,
            rows_loaded=rows - bad_rows, rows_quarantined=bad_rows,
            message=f"first problem: {_first_problems(con, note, 1)}" if bad_rows else None,
        )
        # No `order by _line`: the checked table holds the file's rows in file order and an
        # insert keeps it (DuckDB's preserve_insertion_order, on by default); nothing reads raw
        # by its physical order anyway (staging's tie-breaks name `_line`), and the sort cost
        # a sixth of the insert.
        con.execute(
            f"""
            insert into {entity_table(entity)}
            select {columns}, ? as _load_id, ? as _delivery, ? as _file, _line,
                   _extra_columns, now() as _loaded_at
            from {CHECKED_TABLE} where not _is_bad
            """,
            [load_id, file.delivery, file.name],
        )
        if bad_rows:
            con.execute(
                f"""
                insert into {RAW_SCHEMA}.quarantine
                select ?, ?, ?, ?, e._line, e.column_name,
                       e.reason || coalesce(' (source: ' || {note} || ')', ''),
                       e._record, now()
                from {ERRORS_TABLE} as e
                order by e._line, e.column_name
                """,
                [load_id, entity.name, file.delivery, file.name],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return FileOutcome(
        file, "loaded", rows_read=rows, rows_loaded=rows - bad_rows,
        rows_quarantined=bad_rows, seconds=time.perf_counter() - started,
    )


def _first_problems(con: duckdb.DuckDBPyConnection, note: str, limit: int = 3) -> str:
    """The first bad values, by line and column; for a landing written by the source adapter,
    led by where each is in the CRM's export (the file the operator can open and fix)."""
    rows = con.execute(
        f"select e._line, e.column_name, e.reason, {note} from {ERRORS_TABLE} as e "
        f"order by e._line, e.column_name limit {limit}"
    ).fetchall()
    # Reasons quote (bounded) values and columns are the file's names: escaped for one line.
    return "; ".join(
        f"{single_line(where)} → {single_line(column)}: {single_line(reason)} "
        f"(canonical line {line})" if where else
        f"line {line}, column {single_line(column)}: {single_line(reason)}"
        for line, column, reason, where in rows
    )


def _trace_columns(match: ColumnMatch) -> tuple[str, ...]:
    """The file's names of the source adapter's trace columns (`source_file`, `source_line`),
    empty unless the file carries both (a canonical extract carries neither)."""
    trace = {name.lower(): name for name in match.extra}
    if not all(column in trace for column in SOURCE_TRACE_COLUMNS):
        return ()
    return tuple(trace[c] for c in SOURCE_TRACE_COLUMNS)


def _source_note(entity: Entity, settings: Settings) -> str:
    """SQL (over a problem `e` of a file that carries the source adapter's trace) naming where
    the bad value came from in the CRM's export — `<delivery>/<file> line <n>, column <source
    column> (<YAML key>)`: the adapter puts `source_file`/`source_line` on every row, and its
    report says which source column or expression made each canonical column."""
    source_file, source_line = (f"e.{alias}" for alias in TRACE_ALIASES)
    columns = _mapped_columns(settings).get(entity.name, {})
    limit = SOURCE_DESCRIPTION_CHARACTERS
    described = " ".join(
        f"when {sql_literal(column)} then {sql_literal(', ' + excerpt(text, limit))}"
        for column, text in columns.items() if isinstance(text, str)
    )
    column_part = f"coalesce(case e.column_name {described} end, '')" if described else "''"
    return (
        f"case when {source_file} is not null then {source_file} || ' line ' || "
        f"coalesce({source_line}, '?') || {column_part} end"
    )


def _mapped_columns(settings: Settings) -> dict[str, dict[str, str]]:
    """Per entity, which source column or expression the adapter made each column from (its
    report in the landing it owns); empty when there is none or it cannot be read."""
    landing = settings.landing_dir
    if not (landing / ADAPTER_MARKER_FILE).is_file():
        return {}
    report = read_own_file(landing / ADAPTER_REPORT_JSON_FILE)
    if report is None:
        return {}
    try:
        columns = json.loads(report).get("columns", {})
    except (ValueError, AttributeError):
        return {}
    return columns if isinstance(columns, dict) else {}


def _record(
    con: duckdb.DuckDBPyConnection,
    file: LandingFile,
    run_id: str | None,
    status: str,
    *,
    rows_read: int | None = None,
    rows_loaded: int = 0,
    rows_quarantined: int = 0,
    message: str | None = None,
) -> int:
    """Write the file's manifest row; returns its load id."""
    row = con.execute(
        f"""
        insert into {RAW_SCHEMA}.load_manifest
        values (nextval('{RAW_SCHEMA}.load_id_seq'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                now())
        returning load_id
        """,
        [
            run_id, file.entity, file.delivery, file.name, str(file.path), file.extension,
            file.content_hash, file.path.stat().st_size, status, rows_read, rows_loaded,
            rows_quarantined, message,
        ],
    ).fetchone()
    return int(row[0])  # type: ignore[index]
