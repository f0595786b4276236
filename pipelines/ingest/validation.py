"""The contract's parsing rules as SQL, applied set-based to a file read as text.

For each contract column two expressions are built: its typed value (`<col>`) and its
problem (`_err_<col>`: NULL when the value is fine, else a reason a person can act on).
One `create table ... as select` evaluates all of them in a single pass over the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.contract import MAX_FIELD_CHARACTERS, Column, Entity
from pipelines.ingest.readers import LINE_COLUMN
from pipelines.local_time import local_instant_sql
from pipelines.safe_text import EXCERPT_CHARACTERS, excerpt, single_line_sql
from pipelines.sql_text import quote_ident, sql_literal

# Text that carries an explicit offset (or Z) after a time of day: an exact instant. The
# offset's hours run 00–23 and its minutes 00–59 (RFC 3339's time-numoffset): DuckDB's cast
# would take `+25:00` or `+01:60` and move the instant by it.
OFFSET_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?\s*"
    r"([Zz]|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)$"
)
# Text without an offset: a bare date or a local date and time. Anything else (a zone name, an
# offset of another shape) is a bad value: DuckDB's cast to TIMESTAMP would silently drop it.
NAIVE_PATTERN = r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?)?$"
NUMBER_PATTERN = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
# Trimmed away around every value: spaces, tabs and stray line ends from spreadsheets.
TRIM_CHARACTERS = " \t\r\n"
TRUE_WORDS = ("true", "1", "yes", "y")
FALSE_WORDS = ("false", "0", "no", "n")

SQL_TYPES = {
    "string": "varchar",
    "enum": "varchar",
    "boolean": "boolean",
    "timestamp": "timestamptz",
    "integer": "bigint",
    "month": "varchar",
}


MAX_NAMES_SHOWN = 30


class MissingColumnsError(Exception):
    """The file lacks a column the contract requires it to carry."""

    def __init__(self, missing: list[str], present: tuple[str, ...]) -> None:
        self.missing = missing
        # The header is file content: shown as bounded, escaped names, and not all of them.
        shown = ", ".join(excerpt(name) for name in present[:MAX_NAMES_SHOWN])
        if len(present) > MAX_NAMES_SHOWN:
            shown += f", … ({len(present) - MAX_NAMES_SHOWN} more)"
        super().__init__(
            f"missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (the file has: {shown or 'no columns'})"
        )


class DuplicateColumnError(Exception):
    """Two columns of the file match the same contract column (names are case-insensitive)."""


def sql_type(column: Column) -> str:
    if column.type == "decimal":
        # Source amounts are money (cents); rates keep their full precision.
        return "double" if column.exclusive_minimum else "decimal(18, 2)"
    return SQL_TYPES[column.type]


@dataclass(frozen=True)
class ColumnMatch:
    """How the file's columns map onto the entity's: contract name → file name."""

    found: dict[str, str]
    extra: tuple[str, ...]


def match_columns(entity: Entity, file_columns: tuple[str, ...]) -> ColumnMatch:
    by_lower: dict[str, str] = {}
    for name in file_columns:
        key = name.strip().lower()
        if key in by_lower:
            raise DuplicateColumnError(
                f"columns '{excerpt(by_lower[key])}' and '{excerpt(name)}' are the same column "
                "(names match case-insensitively)"
            )
        by_lower[key] = name
    missing = [c for c in entity.present_columns if c not in by_lower]
    if missing:
        raise MissingColumnsError(missing, file_columns)
    found = {c: by_lower[c] for c in entity.column_names if c in by_lower}
    extra = tuple(name for key, name in by_lower.items() if key not in entity.column_names)
    return ColumnMatch(found, extra)


def _value_text(raw: str | None) -> str:
    """The trimmed text of a column (SQL `raw` of the value as read), NULL when empty or
    absent (`raw` None)."""
    if raw is None:
        return "cast(null as varchar)"
    # trim() with a set of characters costs about four times a look at both ends, and almost
    # no value needs it: only a value that starts or ends with one of them is trimmed.
    ends = ", ".join(str(ord(character)) for character in TRIM_CHARACTERS)
    return (
        f"case when ascii({raw}) in ({ends}) or ascii(right({raw}, 1)) in ({ends}) "
        f"then nullif(trim({raw}, {sql_literal(TRIM_CHARACTERS)}), '') "
        f"else nullif({raw}, '') end"
    )


def _typed(column: Column, text: str, timezone: str) -> str:
    """The typed value of a column from its trimmed text (NULL when unparsable)."""
    if column.type == "string":
        value = f"upper({text})" if column.upper else text
        if column.default is not None:
            value = f"coalesce({value}, {sql_literal(column.default)})"
        return value
    if column.type == "enum":
        allowed = ", ".join(sql_literal(v) for v in column.enum)
        return f"case when lower({text}) in ({allowed}) then lower({text}) end"
    if column.type == "boolean":
        default = "null" if column.default is None else column.default
        trues = ", ".join(sql_literal(v) for v in TRUE_WORDS)
        falses = ", ".join(sql_literal(v) for v in FALSE_WORDS)
        return (
            f"case when {text} is null then {default} "
            f"when lower({text}) in ({trues}) then true "
            f"when lower({text}) in ({falses}) then false end"
        )
    if column.type == "timestamp":
        # Upper-cased and with a decimal point: DuckDB's casts refuse `t`, `z` and `,`.
        iso = f"upper(replace({text}, ',', '.'))"
        return (
            f"case when regexp_matches({text}, {sql_literal(OFFSET_PATTERN)}) "
            f"then try_cast({iso} as timestamptz) "
            f"when regexp_matches({text}, {sql_literal(NAIVE_PATTERN)}) "
            f"then {local_instant_sql(timezone, f'try_cast({iso} as timestamp)')} end"
        )
    if column.type == "integer":
        # Whole numbers only (`12`, or `12.0` from a float column): DuckDB's cast to BIGINT
        # would silently round `12.5` to 13 and read hex such as `0x1F`.
        # Written plainly, as decimals are: DuckDB's casts take `1_000` as a thousand (the
        # pattern tested once, outside the CASE that uses the number twice).
        number = f"try_cast({text} as double)"
        return _if_plain_number(
            text, f"case when {number} = trunc({number}) then try_cast({text} as bigint) end"
        )
    if column.type == "decimal":
        # Cast from the text itself: an amount is rounded to cents from its written digits
        # (through DOUBLE, `1.005` would be 1.00499… and round to 1.00, and an amount beyond
        # 15 significant digits would lose its cents). By way of DECIMAL(38, 2): DuckDB's
        # cast to DECIMAL(18, 2) refuses a mantissa of more than 18 digits even where the
        # value fits (`12345678901234567e-1`).
        if sql_type(column) == "double":
            # a rate: DuckDB's cast reads a plainly written `1e400` as infinity, no rate
            number = f"try_cast({text} as double)"
            return _if_plain_number(text, f"case when isfinite({number}) then {number} end")
        return _if_plain_number(
            text, f"try_cast(try_cast({text} as decimal(38, 2)) as {sql_type(column)})"
        )
    if column.type == "month":
        return f"case when regexp_full_match({text}, '\\d{{4}}-(0[1-9]|1[0-2])') then {text} end"
    raise ValueError(f"unknown column type {column.type}")


def _plain_number(text: str) -> str:
    """A decimal written plainly (`-12`, `3.50`, `.5`, `1e3`) as DOUBLE, else NULL: no
    thousands separators, underscores, hex, NaN or infinity slip through DuckDB's casts."""
    return _if_plain_number(text, f"try_cast({text} as double)")


def _if_plain_number(text: str, value: str) -> str:
    """`value` where `text` is a number written plainly (NUMBER_PATTERN), else NULL."""
    return f"case when regexp_full_match({text}, {sql_literal(NUMBER_PATTERN)}) then {value} end"


def _shown(text: str) -> str:
    """SQL quoting a value inside a reason: at most EXCERPT_CHARACTERS of it, then how many
    more there were (a reason names the problem, it does not carry the value), escaped as
    `excerpt` escapes it: a reason is a message, read in terminals."""
    limit = EXCERPT_CHARACTERS
    head = single_line_sql(f"left({text}, {limit})")
    return (
        f"'''' || case when length({text}) > {limit} "
        f"then {head} || '''…(+' || format('{{:,}}', length({text}) - {limit}) "
        f"|| ' characters)' else {single_line_sql(text)} || '''' end"
    )


def _too_long(raw: str | None) -> tuple[str, str] | None:
    """The field limit, checked on the value as the file holds it (before trimming)."""
    if raw is None:
        return None
    return (
        f"length({raw}) > {MAX_FIELD_CHARACTERS}",
        f"'value of ' || format('{{:,}}', length({raw})) || "
        + sql_literal(
            f" characters is longer than the field limit ({MAX_FIELD_CHARACTERS:,} characters)"
        ),
    )


def _problem(
    column: Column, text: str, typed: str, typed_of: dict[str, str],
    too_long: tuple[str, str] | None = None,
) -> str:
    """SQL for the reason a value is bad, NULL when it is fine. First problem wins; the field
    limit is checked first, so an over-long value is never quoted at length."""
    checks: list[tuple[str, str]] = [too_long] if too_long else []
    if column.required:
        checks.append((f"{text} is null", sql_literal("required value is empty")))
    if column.required_when is not None:
        condition = column.required_when
        values = ", ".join(sql_literal(v) for v in condition.values)
        operator = "not in" if condition.negate else "in"
        checks.append(
            (
                f"{text} is null and {typed_of[condition.column]} {operator} ({values})",
                sql_literal(f"value is empty but {condition.describe()}"),
            )
        )
    shown = _shown(text)
    unparsable = {
        "enum": f"'unknown value ' || {shown} || "
        + sql_literal(f" (expected one of: {', '.join(column.enum)})"),
        "boolean": f"'not a boolean: ' || {shown} || ' (expected true/false, 1/0, yes/no, y/n)'",
        "timestamp": f"'unparsable timestamp ' || {shown} || ' (expected ISO 8601)'",
        "integer": f"'not an integer: ' || {shown}",
        "decimal": f"'not a number: ' || {shown} || ' (decimal point is .)'",
        "month": f"'malformed month ' || {shown} || ' (expected YYYY-MM)'",
    }
    if column.type in ("decimal", "integer"):
        # a number written plainly that its type cannot hold: said so, not "not a number"
        # (for an integer: a whole one, as `12.5` is no integer at all)
        number = f"try_cast({text} as double)"
        whole = f" and {number} = trunc({number})" if column.type == "integer" else ""
        checks.append((
            f"{text} is not null and {typed} is null and "
            f"regexp_full_match({text}, {sql_literal(NUMBER_PATTERN)}){whole}",
            f"'out of range: ' || {shown} || "
            + sql_literal(f" (beyond what a {sql_type(column)} holds)"),
        ))
    if column.type in unparsable:
        checks.append((f"{text} is not null and {typed} is null", unparsable[column.type]))
    if column.minimum is not None:
        operator = "<=" if column.exclusive_minimum else "<"
        bound = f"{'> ' if column.exclusive_minimum else '≥ '}{column.minimum:g}"
        checks.append(
            (f"{_plain_number(text)} {operator} {column.minimum}",
             f"'out of bounds: ' || {shown} || "
             + sql_literal(f" (must be {bound})"))
        )
    if not checks:
        return "cast(null as varchar)"
    whens = " ".join(f"when {condition} then {reason}" for condition, reason in checks)
    return f"case {whens} end"


def _checked_query(
    entity: Entity, match: ColumnMatch, timezone: str, source: str, line: str
) -> str:
    """The checked rows of `source`, with the file's columns carried as `_raw_<i>` (file order
    of `_file_columns`): typed columns, `_err_<col>` problems, the extra columns as JSON and
    `_line` (the source's line numbers, in its column `line`: readers.line_column).

    Built in layers — trimmed texts, then typed values, then problems — so that each
    expression is evaluated once per row: a problem refers to its column's typed value
    instead of repeating it (DuckDB does not share sub-expressions that sit inside a CASE,
    and the typing rules are CASEs with regular expressions)."""
    raw = _carried(match)
    present = [c for c in entity.columns if c.name in match.found]
    text = {c.name: _value_text(None) for c in entity.columns}
    text |= {c.name: f"_text_{i}" for i, c in enumerate(present)}
    texts = [
        f"{_value_text(quote_ident(match.found[c.name]))} as {text[c.name]}" for c in present
    ]
    carried = [f"{quote_ident(name)} as {alias}" for name, alias in raw.items()]
    numbered = f"{quote_ident(line)} as _line"
    layer_text = f"select {', '.join([*carried, *texts, numbered])}\nfrom {source}"

    typed_sql = {c.name: _typed(c, text[c.name], timezone) for c in entity.columns}
    typed = {c.name: f"_value_{i}" for i, c in enumerate(entity.columns)}
    values = [f"{typed_sql[c.name]} as {typed[c.name]}" for c in entity.columns]
    layer_typed = f"select *, {', '.join(values)}\nfrom ({layer_text})"

    parts = [f"{typed[c.name]} as {quote_ident(c.name)}" for c in entity.columns]
    parts += [
        f"{_problem(c, text[c.name], typed[c.name], typed, _too_long(_raw_of(match, raw, c)))} "
        f"as {quote_ident('_err_' + c.name)}"
        for c in entity.columns
    ]
    if match.extra:
        pairs = ", ".join(f"{quote_ident(name)} := {raw[name]}" for name in match.extra)
        parts.append(f"cast(to_json(struct_pack({pairs})) as varchar) as _extra_columns")
    else:
        parts.append("cast(null as varchar) as _extra_columns")
    parts += [*raw.values(), "_line"]
    return "select " + ",\n       ".join(parts) + f"\nfrom ({layer_typed})"


def _carried(match: ColumnMatch) -> dict[str, str]:
    """Every file column the checks read → the name it is carried under (`_raw_<i>`)."""
    file_columns = list(match.found.values()) + list(match.extra)
    return {name: f"_raw_{i}" for i, name in enumerate(file_columns)}


def _raw_of(match: ColumnMatch, raw: dict[str, str], column: Column) -> str | None:
    return raw[match.found[column.name]] if column.name in match.found else None


def _output_columns(entity: Entity) -> list[str]:
    return [
        *(quote_ident(c.name) for c in entity.columns),
        *(quote_ident("_err_" + c.name) for c in entity.columns),
        "_extra_columns",
        "_line",
    ]


def checked_select(
    entity: Entity, match: ColumnMatch, timezone: str, source: str, line: str = LINE_COLUMN
) -> str:
    """`select` of typed columns, `_err_<col>` problems, `_line` and the extra columns as JSON."""
    return (
        f"select {', '.join(_output_columns(entity))}\n"
        f"from ({_checked_query(entity, match, timezone, source, line)})"
    )


def checked_select_with_evidence(
    entity: Entity, match: ColumnMatch, timezone: str, source: str,
    kept: dict[str, str] | None = None, line: str = LINE_COLUMN,
) -> str:
    """The loader's one pass over a file: the typed columns, `_extra_columns`, `_line` and
    `_is_bad`, and for bad rows only what their quarantine needs — `_problems` (a list of
    `{column_name, reason}`, one per bad value, in contract column order), `_record` (the
    whole row as read, `record_json`) and the file columns named in `kept` (alias → file
    column), e.g. the source adapter's trace. All NULL on good rows, so a file is read, typed
    and checked without storing the text of its good rows or a column of problems each."""
    carried = _carried(match)
    problems = [quote_ident("_err_" + c.name) for c in entity.columns]
    is_bad = f"coalesce({', '.join(problems)}) is not null"
    listed = ", ".join(
        f"{{'column_name': {sql_literal(c.name)}, 'reason': {problem}}}"
        for c, problem in zip(entity.columns, problems, strict=True)
    )
    evidence = {
        "_problems": f"list_filter([{listed}], lambda problem: problem.reason is not null)",
        "_record": record_json(match, carried),
    }
    evidence |= {alias: carried[name] for alias, name in (kept or {}).items()}
    outer = [
        *(quote_ident(c.name) for c in entity.columns),
        "_extra_columns",
        "_line",
        f"{is_bad} as _is_bad",
        *(f"case when {is_bad} then {sql} end as {quote_ident(alias)}"
          for alias, sql in evidence.items()),
    ]
    return (
        "select " + ",\n       ".join(outer)
        + f"\nfrom ({_checked_query(entity, match, timezone, source, line)})"
    )


def record_json(match: ColumnMatch, columns: dict[str, str] | None = None) -> str:
    """SQL for a whole file row as JSON text, as it was read: kept with quarantined rows.
    `columns` maps a file column to the SQL that holds it (default: its own name)."""
    file_columns = list(match.found.values()) + list(match.extra)
    where = columns or {}
    # Bounded to the field limit: an over-long value is kept as evidence, not in full.
    record = ", ".join(
        f"{quote_ident(n)} := left({where.get(n, quote_ident(n))}, {MAX_FIELD_CHARACTERS})"
        for n in file_columns
    )
    return f"cast(to_json(struct_pack({record})) as varchar)"
