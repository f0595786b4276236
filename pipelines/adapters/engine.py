"""Running a mapping: a source folder of CRM exports in, a canonical landing folder out.

For every delivery (sorted by name) and every mapped entity, the entity's parts are compiled
to SQL (compile.py), run in DuckDB, counted into the report and written as
`<out>/<delivery>/<entity>.csv` — with `source_file` and `source_line` on every row, so the
canonical loader keeps the trace in raw `_extra_columns`. Rows come out in source order
(part, file, line) and files are only replaced when their bytes change, so a re-run over the
same source writes byte-identical files and the loader's content-hash dedup loads nothing twice.
"""

from __future__ import annotations

import filecmp
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.adapters.compile import KEY_SEPARATOR, CompiledPart, PartCompiler
from pipelines.adapters.errors import AdapterError, MappingError
from pipelines.adapters.expressions import PSEUDO_COLUMNS
from pipelines.adapters.mapping import (
    TRACE_COLUMNS,
    EntityMap,
    LookupSpec,
    PartSpec,
    SourceMapping,
    ValueSpec,
    load_mapping,
)
from pipelines.adapters.report import AdapterReport, EntityReport, Problem
from pipelines.adapters.sources import (
    LoadedFile,
    SourceFile,
    SourceScan,
    read_source_file,
    scan_source,
)
from pipelines.contract import ENTITIES
from pipelines.ingest.landing import (
    ADAPTER_MARKER_FILE,
    ADAPTER_REPORT_JSON_FILE,
    ADAPTER_REPORT_TEXT_FILE,
    split_name,
)
from pipelines.settings import Settings
from pipelines.sql_text import quote_ident, sql_literal

# Written into the canonical landing the adapter owns: it may replace and remove entity files
# there, and refuses to write into a non-empty folder without it.
MARKER_FILE = ADAPTER_MARKER_FILE
# The last run's report, next to the marker (hidden: the loader ignores it), for the CLI's
# run summary and for whoever wonders where a row went.
REPORT_TEXT_FILE = ADAPTER_REPORT_TEXT_FILE
REPORT_JSON_FILE = ADAPTER_REPORT_JSON_FILE


def adapt_source(
    mapping: str | Path | SourceMapping,
    source_dir: Path,
    out_dir: Path,
    settings: Settings | None = None,
) -> AdapterReport:
    """Map every delivery of `source_dir` onto a canonical landing in `out_dir`.

    `mapping` is a YAML path, a preset name (`salesforce`, `hubspot`) or a loaded mapping.
    Raises MappingError / SourceFileError (AdapterError) naming the YAML key, file and column;
    rows it drops, holds back or fixes are counted in the returned report (also written to
    `out_dir/.adapter-report.txt` and `.json`). `report.ok` is False when an entity file had
    too many bad rows (the canonical loader's thresholds): the run should fail.
    """
    if not isinstance(mapping, SourceMapping):
        mapping = load_mapping(mapping)
    settings = settings or Settings()
    source_dir, out_dir = Path(source_dir).resolve(), Path(out_dir).resolve()
    scan = scan_source(source_dir, mapping)
    _prepare_out(source_dir, out_dir)
    report = AdapterReport(
        mapping.name, mapping.title, source_dir, out_dir, scan.deliveries,
        {name: EntityReport(name) for name in mapping.entities}, notes=list(scan.notes),
        columns={name: e.column_sources for name, e in mapping.entities.items()},
    )
    errors: list[AdapterError] = []
    written: set[Path] = set()
    with tempfile.TemporaryDirectory(prefix="sales-kpi-adapter-") as work, \
            duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"set memory_limit = {sql_literal(settings.duckdb_memory_limit)}")
        con.execute(f"set temp_directory = {sql_literal(str(Path(work) / 'spill'))}")
        run = _Run(con, mapping, settings, scan, Path(work), report)
        for delivery in scan.deliveries:
            for entity_map in mapping.entities.values():
                try:
                    path = run.adapt_entity(delivery, entity_map)
                except AdapterError as exc:
                    errors.append(exc)
                    continue
                if path is not None:
                    written.add(path)
            run.end_delivery()
    for name, entity_map in mapping.entities.items():
        keys = {part.file for part in entity_map.parts}
        if not any(scan.files[d].get(key) for d in scan.deliveries for key in keys):
            files = sorted(mapping.files[key].path for key in keys)
            report.notes.append(f"entities.{name}: no delivery has a file of "
                                f"{', '.join(files)}; nothing written")
    _remove_stale(out_dir, written)
    messages = list(dict.fromkeys(m for exc in errors for m in exc.messages))
    report.errors = messages
    (out_dir / REPORT_TEXT_FILE).write_text(report.format() + "\n", encoding="utf-8")
    (out_dir / REPORT_JSON_FILE).write_text(report.to_json() + "\n", encoding="utf-8")
    if errors:
        kinds = {type(exc) for exc in errors}
        cls = kinds.pop() if len(kinds) == 1 else AdapterError
        raise cls(messages, report)
    return report


@dataclass
class _Table:
    """The rows of one file kind in one delivery (several files: their union)."""

    name: str
    delivery: str
    files: list[LoadedFile]

    @property
    def columns(self) -> dict[str, str]:
        """Lower-cased name → name, over all files (and the pseudo columns)."""
        names = {c.lower(): c for f in self.files for c in f.columns}
        return names | {name: name for name in PSEUDO_COLUMNS}


class _Run:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        mapping: SourceMapping,
        settings: Settings,
        scan: SourceScan,
        workdir: Path,
        report: AdapterReport,
    ) -> None:
        self.con = con
        self.mapping = mapping
        self.settings = settings
        self.scan = scan
        self.workdir = workdir
        self.report = report
        self.tables: dict[tuple[str, str], _Table] = {}
        self.temp_tables: list[str] = []
        self.counter = 0
        # `deliveries: all` lookups: per file kind, the rows of every delivery read so far
        # (kept across deliveries, so that each file is read once).
        self.histories: dict[str, _Table] = {}

    def temp_name(self, prefix: str) -> str:
        self.counter += 1
        name = f"{prefix}_{self.counter}"
        self.temp_tables.append(name)
        return name

    def end_delivery(self) -> None:
        for name in self.temp_tables:
            self.con.execute(f"drop table if exists {name}")
        self.temp_tables.clear()
        self.tables.clear()

    # --- source tables ---------------------------------------------------------------------

    def delivery_time(self, file: SourceFile) -> str | None:
        setting = self.mapping.delivery_time
        if setting is None:
            return None
        if setting.source == "mtime":
            moment = datetime.fromtimestamp(file.path.stat().st_mtime, UTC)
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert setting.format is not None
        try:
            parsed = datetime.strptime(file.delivery, setting.format)
        except ValueError as exc:
            raise MappingError([self.mapping.error(
                "delivery_time.format",
                f"delivery folder {file.delivery!r} does not match {setting.format!r}",
            )]) from exc
        if parsed.tzinfo is not None:
            return parsed.isoformat()
        return parsed.strftime("%Y-%m-%d %H:%M:%S")

    def table(self, delivery: str, key: str, for_lookup: str | None = None) -> _Table | None:
        """The files of `key` in `delivery`; for a lookup, else the latest earlier delivery's."""
        candidates = [delivery]
        if for_lookup is not None:
            earlier = [d for d in self.scan.deliveries if d < delivery]
            candidates += list(reversed(earlier))
        source = next((d for d in candidates if self.scan.files[d].get(key)), None)
        if source is None:
            return None
        if source != delivery and for_lookup is not None:
            note = (f"{delivery}: {for_lookup} looks up files.{key} of delivery {source} "
                    "(none in this delivery)")
            if note not in self.report.notes:
                self.report.notes.append(note)
        if (source, key) in self.tables:
            return self.tables[(source, key)]
        spec = self.mapping.files[key]
        loaded = []
        names = []
        for file in self.scan.files[source][key]:
            name = self.temp_name("src")
            loaded.append(read_source_file(
                self.con, name, file, spec, self.delivery_time(file), self.workdir,
                self.mapping.name,
            ))
            names.append(name)
        if len(names) == 1:
            table = _Table(names[0], source, loaded)
        else:
            union = self.temp_name("src")
            self.con.execute(
                f"create temp table {union} as "
                + " union all by name ".join(f"select * from {n}" for n in names)
            )
            table = _Table(union, source, loaded)
        self.tables[(source, key)] = table
        return table

    def history(self, delivery: str, key: str) -> _Table | None:
        """The files of `key` in this and every earlier delivery, as one table (a lookup with
        `deliveries: all`: in a delta export, the row a value refers to may have been delivered
        earlier). The lookup prefers the latest delivery's row (compile.lookup_sql). Deliveries
        come in order, so each one's files are read once and appended."""
        known = self.histories.get(key)
        done = known.delivery if known is not None else ""
        new = [t for d in self.scan.deliveries if done < d <= delivery
               if (t := self.table(d, key)) is not None]
        if not new:
            return known
        name = f"hist_{list(self.mapping.files).index(key)}"
        parts = ([f"select * from {name}"] if known is not None else []) + [
            f"select * from {t.name}" for t in new
        ]
        self.con.execute(f"create or replace temp table {name}_next as "
                         + " union all by name ".join(parts))
        self.con.execute(f"drop table if exists {name}")
        self.con.execute(f"alter table {name}_next rename to {name}")
        files = (known.files if known is not None else []) + [f for t in new for f in t.files]
        self.histories[key] = _Table(name, delivery, files)
        return self.histories[key]

    # --- checks that name the YAML key -----------------------------------------------------

    def check_columns(self, refs: list[tuple[str, str]], table: _Table) -> None:
        """Every (YAML key, source column) must be a column of every file of `table`."""
        errors = []
        for loaded in table.files:
            names = {c.lower() for c in loaded.columns} | set(PSEUDO_COLUMNS)
            for key, column in refs:
                if column.lower() not in names:
                    errors.append(self.mapping.error(
                        key, f"source column {column!r} not found in {loaded.file.label} "
                             f"(columns: {', '.join(loaded.columns)})"
                    ))
        if errors:
            raise MappingError(list(dict.fromkeys(errors)))

    def check_expressions(self, expressions: list[tuple[str, str, bool]], table: str) -> None:
        """Bind each (YAML key, expression, must be boolean) against the table, so a type error
        is reported at its key rather than somewhere inside the generated query."""
        errors = []
        for key, expression, boolean in expressions:
            try:
                described = self.con.execute(
                    f"describe select ({expression}) as x from {table}"
                ).fetchall()
            except duckdb.Error as exc:
                errors.append(self.mapping.error(key, _first_line(exc)))
                continue
            if boolean and described[0][1] != "BOOLEAN":
                errors.append(self.mapping.error(
                    key, f"not a true/false expression (it gives {described[0][1]})"
                ))
        if errors:
            raise MappingError(errors)

    def diagnose(self, expressions: list[tuple[str, str, bool]], table: str,
                 part: PartSpec, label: str, exc: duckdb.Error) -> MappingError:
        """The query failed while running: find the expression that fails on these rows."""
        for key, expression, _ in expressions:
            try:
                self.con.execute(f"select count(({expression})) from {table}").fetchall()
            except duckdb.Error as inner:
                return MappingError([self.mapping.error(
                    key, f"{_first_line(inner)} (on the rows of {label})"
                )])
        return MappingError([self.mapping.error(part.path, f"{_first_line(exc)} ({label})")])

    # --- one entity, one delivery ----------------------------------------------------------

    def adapt_entity(self, delivery: str, entity_map: EntityMap) -> Path | None:
        """Write `<out>/<delivery>/<entity>.csv`; None when the delivery has none of its files."""
        tables = [(part, self.table(delivery, part.file)) for part in entity_map.parts]
        if all(table is None for _, table in tables):
            return None
        outputs = entity_map.output_columns
        accumulated = self.temp_name("entity")
        self.con.execute(
            f"create temp table {accumulated} (_part integer, _file varchar, _line bigint, "
            "_fixed varchar, _unparsable varchar"
            + "".join(f", {quote_ident(c)} varchar" for c in outputs) + ")"
        )
        stats = EntityReport(entity_map.name)
        problems: list[Problem] = []
        for position, (part, table) in enumerate(tables):
            if table is not None:
                self.adapt_part(delivery, entity_map, position, part, table, accumulated,
                                stats, problems)
        kept = self.unique(entity_map, accumulated, stats)
        for column, counter in (("_fixed", stats.values_fixed),
                                ("_unparsable", stats.values_unparsable)):
            for key, n in self.con.execute(
                f"select key, count(*) from (select unnest(string_split({column}, "
                f"chr({KEY_SEPARATOR}))) as key from {kept}) where key <> '' group by key"
            ).fetchall():
                counter[key] += n
        entity_report = self.report.entities[entity_map.name]
        for problem in problems:
            self.report.add_problem(problem)
        _merge_counts(entity_report, stats)
        label = f"{delivery}/{entity_map.name}.csv"
        if stats.bad and stats.bad > self.settings.max_bad_row_share * stats.rows_read and (
            stats.bad >= self.settings.min_bad_rows_to_reject
        ):
            first = "; ".join(p.describe() for p in problems[:3])
            self.report.rejected.append(
                f"{label}: not written: {stats.bad:,} of {stats.rows_read:,} source rows are bad "
                f"(more than {self.settings.max_bad_row_share:.0%}); first: {first}"
            )
            return None
        path = self.write(delivery, entity_map, kept, outputs)
        written = self.con.execute(f"select count(*) from {kept}").fetchone()[0]  # type: ignore[index]
        entity_report.rows_written += int(written)
        entity_report.files_written.append(label)
        return path

    def adapt_part(
        self, delivery: str, entity_map: EntityMap, position: int, part: PartSpec,
        table: _Table, accumulated: str, stats: EntityReport, problems: list[Problem],
    ) -> None:
        file_spec = self.mapping.files[part.file]
        refs = [(f"{file_spec.path}.filter", c) for c in file_spec.filter_columns]
        refs += [(f"{part.path}.filter", c) for c in part.filter_columns]
        expressions = [(f"{file_spec.path}.filter", file_spec.filter, True)] if (
            file_spec.filter) else []
        if part.filter:
            expressions.append((f"{part.path}.filter", part.filter, True))
        lookups: dict[str, str | None] = {}
        lookup_columns: dict[str, dict[str, str]] = {}
        for value in part.values:
            for spec in value.chain():
                key = spec.path if spec.kind == "column" else f"{spec.path}.expr"
                if not spec.optional:
                    refs += [(key, c) for c in spec.columns]
                elif spec.text.lower() not in table.columns:  # in none of the files: empty
                    prefix = f"{key}: optional source column {spec.text!r}"
                    if not any(n.startswith(prefix) for n in self.report.notes):  # once
                        fallback = (f"its default ({_describe_default(spec.default)}) is "
                                    "assumed" if spec.default else "left empty")
                        self.report.notes.append(
                            f"{prefix} is not in {table.files[0].file.label} (the first "
                            f"file without it): {fallback} where a file lacks it"
                        )
                if spec.kind == "expr":
                    expressions.append((key, spec.text, False))
                if spec.hint is not None:
                    refs += [(f"{spec.path}.hint", c) for c in spec.hint_columns]
                    expressions.append((f"{spec.path}.hint", spec.hint, False))
                if spec.lookup is not None:
                    lookup_table = self.prepare_lookup(delivery, spec.lookup)
                    lookups[spec.lookup.path] = lookup_table.name if lookup_table else None
                    lookup_columns[spec.lookup.path] = (
                        lookup_table.columns if lookup_table else {}
                    )
        self.check_columns(refs, table)
        self.check_expressions(expressions, table.name)
        file_filters = {k: f.filter for k, f in self.mapping.files.items()}
        compiled = PartCompiler(
            part, file_spec, table.name, table.columns, lookups, lookup_columns, file_filters
        ).compile()
        result = self.temp_name("part")
        label = ", ".join(f.file.label for f in table.files)
        try:
            self.con.execute(f"create temp table {result} as {compiled.sql}")
        except duckdb.Error as exc:
            raise self.diagnose(expressions, table.name, part, label, exc) from exc
        self.count(entity_map, compiled, result, stats, problems)
        columns = ", ".join(
            f"{column} as {quote_ident(target)}" for target, column in compiled.outputs.items()
        )
        self.con.execute(
            f"insert into {accumulated} by name select {position} as _part, _file, _line, "
            "_fixed, _unparsable, "
            f"{columns} from {result} where _drop is null and not ({_any_error(compiled)})"
        )

    def prepare_lookup(self, delivery: str, lookup: LookupSpec) -> _Table | None:
        if lookup.deliveries == "all":
            table = self.history(delivery, lookup.file)
        else:
            table = self.table(delivery, lookup.file, for_lookup=lookup.path)
        if table is None:
            note = (f"{delivery}: {lookup.path}: no files.{lookup.file} in this or an earlier "
                    "delivery; every value is unmatched")
            if note not in self.report.notes:
                self.report.notes.append(note)
            return None
        file_spec = self.mapping.files[lookup.file]
        refs = [(o.path, c) for o in (*lookup.keys, lookup.value) for c in o.columns]
        refs += [(f"{lookup.path}.where", c) for c in lookup.where_columns]
        refs += [(f"{file_spec.path}.filter", c) for c in file_spec.filter_columns]
        self.check_columns(refs, table)
        expressions = [(f"{o.path}.expr", o.text, False)
                       for o in (*lookup.keys, lookup.value) if o.kind == "expr"]
        if lookup.where:
            expressions.append((f"{lookup.path}.where", lookup.where, True))
        self.check_expressions(expressions, table.name)
        return table

    def count(
        self, entity_map: EntityMap, compiled: CompiledPart, result: str,
        stats: EntityReport, problems: list[Problem],
    ) -> None:
        """Rows read, dropped per reason, bad per first error, values fixed per rule."""
        error = _any_error(compiled)
        stats.rows_read += self.con.execute(
            f"select count(*) from {result}"
        ).fetchone()[0]  # type: ignore[index]
        for reason, n in self.con.execute(
            f"select _drop, count(*) from {result} where _drop is not null group by _drop"
        ).fetchall():
            stats.rows_dropped[reason] += n
        errors = [f for f in compiled.flags if f.kind == "error"]
        if errors:
            first = "case " + " ".join(
                f"when {f.column} then {sql_literal(f.key)}" for f in errors
            ) + " end"
            for reason, n in self.con.execute(
                f"select {first}, count(*) from {result} where _drop is null and ({error}) "
                "group by 1"
            ).fetchall():
                stats.rows_bad[reason] += n
            for flag in errors:
                hint = f"{flag.column}_hint" if flag.hint else "cast(null as varchar)"
                for file, line, value, hint_text in self.con.execute(
                    f"select _file, _line, {flag.column}_value, {hint} from {result} "
                    f"where _drop is null and {flag.column} order by _file, _line limit 1000"
                ).fetchall():
                    problems.append(Problem(entity_map.name, file, line, flag.source_column,
                                            value, flag.key, flag.reason, hint_text))
        problems.sort(key=lambda p: (p.file, p.line, p.key))

    def unique(self, entity_map: EntityMap, accumulated: str, stats: EntityReport) -> str:
        """Keep one row per `unique.key` (rows with an empty key are never merged)."""
        unique = entity_map.unique
        if unique is None:
            return accumulated
        direction = "asc" if unique.keep == "first" else "desc"
        order = [f"{quote_ident(c)} {direction} nulls last" for c in unique.order_by]
        order += [f"{c} {direction}" for c in ("_part", "_file", "_line")]
        keys = ", ".join(quote_ident(c) for c in unique.key)
        empty = " or ".join(f"{quote_ident(c)} is null" for c in unique.key)
        kept = self.temp_name("unique")
        self.con.execute(
            f"create temp table {kept} as select * from {accumulated} qualify ({empty}) or "
            f"row_number() over (partition by {keys} order by {', '.join(order)}) = 1"
        )
        before, after = (
            self.con.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
            for t in (accumulated, kept)
        )
        if before > after:
            stats.rows_dropped[unique.path] += before - after
        return kept

    def write(self, delivery: str, entity_map: EntityMap, table: str,
              outputs: tuple[str, ...]) -> Path:
        """Write the canonical CSV; keep the existing file (and its mtime) when identical."""
        folder = self.report.out_dir / delivery
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{entity_map.name}.csv"
        temporary = folder / f".{entity_map.name}.csv.tmp"
        columns = ", ".join(quote_ident(c) for c in outputs)
        source_file, source_line = TRACE_COLUMNS
        self.con.execute(
            f"copy (select {columns}, _file as {source_file}, _line as {source_line} "
            f"from {table} order by _part, _file, _line) to {sql_literal(str(temporary))} "
            "(format csv, header true, delimiter ',', quote '\"', escape '\"')"
        )
        if target.exists() and filecmp.cmp(target, temporary, shallow=False):
            temporary.unlink()
        else:
            os.replace(temporary, target)
        return target


def _describe_default(spec: ValueSpec) -> str:
    return repr(spec.text) if spec.kind == "const" else f"{spec.kind} {spec.text!r}"


def _any_error(compiled: CompiledPart) -> str:
    columns = [f.column for f in compiled.flags if f.kind == "error"]
    return " or ".join(columns) if columns else "false"


def _merge_counts(into: EntityReport, stats: EntityReport) -> None:
    into.rows_read += stats.rows_read
    into.rows_dropped.update(stats.rows_dropped)
    into.rows_bad.update(stats.rows_bad)
    into.values_fixed.update(stats.values_fixed)
    into.values_unparsable.update(stats.values_unparsable)


def _prepare_out(source_dir: Path, out_dir: Path) -> None:
    """The canonical landing is the adapter's: create it, or reuse one it made before."""
    if out_dir == source_dir or source_dir in out_dir.parents:
        raise AdapterError([f"the canonical landing {out_dir} must not be inside the source "
                            f"folder {source_dir}"])
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER_FILE).exists():
        raise AdapterError([f"{out_dir} is not empty and was not written by the adapter; "
                            "give an empty or new folder for the canonical landing"])
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir / MARKER_FILE
    if not marker.exists():
        marker.write_text("A canonical landing written by the source adapter "
                          "(pipelines.adapters): its entity files are replaced on every run.\n",
                          encoding="utf-8")


def _remove_stale(out_dir: Path, written: set[Path]) -> None:
    """Entity files this run did not write (an entity no longer mapped, a rejected file)."""
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        for path in folder.iterdir():
            parts = split_name(path.name)
            stale = parts is not None and parts[0] in ENTITIES and path not in written
            if stale or path.name.endswith(".csv.tmp"):
                path.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def _first_line(exc: BaseException) -> str:
    """DuckDB's message without the generated SQL it quotes, plus a hint for the usual cause."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = re.split(r"\s+LINE \d+:", lines[0])[0] if lines else type(exc).__name__
    if "VARCHAR" in message and "Binder Error" in message:
        message += " (source columns are text: convert them, e.g. try_cast(\"Waarde\" as double))"
    return message


def source_files(mapping: str | Path | SourceMapping, source_dir: Path) -> list[SourceFile]:
    """Every export file a mapping would read, in delivery order: what a sensor watching a
    source folder (instead of a canonical landing) should look at."""
    if not isinstance(mapping, SourceMapping):
        mapping = load_mapping(mapping)
    scan = scan_source(Path(source_dir), mapping)
    found = {
        file.path: file
        for delivery in scan.deliveries
        for files in scan.files[delivery].values()
        for file in files
    }
    return sorted(found.values(), key=lambda f: (f.delivery, f.path.name))
