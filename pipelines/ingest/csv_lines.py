"""A CSV file's physical lines, and the first row a strict reader refuses, named by its line.

DuckDB reads the CSV files (the loader's, pipelines/ingest/readers.py, and the source
adapters' exports, pipelines/adapters/sources.py); when it refuses one, these explain why in
the reader's own terms — a line and what is wrong with it — without quoting the file. One home
for both, so that a line is numbered the same way wherever a message names it: a line ends at
CR, LF or CR LF (README, "Bad input"), a file of CR-ended lines included.

What cannot be read at all (a damaged .gz, a file gone) raises FileUnreadable with a reason
that names neither the file's path (an OSError does) nor its bytes (gzip quotes the first two):
messages name a file by its label, `<delivery>/<file>`.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pipelines.contract import MAX_LINE_BYTES
from pipelines.safe_text import excerpt

# What reading a (possibly gzipped) file can raise: zlib.error is damaged compressed data,
# EOFError compressed data cut short
READ_ERRORS = (OSError, EOFError, zlib.error)
# The explaining readers hold a line or a value this large before they give up on naming its
# column; one beyond even that is named by its line only
FALLBACK_LIMIT = 64 * MAX_LINE_BYTES
_CHUNK = 1 << 20


class FileUnreadable(Exception):
    """The file cannot be read (args[0]: why, without its path)."""


class LineTooLong(Exception):
    """A physical line longer than FALLBACK_LIMIT (args[0]: its number)."""


class NotDecodable(Exception):
    """A line not in the file's encoding (args[0]: the message naming it)."""


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when its name ends in `.gz`."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_error_reason(exc: BaseException) -> str:
    """Why a file could not be read, in words that name neither its path nor its bytes."""
    if isinstance(exc, gzip.BadGzipFile):
        return "not a gzip file"
    if isinstance(exc, EOFError):
        return "the compressed data ends before its end"
    if isinstance(exc, zlib.error):
        return f"damaged compressed data ({excerpt(exc)})"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def first_line_end(data: bytes) -> int:
    """The position of the first CR or LF in `data`, -1 when it has none."""
    ends = [at for at in (data.find(b"\n"), data.find(b"\r")) if at >= 0]
    return min(ends) if ends else -1


def first_line(data: bytes) -> bytes:
    """The first physical line of `data`, its ending's first byte included: a CSV header, as
    DuckDB's reader takes it."""
    return data[: first_line_end(data) + 1 or len(data)]


def physical_lines(handle: BinaryIO, limit: int = FALLBACK_LIMIT) -> Iterator[bytes]:
    """The file's physical lines, each with its ending, read a chunk at a time and none held
    beyond `limit` bytes (LineTooLong names it): a few megabytes of .gz can hold a line of
    gigabytes, and a file of CR-ended lines has no line feed to stop a `readline`. (`bytes.
    splitlines` ends a line at CR, LF or CR LF and nothing else.)"""
    pending, number = b"", 0
    while chunk := _read(handle):
        lines = (pending + chunk).splitlines(keepends=True)
        pending = lines.pop()  # unfinished, or a CR whose LF may begin the next chunk
        for line in lines:
            number += 1
            if len(line) > limit:
                raise LineTooLong(number)
            yield line
        if len(pending) > limit:
            raise LineTooLong(number + 1)
    if pending:
        yield pending


def _read(handle: BinaryIO) -> bytes:
    try:
        return handle.read(_CHUNK)
    except READ_ERRORS as exc:
        raise FileUnreadable(read_error_reason(exc)) from exc


def decoded_lines(
    path: Path, codec: str, not_decodable: Callable[[int, UnicodeDecodeError], str]
) -> Iterator[str]:
    """The physical lines of the file at `path`, decoded one at a time (a UTF-8 file's BOM
    dropped); a line that does not decode raises NotDecodable with `not_decodable(number,
    error)`."""
    try:
        opened = open_binary(path)
    except OSError as exc:
        raise FileUnreadable(read_error_reason(exc)) from exc
    with opened as handle:
        for number, line in enumerate(physical_lines(handle), start=1):
            try:
                yield line.decode("utf-8-sig" if number == 1 and codec == "utf-8" else codec)
            except UnicodeDecodeError as exc:
                raise NotDecodable(not_decodable(number, exc)) from exc


def csv_row_problem(
    lines: Callable[[], Iterator[str]],
    delimiter: str,
    width: int,
    *,
    hint: str = "",
    record_problem: Callable[[int, list[str]], str | None] | None = None,
) -> str | None:
    """The first row a strict reader refuses, named by its first physical line: `record_problem`
    of a row (its first line, its values), a row whose field count is not the header's `width`
    (one running over lines: where it starts and ends; `hint` follows the plain case), or —
    looked for only when no row is wrong so — a quote opened and never closed. Python's
    lenient reader goes first: DuckDB's strict reader takes `"Ann" ` (a space after the closing
    quote), which Python's strict one refuses. `lines` gives the file's lines, each time anew."""
    if csv.field_size_limit() < FALLBACK_LIMIT:
        csv.field_size_limit(FALLBACK_LIMIT)
    reader = csv.reader(lines(), delimiter=delimiter)
    end_of_previous = 0
    try:
        for record in reader:
            start, end_of_previous = end_of_previous + 1, reader.line_num
            if record_problem is not None and (problem := record_problem(start, record)):
                return problem
            if start > 1 and record and len(record) != width:
                fields = f"{len(record)} fields where the header has {width}"
                if reader.line_num > start:  # a quoted value ran over lines
                    return (f"line {start}: {fields}, in a row that runs to line "
                            f"{reader.line_num} (is a quote left open on line {start}?)")
                return f"line {start}: {fields}{hint}"
    except csv.Error as exc:
        return f"line {end_of_previous + 1}: {_csv_error_reason(exc)}"
    # the lenient reader took the rest of the file into the value of an unclosed quote
    strict = csv.reader(lines(), delimiter=delimiter, strict=True)
    end_of_previous = 0
    try:
        for _record in strict:
            end_of_previous = strict.line_num
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return f"line {end_of_previous + 1}: a quote opened in this row is never closed"
    return None


def csv_file_problem(
    lines: Callable[[], Iterator[str]],
    delimiter: str,
    width: int,
    *,
    unreadable: str,
    hint: str = "",
    record_problem: Callable[[int, list[str]], str | None] | None = None,
) -> str | None:
    """csv_row_problem, or what stopped the reading: a line that does not decode, a line
    beyond what is held, or a file that cannot be read (said after `unreadable`)."""
    try:
        return csv_row_problem(lines, delimiter, width, hint=hint,
                               record_problem=record_problem)
    except NotDecodable as exc:
        return str(exc)
    except LineTooLong as exc:
        return line_too_long(exc)
    except FileUnreadable as exc:
        return f"{unreadable}{exc}"


def _csv_error_reason(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (f"a value larger than {FALLBACK_LIMIT:,} bytes, far beyond the line limit "
                f"({MAX_LINE_BYTES:,} bytes)")
    return f"not readable as CSV ({excerpt(exc)})"


def line_too_long(exc: LineTooLong) -> str:
    """The message for a line beyond what the explaining readers hold."""
    return (f"line {exc.args[0]}: longer than {FALLBACK_LIMIT:,} bytes, far beyond the line "
            f"limit ({MAX_LINE_BYTES:,} bytes)")
