"""Finding and reading a source's export files into DuckDB as trimmed text.

The source folder is laid out like a canonical landing: one sub-folder per delivery (sorted by
name = delivery order) holding that delivery's export files. Each file is read into a temp
table of VARCHAR columns named as in the file (trimmed, empty → NULL), plus `_delivery`,
`_file` (`<delivery>/<name>`), `_line` (header = line 1, counted like the canonical loader:
a quoted value over several lines is one row, blank lines are no rows) and `_delivery_time`.

CSV is read by DuckDB with the mapping's delimiter and encoding; DuckDB reads UTF-8, UTF-16
and Latin-1 itself, anything else (cp1252, the usual Excel export) is first transcoded to a
temporary UTF-8 file with Python's codecs, line by line so that a bad byte is named by line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.adapters.errors import SourceFileError
from pipelines.adapters.expressions import PSEUDO_COLUMNS
from pipelines.adapters.mapping import FileSpec, SourceMapping, normalize_label
from pipelines.contract import MAX_LINE_BYTES
from pipelines.ingest.csv_lines import (
    READ_ERRORS,
    FileUnreadable,
    LineTooLong,
    NotDecodable,
    csv_file_problem,
    decoded_lines,
    first_line,
    line_too_long,
    open_binary,
    read_error_reason,
)
from pipelines.ingest.landing import (
    NOT_TEXT,
    PATTERN_CHARACTERS,
    LandingFile,
    folder_path_problem,
    hidden_folder_holds,
    leaves_folder,
    not_text,
    reads_as_pattern,
)
from pipelines.ingest.readers import (
    TEXT_TABLE,
    UnreadableFileError,
    error_gist,
    read_as_text,
)
from pipelines.ingest.validation import TRIM_CHARACTERS
from pipelines.safe_text import excerpt, single_line
from pipelines.sql_text import quote_ident, sql_literal

# DuckDB's CSV reader decodes these itself; others are transcoded first.
NATIVE_ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "iso8859-1": "latin-1",
                    "utf-16": "utf-16"}
DETECTED_DELIMITERS = (",", ";", "\t", "|")
RESERVED = (*PSEUDO_COLUMNS, "_delivery_time")


@dataclass(frozen=True)
class SourceFile:
    """One export file of one delivery, matched to a `files.<key>` of the mapping."""

    delivery: str
    key: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.delivery}/{self.path.name}"


@dataclass(frozen=True)
class SourceScan:
    deliveries: tuple[str, ...]
    files: dict[str, dict[str, list[SourceFile]]]  # delivery → file key → files (by name)
    notes: tuple[str, ...]


def scan_source(source_dir: Path, mapping: SourceMapping) -> SourceScan:
    """Every delivery and the `files.<key>` each of its files is (its globs match the name and
    its excludes do not; case-insensitive). A file no key matches is noted and ignored; a file
    two keys match is an error naming both (read twice, one export would pose as another)."""
    if not source_dir.is_dir():
        raise SourceFileError([f"source folder {single_line(str(source_dir))} does not "
                               "exist or is not a folder"])
    if problem := folder_path_problem(source_dir, "source folder"):
        raise SourceFileError([problem])
    notes: list[str] = []
    ambiguous: list[str] = []
    outside: list[str] = []
    patterned: list[str] = []
    undecodable: list[str] = []
    files: dict[str, dict[str, list[SourceFile]]] = {}
    # The export folder is a trust boundary like the landing folder (pipelines.ingest.landing):
    # links leading out of it are refused, dot-names are ignored by rule and listed.
    deliveries: list[Path] = []
    for entry in sorted(source_dir.iterdir()):
        if leaves_folder(entry, source_dir):
            outside.append(single_line(entry.name))
        elif entry.name.startswith("."):  # the adapter's own names too: it writes elsewhere
            notes.append(f"{single_line(entry.name)}: name starts with a dot, ignored by rule"
                         + (_export_count(entry, mapping) if entry.is_dir() else ""))
        elif entry.is_dir() and reads_as_pattern(entry.name):
            patterned.append(single_line(entry.name))
        elif entry.is_dir() and not_text(entry.name):
            undecodable.append(single_line(entry.name))
        elif entry.is_dir():
            deliveries.append(entry)
        elif not entry.is_file():
            notes.append(f"{single_line(entry.name)}: not a regular file or folder, ignored")
    for folder in deliveries:
        matched: dict[str, list[SourceFile]] = {}
        for path in sorted(folder.iterdir()):
            label = single_line(f"{folder.name}/{path.name}")  # names are data: escaped
            if leaves_folder(path, source_dir):
                outside.append(label)
                continue
            if path.name.startswith(".") or not path.is_file():
                reason = "name starts with a dot" if path.name.startswith(".") else "not a file"
                notes.append(f"{label}: {reason}, ignored by rule")
                continue
            keys = [spec.key for spec in mapping.files.values() if spec.matches(path.name)]
            if keys and reads_as_pattern(path.name):
                patterned.append(label)
                continue
            if keys and not_text(path.name):
                undecodable.append(label)
                continue
            if len(keys) > 1:
                ambiguous.append(
                    f"{mapping.name}: {label} matches "
                    + " and ".join(f"{mapping.files[k].path}.glob "
                                   f"({', '.join(mapping.files[k].globs)})" for k in keys)
                    + f": rename the file, or add an exclude to the {keys[0]} or {keys[1]} "
                      "that it is not"
                )
                continue
            for key in keys:
                matched.setdefault(key, []).append(SourceFile(folder.name, key, path))
            if not keys:
                notes.append(f"{label}: matches no files.*.glob, ignored")
        files[folder.name] = matched
    loose = sorted(single_line(p.name) for p in source_dir.iterdir()
                   if p.is_file() and p.name[0] != ".")
    if loose:
        notes.append(f"files directly in {single_line(str(source_dir))} are in no delivery "
                     "sub-folder and were "
                     f"ignored: {', '.join(loose)}")
    for spec in mapping.files.values():
        if deliveries and not any(spec.key in matched for matched in files.values()):
            notes.append(f"{spec.path}.glob: no file in any delivery matches "
                         f"{', '.join(spec.globs)}")
    if outside:
        raise SourceFileError([
            "refused (not read): symbolic link(s) leading outside the source folder: "
            + ", ".join(outside) + "; put the files themselves in the delivery folders"
        ])
    if patterned:
        raise SourceFileError([
            "refused (not read): named with a character the file readers take as a pattern "
            f"({' '.join(PATTERN_CHARACTERS)}), which would read other files: "
            + ", ".join(patterned) + "; rename them"
        ])
    if undecodable:
        raise SourceFileError([
            f"refused (not read): named with {NOT_TEXT}: " + ", ".join(undecodable)
            + "; rename them"
        ])
    if ambiguous:
        raise SourceFileError(ambiguous)
    if not deliveries:
        raise SourceFileError([f"source folder {single_line(str(source_dir))} has no delivery "
                               "sub-folders "
                               "(put each export in a folder named after its delivery, e.g. "
                               "2026-11-26T0200/)"])
    return SourceScan(tuple(f.name for f in deliveries), files, tuple(notes))


def _export_count(folder: Path, mapping: SourceMapping) -> str:
    """For a hidden folder: how many export files it holds, so the note says what is at
    stake (as the landing folder's scan says it)."""
    return hidden_folder_holds(
        folder, lambda name: any(spec.matches(name) for spec in mapping.files.values()),
        "export", "read", "read",
    )


@dataclass(frozen=True)
class LoadedFile:
    file: SourceFile
    columns: tuple[str, ...]
    rows: int


def read_source_file(
    con: duckdb.DuckDBPyConnection,
    table: str,
    file: SourceFile,
    spec: FileSpec,
    delivery_time: str | None,
    workdir: Path,
    mapping_name: str,
) -> LoadedFile:
    """Create temp table `table` from `file` (see the module docstring)."""

    def fail(detail: str) -> SourceFileError:
        return SourceFileError([f"{mapping_name}: {spec.path}: {file.label}: {detail}"])

    file_format = spec.format or _format_of(file.path)
    if file_format is None:
        raise fail(f"unknown file format; set {spec.path}.format to one of csv, xlsx, parquet, "
                   "jsonl")
    csv_read: _CsvRead | None = None
    if file_format == "csv":
        csv_read = _csv_relation(file, spec, workdir, fail)
        names, select_from = csv_read.names, csv_read.relation
        columns = [f"c{i}" for i in range(len(names))]
    else:
        try:
            relation = read_as_text(
                con, LandingFile(file.delivery, file.key, file.path, file_format)
            )
        except UnreadableFileError as exc:
            raise fail(str(exc)) from exc
        names = list(relation.columns)
        line_column = relation.line
        columns = [quote_ident(n) for n in names]
        select_from = f"{TEXT_TABLE}"
    names = _renamed(names, spec)
    reserved = [n for n in names if n.lower() in RESERVED]
    if reserved:
        raise fail(f"column {reserved[0]!r} has a name the adapter reserves; rename it")
    line = "cast(ordinality + 1 as bigint)" if file_format == "csv" else quote_ident(line_column)
    values = ", ".join(
        f"nullif(trim({column}, {sql_literal(TRIM_CHARACTERS)}), '') as {quote_ident(name)}"
        for column, name in zip(columns, names, strict=True)
    )
    moment = "cast(null as varchar)" if delivery_time is None else sql_literal(delivery_time)
    try:
        con.execute(
            f"create temp table {table} as select {values}{', ' if values else ''}"
            f"{sql_literal(file.delivery)} as _delivery, {sql_literal(file.label)} as _file, "
            f"{line} as _line, {moment} as _delivery_time from {select_from}"
        )
    except duckdb.Error as exc:
        detail = _csv_problem(csv_read, spec) if csv_read is not None else None
        select_path = csv_read.path if csv_read is not None else file.path
        raise fail(detail or error_gist(str(exc), select_path)) from exc
    finally:
        con.execute(f"drop table if exists {TEXT_TABLE}")
    rows = con.execute(f"select count(*) from {table}").fetchone()[0]  # type: ignore[index]
    return LoadedFile(file, tuple(names), int(rows))


def _renamed(names: list[str], spec: FileSpec) -> list[str]:
    """The header as the mapping names it: a spelling listed under `files.<key>.headers` (a
    label, an internal name, a Dutch label) becomes the mapping's name, unless the file has a
    column of that name already or an earlier column took it."""
    if not spec.headers:
        return names
    spellings = dict(spec.headers)
    taken = {n.lower() for n in names}
    renamed: list[str] = []
    for name in names:
        target = spellings.get(normalize_label(name))
        if target is not None and target.lower() not in taken:
            taken.add(target.lower())
            renamed.append(target)
        else:
            renamed.append(name)
    return renamed


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffixes, kind in (
        ((".csv", ".csv.gz", ".txt", ".tsv"), "csv"),
        ((".xlsx",), "xlsx"),
        ((".parquet",), "parquet"),
        ((".jsonl", ".ndjson"), "jsonl"),
    ):
        if name.endswith(suffixes):
            return kind
    return None


@dataclass(frozen=True)
class _CsvRead:
    names: list[str]
    relation: str  # read_csv(...) with ordinality
    path: Path  # the file DuckDB reads (a transcoded copy, or the file itself)
    encoding: str  # as DuckDB (and Python) decode `path`
    delimiter: str


def _csv_relation(file: SourceFile, spec: FileSpec, workdir: Path, fail) -> _CsvRead:
    """The header's names and a `read_csv(...) with ordinality` for the data, transcoding
    first when DuckDB cannot decode the file's encoding itself."""
    path = file.path
    native = NATIVE_ENCODINGS.get(spec.encoding)
    if native is None or (native != "utf-8" and path.name.lower().endswith(".gz")):
        path = _transcode(file, spec, workdir, fail)
        native = "utf-8"
    try:
        with open_binary(path) as handle:
            if native == "utf-16":  # newline="": a line ends at CR, LF or CR LF
                header = io.TextIOWrapper(handle, encoding=native, newline="").readline()
            else:  # decode the first line only: a bad byte further down is named by its line
                header = first_line(handle.readline(MAX_LINE_BYTES + 1)).decode(
                    "utf-8-sig" if native == "utf-8" else native)
    except UnicodeDecodeError as exc:
        raise fail(f"line 1: not valid {spec.encoding} ({exc.reason}); set "
                   f"{spec.path}.encoding (e.g. cp1252 for Excel exports)") from exc
    except READ_ERRORS as exc:
        raise fail(f"cannot read the header row: {read_error_reason(exc)}") from exc
    if not header.strip():
        raise fail("no header row (the file is empty)")
    delimiter = spec.delimiter or max(DETECTED_DELIMITERS, key=header.count)
    try:
        names = _header_names(next(csv.reader([header.rstrip("\r\n")], delimiter=delimiter)))
    except csv.Error as exc:  # the header's run of quotes is broken
        raise fail(f"line 1: the header row is not valid CSV ({excerpt(exc)})") from exc
    columns = ", ".join(f"{sql_literal(f'c{i}')}: 'VARCHAR'" for i in range(len(names)))
    relation = (
        f"read_csv({sql_literal(str(path))}, header = true, auto_detect = false, "
        f"delim = {sql_literal(delimiter)}, quote = '\"', escape = '\"', "
        f"columns = {{{columns}}}, strict_mode = true, encoding = {sql_literal(native)}) "
        "with ordinality"
    )
    return _CsvRead(names, relation, path, native, delimiter)


def _header_names(raw: list[str]) -> list[str]:
    """Trimmed names; an empty one becomes `_unnamed_<n>`, a repeated one `<name> (2)`."""
    names: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(raw, start=1):
        name = name.strip() or f"_unnamed_{position}"
        candidate, copy = name, 1
        while candidate.lower() in seen:
            copy += 1
            candidate = f"{name} ({copy})"
        seen.add(candidate.lower())
        names.append(candidate)
    return names


def _transcode(file: SourceFile, spec: FileSpec, workdir: Path, fail) -> Path:
    """A UTF-8 copy of the file; a byte the encoding does not define is named by line (as the
    loader numbers lines: pipelines/ingest/csv_lines.py). A file that cannot be read is the
    export's fault; a copy that cannot be written is not (it is raised as it is)."""
    target = workdir / f"transcoded-{len(list(workdir.iterdir()))}.csv"
    if spec.encoding.startswith(("utf-16", "utf-32")):  # no line is found in the bytes
        lines = _decoded_text(file.path, spec.encoding, fail)
    else:
        lines = decoded_lines(file.path, spec.encoding, lambda number, exc: (
            f"line {number}: not valid {spec.encoding} (byte 0x{exc.object[exc.start]:02x} at "
            f"position {exc.start + 1}); check {spec.path}.encoding"))
    with target.open("w", encoding="utf-8", newline="") as out:
        try:
            for line in lines:
                out.write(line)
        except NotDecodable as exc:
            raise fail(str(exc)) from exc
        except LineTooLong as exc:
            raise fail(line_too_long(exc)) from exc
        except FileUnreadable as exc:
            raise fail(f"cannot read: {exc}") from exc
    return target


def _decoded_text(path: Path, encoding: str, fail) -> Iterator[str]:
    """A file in an encoding whose characters span bytes (UTF-16, UTF-32), decoded a chunk at
    a time."""
    try:
        with open_binary(path) as handle:
            reader = io.TextIOWrapper(handle, encoding=encoding, newline="")
            while text := reader.read(1 << 20):
                yield text
    except UnicodeDecodeError as exc:
        raise fail(f"not valid {encoding} ({exc.reason})") from exc
    except READ_ERRORS as exc:
        raise FileUnreadable(read_error_reason(exc)) from exc


def _csv_problem(read: _CsvRead, spec: FileSpec) -> str | None:
    """Why DuckDB refused a CSV: the first line that is not in the declared encoding, or the
    first row a strict reader refuses (pipelines/ingest/csv_lines.py), named by its line.
    Streamed: the file is never held whole."""
    codec = {"utf-8": "utf-8", "latin-1": "latin-1", "utf-16": "utf-16"}[read.encoding]
    if codec == "utf-16":  # DuckDB's own message says it (error_gist)
        return None

    def lines() -> Iterator[str]:
        return decoded_lines(read.path, codec, lambda number, exc: (
            f"line {number}: not valid UTF-8 ({exc.reason}); set {spec.path}.encoding (e.g. "
            "cp1252 for Excel exports)"))

    return csv_file_problem(lines, read.delimiter, len(read.names), unreadable="cannot read: ",
                            hint=f" (is {spec.path}.delimiter right?)")
