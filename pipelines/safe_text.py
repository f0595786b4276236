"""Text from data, made safe to print and store: the one home of escaping and redaction.

Everything the pipeline prints or stores that can hold data — CRM values, file and folder
names, header names, database errors quoting a line — passes through here, because data is
written by people outside the team:

- `terminal_safe` escapes control characters so a value like ``ESC[31m`` or an OSC title
  sequence (``ESC]0;title BEL``) cannot recolour, retitle or rewrite an operator's terminal,
  and bidi overrides cannot make a line read differently from what it says (Trojan Source);
- `excerpt` bounds a piece of file content to a short, escaped, single-line quote, so an error
  message names the problem without carrying the file (a secrets file must never end up in
  stderr, the load manifest or alerts.log);
- `html_text` makes a value from data text in an HTML page: its markup escaped (a rep named
  ``<script>…`` is shown, not run) and its control characters shown as `single_line` shows
  them (the GX Data Docs' validation pages: pipelines/quality/gx_duckdb.py);
- `redact` removes secret setting values (pipelines.settings marks them) from any text;
- `terminal_safe_output` escapes whatever a command writes to stdout and stderr — its own
  messages, Dagster's console log, the lines dbt prints — so no text from data reaches the
  operator's terminal as a control sequence, whichever library printed it.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# What is escaped, as (first, last) code points: C0 controls except tab and newline, DEL, C1
# controls, the Unicode format characters that reorder or hide text (bidi embeddings,
# overrides, isolates and marks, zero-width joiners, BOM), and lone surrogates: the bytes of a
# file or folder name that are not UTF-8, as Python keeps them (no terminal or file can be
# written one: printed, it would end the process)
UNSAFE_CODE_POINTS: tuple[tuple[int, int], ...] = (
    (0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F), (0x061C, 0x061C), (0x200B, 0x200F),
    (0x2028, 0x2029), (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x2069), (0xFEFF, 0xFEFF),
    (0xD800, 0xDFFF),
)
# ... and, inside a one-line message, tab and newline
LINE_BREAK_CODE_POINTS: tuple[tuple[int, int], ...] = ((0x09, 0x0A),)
_SURROGATES = (0xD800, 0xDFFF)


def _character_class(ranges: Iterable[tuple[int, int]], code: str) -> str:
    """A regular expression's class of `ranges`, each code point written as `code` makes it."""
    return "[" + "".join(
        code.format(first) + ("" if last == first else "-" + code.format(last))
        for first, last in ranges
    ) + "]"


_UNSAFE = re.compile(_character_class(UNSAFE_CODE_POINTS, "\\u{:04x}"))
_UNSAFE_OR_LINE_BREAK = re.compile(
    _character_class(UNSAFE_CODE_POINTS + LINE_BREAK_CODE_POINTS, "\\u{:04x}")
)
# Python's surrogateescape: the byte 0xNN of a name that is not UTF-8 is the code U+DCNN
_ESCAPED_BYTES = range(0xDC80, 0xDD00)
EXCERPT_CHARACTERS = 40
REDACTED = "***"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _ESCAPED_BYTES:  # shown as the byte the name holds
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object) -> str:
    """`text` with every control and format character escaped (`\\x1b`, `\\u202e`), line
    breaks and tabs kept: for whole messages and multi-line output such as `explain`."""
    return _UNSAFE.sub(_escape, str(text))


def single_line(text: object) -> str:
    """Like `terminal_safe`, but line breaks and tabs are escaped too: for a name or a value
    inside a one-line message."""
    return _UNSAFE_OR_LINE_BREAK.sub(_escape, str(text))


def single_line_sql(expression: str) -> str:
    """DuckDB SQL for `single_line` of a text `expression`: each character it escapes shown as
    it shows it (`\\x1b`, `\\u202e`), for messages the database writes itself (the
    quarantine's reasons quote values). Character by character: for short excerpts of bad
    values, not for whole columns. (DuckDB text is UTF-8: it holds no surrogates.)"""
    unsafe = _character_class(
        (r for r in UNSAFE_CODE_POINTS + LINE_BREAK_CODE_POINTS if r != _SURROGATES),
        "\\x{{{:x}}}",  # RE2's notation
    )
    code = "unicode(character)"
    return (
        f"array_to_string(list_transform(string_split({expression}, ''), lambda character: "
        f"case when regexp_matches(character, '{unsafe}') then case when {code} < 256 "
        f"then '\\x' || lpad(lower(hex({code})), 2, '0') "
        f"else '\\u' || lpad(lower(hex({code})), 4, '0') end else character end), '')"
    )


def excerpt(text: object, limit: int = EXCERPT_CHARACTERS) -> str:
    """A bounded, escaped, single-line quote of file content: at most `limit` characters of it,
    then how many more there were."""
    value = str(text)
    if len(value) <= limit:
        return single_line(value)
    return single_line(value[:limit]) + f"…(+{len(value) - limit:,} characters)"


def html_text(text: object) -> str:
    """`text` as text of an HTML page (an element's content or a quoted attribute): `<`, `>`,
    `&` and quotes escaped, control and format characters, line breaks and tabs shown escaped
    (`single_line`)."""
    return html.escape(single_line(text), quote=True)


def markdown_code_block(text: str) -> str:
    """`text` as one Markdown code block, for metadata a UI renders as Markdown (Dagster's):
    fenced by more backticks than any run of them in the text (CommonMark closes a fence
    only with one at least as long), so no byte of it is read as a link, emphasis or HTML."""
    runs = [len(run) for run in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}\n{text}\n{fence}"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-empty secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class TerminalSafeStream:
    """A text stream that writes `terminal_safe` text to the stream it wraps. It says it is
    no terminal (`isatty()` is False), so libraries that colour their output on a terminal
    (coloredlogs, dbt) write plain text rather than escape sequences that would show escaped."""

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        self.wrapped.write(terminal_safe(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.wrapped.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


@contextmanager
def terminal_safe_output() -> Iterator[None]:
    """stdout and stderr escaped for the duration (every thread's output: the job runs in a
    worker thread), restored afterwards."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalSafeStream(saved[0]), TerminalSafeStream(saved[1])
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
