"""A mapping part as one SQL query: the declarative rules become set-based DuckDB SQL.

For one part (one source file kind feeding one entity) the query is a chain of CTEs over the
source table, one stage per step of a column's value, in this order:

    source (column | expr | const | delivery_time) → aliases → lookup → map → format
    → decimal → default

Each step that can fix or fail a value also yields a flag column (`_c<j>`: counted as fixed
or unparsable, `_e<j>`: an error that makes the row bad), and the last select decides each
row's fate: dropped (`_drop`, the YAML key of the filter or `if_missing`/`if_unparsable: drop`
rule) or kept. The engine counts the flags and writes the kept rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.adapters.mapping import FileSpec, LookupSpec, Operand, PartSpec, ValueSpec
from pipelines.ingest.validation import TRIM_CHARACTERS
from pipelines.sql_text import quote_ident, sql_literal

OUTPUT_TIMESTAMP = "%Y-%m-%d %H:%M:%S"
KEY_SEPARATOR = 31  # chr(31), the ASCII unit separator: never part of a YAML key


def label_sql(value: str) -> str:
    """SQL twin of `mapping.normalize_label`: trimmed, spaces collapsed, lower case."""
    return (
        f"lower(regexp_replace(trim({value}, {sql_literal(TRIM_CHARACTERS)}), "
        "'[\\t\\n\\f\\r ]+', ' ', 'g'))"
    )


def text_sql(expression: str) -> str:
    """Any expression's result as the text the canonical loader reads (empty → NULL)."""
    return (
        f"nullif(trim(cast(({expression}) as varchar), {sql_literal(TRIM_CHARACTERS)}), '')"
    )


@dataclass(frozen=True)
class Flag:
    """A boolean output column and what it means for the report."""

    column: str
    kind: str  # fixed | unparsable | error
    key: str  # the YAML key that decided
    chain: int  # which value chain raised it
    reason: str = ""
    value_column: str | None = None  # for errors: the offending value
    source_column: str = ""  # for errors: how the report names the column
    hint: str | None = None  # for errors: the query column holding the `hint` text


@dataclass
class CompiledPart:
    sql: str
    outputs: dict[str, str]  # output column name → its column in the query
    flags: list[Flag] = field(default_factory=list)


@dataclass
class _Chain:
    spec: ValueSpec
    index: int
    parent: _Chain | None
    value: str = ""  # the column holding the latest value


class PartCompiler:
    """Builds the query of one part over the source table `table` (see the module docstring).

    `columns` maps the source table's lower-cased column names to their names; `lookups` maps
    a lookup's YAML key to the table holding its file (None: no such file delivered yet).
    """

    def __init__(
        self,
        part: PartSpec,
        file: FileSpec,
        table: str,
        columns: dict[str, str],
        lookups: dict[str, str | None],
        lookup_columns: dict[str, dict[str, str]],
        file_filters: dict[str, str | None],
    ) -> None:
        self.part = part
        self.file = file
        self.table = table
        self.columns = columns
        self.lookups = lookups
        self.lookup_columns = lookup_columns
        self.file_filters = file_filters
        self.chains: list[_Chain] = []
        for spec in part.values:
            parent: _Chain | None = None
            for link in spec.chain():
                chain = _Chain(link, len(self.chains), parent)
                self.chains.append(chain)
                parent = chain
        self.flags: list[Flag] = []

    def _flag(
        self, kind: str, key: str, chain: _Chain, reason: str = "",
        value_column: str | None = None,
    ) -> str:
        column = f"_{'e' if kind == 'error' else 'c'}{len(self.flags)}"
        root = self.root(chain)
        hint = f"h{root.index}" if kind == "error" and root.spec.hint else None
        self.flags.append(Flag(column, kind, key, chain.index, reason, value_column,
                               self.describe(chain.spec), hint))
        return column

    @staticmethod
    def root(chain: _Chain) -> _Chain:
        """The column's own chain (a default's hint is the column's)."""
        while chain.parent is not None:
            chain = chain.parent
        return chain

    def source(self, spec: ValueSpec) -> str:
        if spec.kind == "column":
            if spec.optional and spec.text.lower() not in self.columns:
                return "cast(null as varchar)"
            return quote_ident(self.columns[spec.text.lower()])
        if spec.kind == "expr":
            return text_sql(spec.text)
        if spec.kind == "const":
            return text_sql(sql_literal(spec.text))
        return "_delivery_time"

    def compile(self) -> CompiledPart:
        ctes: list[str] = []
        # Stage 0: filters and the source value of every chain.
        file_filter = f"coalesce(({self.file.filter}), false)" if self.file.filter else "true"
        part_filter = f"coalesce(({self.part.filter}), false)" if self.part.filter else "true"
        selects = [f"_file, _line, {file_filter} as _ff, {part_filter} as _pf"]
        for chain in self.chains:
            chain.value = f"v{chain.index}_0"
            selects.append(f"{self.source(chain.spec)} as {chain.value}")
            if chain.parent is None and chain.spec.hint:
                selects.append(f"{text_sql(chain.spec.hint)} as h{chain.index}")
        ctes.append(f"s0 as (select {', '.join(selects)} from {self.table})")
        pending: dict[int, list[tuple[str, str]]] = {}  # chain → (flag expression, YAML key)

        # Stage 1: aliases.
        stage: list[str] = []
        for chain in self.chains:
            spec = chain.spec
            if spec.aliases:
                new = f"v{chain.index}_a"
                stage.append(f"{_case(label_sql(chain.value), spec.aliases, chain.value)} as {new}")
                pending.setdefault(chain.index, []).append(
                    (f"{new} is distinct from {chain.value}", f"{spec.path}.aliases")
                )
                chain.value = new
        ctes.append(_stage("s1", "s0", stage))

        # Stage 2: lookups (joins), and the alias flags of stage 1.
        stage, joins = [], []
        flag_selects: list[str] = []
        for chain in self.chains:
            for expression, key in pending.pop(chain.index, []):
                flag_selects.append(f"{expression} as {self._flag('fixed', key, chain)}")
            lookup = chain.spec.lookup
            if lookup is None:
                continue
            alias = f"lk{chain.index}"
            joins.append(f"left join {self.lookup_sql(lookup)} as {alias} on {alias}.k = "
                         f"{'lower' if lookup.ignore_case else ''}(s1.{chain.value})")
            missing = f"(s1.{chain.value} is not null and {alias}.k is null)"
            kept = f"s1.{chain.value}" if lookup.unmatched == "keep" else "null"
            new = f"v{chain.index}_l"
            stage.append(f"case when {missing} then {kept} else {alias}.v end as {new}")
            kind = "error" if lookup.unmatched == "error" else "fixed"
            if not _falls_through(lookup.unmatched, chain.spec):
                flag_selects.append(
                    f"{missing} as "
                    + self._flag(kind, f"{lookup.path}.unmatched", chain,
                                 f"no match in files.{lookup.file} for", f"v{chain.index}_li")
                )
            stage.append(f"s1.{chain.value} as v{chain.index}_li")
            chain.value = new
        ctes.append(
            f"s2 as (select s1.*{_comma(stage + flag_selects)} from s1 {' '.join(joins)})"
        )

        # Stage 3: vocabularies.
        stage = []
        for chain in self.chains:
            spec = chain.spec
            if spec.vocabulary is None:
                continue
            keys = ", ".join(sql_literal(k) for k, _ in spec.vocabulary)
            unmapped = f"({chain.value} is not null and {label_sql(chain.value)} not in ({keys}))"
            other = chain.value if spec.unmapped == "keep" else "null"
            new = f"v{chain.index}_m"
            stage.append(f"{_case(label_sql(chain.value), spec.vocabulary, other)} as {new}")
            kind = "error" if spec.unmapped == "error" else "fixed"
            if not _falls_through(spec.unmapped, spec):
                stage.append(
                    f"{unmapped} as "
                    + self._flag(kind, f"{spec.path}.unmapped", chain, "unmapped value",
                                 chain.value)
                )
            chain.value = new
        ctes.append(_stage("s3", "s2", stage))

        # Stages 4 and 5: timestamp formats (parsed, then chosen; unparsable passes on).
        stage, chosen = [], []
        for chain in self.chains:
            formats = self.formats(chain.spec)
            if not formats:
                continue
            parsed = f"p{chain.index}"
            stage.append(f"coalesce({', '.join(_strptime(chain.value, f) for f in formats)}) "
                         f"as {parsed}")
            new = f"v{chain.index}_f"
            chosen.append(f"coalesce({parsed}, {chain.value}) as {new}")
            chosen.append(
                f"({chain.value} is not null and {parsed} is null) as "
                + self._flag("unparsable", f"{chain.spec.path}.format", chain)
            )
            chain.value = new
        ctes.append(_stage("s4", "s3", stage))
        ctes.append(_stage("s5", "s4", chosen))

        # Stage 6: decimal commas and thousands separators.
        stage = []
        for chain in self.chains:
            decimal, thousands = self.number_format(chain.spec)
            if decimal == "." and thousands is None:
                continue
            new = f"v{chain.index}_d"
            stage.append(f"{_number_sql(chain.value, decimal, thousands)} as {new}")
            chain.value = new
        ctes.append(_stage("s6", "s5", stage))

        # Final: defaults, which flags count (a default's only when it is used), row fate.
        finals: dict[int, str] = {}
        active: dict[int, str] = {}
        for chain in reversed(self.chains):  # defaults come after their parents
            child = next((c for c in self.chains if c.parent is chain), None)
            finals[chain.index] = (
                f"coalesce({chain.value}, {finals[child.index]})" if child else chain.value
            )
        for chain in self.chains:
            active[chain.index] = (
                "true" if chain.parent is None
                else f"({active[chain.parent.index]} and {chain.parent.value} is null)"
            )
        selects = ["_file", "_line"]
        outputs: dict[str, str] = {}
        drops = ["when not _ff then " + sql_literal(f"{self.file.path}.filter"),
                 "when not _pf then " + sql_literal(f"{self.part.path}.filter")]
        counted = list(self.flags)
        self.flags = []
        for flag in counted:
            selects.append(f"({active[flag.chain]} and coalesce({flag.column}, false)) "
                           f"as {flag.column}")
            self.flags.append(flag)
        for chain in self.chains:
            spec = chain.spec
            child = next((c for c in self.chains if c.parent is chain), None)
            if child is not None:
                selects.append(
                    f"({active[chain.index]} and {chain.value} is null and "
                    f"{finals[child.index]} is not null) as "
                    + self._flag("fixed", f"{spec.path}.default", chain)
                )
            if chain.parent is not None:
                continue
            outputs[spec.target] = f"o{chain.index}"
            selects.append(f"{finals[chain.index]} as o{chain.index}")
            if spec.if_missing == "drop":
                # An error (an unmapped value) is no missing value: it is reported, not dropped.
                mine = {c.index for c in self.chains if c is chain or _descends(c, chain)}
                errors = [f.column for f in counted if f.kind == "error" and f.chain in mine]
                failed = f" and not coalesce({' or '.join(errors)}, false)" if errors else ""
                drops.append(f"when {finals[chain.index]} is null{failed} then "
                             + sql_literal(f"{spec.path}.if_missing"))
            if spec.if_unparsable == "drop" and self.formats(spec):
                flag = next(f for f in self.flags if f.key == f"{spec.path}.format")
                drops.append(f"when {flag.column} then "
                             + sql_literal(f"{spec.path}.if_unparsable"))
        for flag in self.flags:
            if flag.value_column:
                selects.append(f"{flag.value_column} as {flag.column}_value")
            if flag.hint:
                selects.append(f"{flag.hint} as {flag.column}_hint")
        for kind, column in (("fixed", "_fixed"), ("unparsable", "_unparsable")):
            # The keys of the rules that fixed a value of the row, carried with the row so
            # that only rows actually written are counted (after `unique`).
            keys = [f"case when {f.column} then {sql_literal(f.key)} end"
                    for f in self.flags if f.kind == kind]
            selects.append(f"concat_ws(chr({KEY_SEPARATOR}), {', '.join(keys)}) as {column}"
                           if keys else f"'' as {column}")
        selects.append(f"case {' '.join(drops)} end as _drop")
        sql = "with " + ",\n".join(ctes) + f"\nselect {', '.join(selects)} from s6"
        return CompiledPart(sql, outputs, self.flags)

    def describe(self, spec: ValueSpec) -> str:
        return spec.text if spec.kind == "column" else spec.path

    def formats(self, spec: ValueSpec) -> tuple[str, ...]:
        """A column's own formats; else, for a timestamp read from a column of this file, the
        file's `timestamp_format`."""
        if spec.formats:
            return spec.formats
        if spec.column_type == "timestamp" and spec.kind == "column" and spec.lookup is None:
            return self.file.timestamp_formats
        return ()

    def number_format(self, spec: ValueSpec) -> tuple[str, str | None]:
        """A column's own decimal/thousands; else, for a number computed from this file's
        columns, the file's."""
        if spec.decimal is not None:
            return spec.decimal, spec.thousands
        if spec.column_type in ("decimal", "integer") and spec.kind in ("column", "expr") and (
            spec.lookup is None
        ):
            return self.file.decimal, self.file.thousands
        return ".", None

    def lookup_sql(self, lookup: LookupSpec) -> str:
        table = self.lookups.get(lookup.path)
        if table is None:
            return "(select cast(null as varchar) as k, cast(null as varchar) as v where false)"
        columns = self.lookup_columns[lookup.path]
        value = _operand_sql(lookup.value, columns)
        conditions = [f"({lookup.where})" if lookup.where else "true"]
        if self.file_filters.get(lookup.file):
            conditions.append(f"({self.file_filters[lookup.file]})")
        # Several keys: one (key, value) pair per key and row; an earlier key wins. Across
        # deliveries the latest delivery's row wins; within one, the first row.
        pairs = []
        for rank, operand in enumerate(lookup.keys):
            key = _operand_sql(operand, columns)
            if lookup.ignore_case:
                key = f"lower({key})"
            pairs.append(f"select {key} as k, {value} as v, {rank} as _rank, _delivery, _file, "
                          f"_line from {table} where {' and '.join(conditions)}")
        order = "_delivery desc, _file, _line" if lookup.deliveries == "all" else "_file, _line"
        return (
            f"(select k, v from (select k, v, row_number() over (partition by k order by "
            f"_rank, {order}) as _rn from ({' union all '.join(pairs)})) "
            "where _rn = 1 and k is not null)"
        )


def _falls_through(policy: str, spec: ValueSpec) -> bool:
    """An unmatched or unmapped value left empty for the column's default to decide is not a
    fix of its own: the default's use is counted (and its errors reported) instead."""
    return policy == "null" and spec.default is not None


def _descends(chain: _Chain, ancestor: _Chain) -> bool:
    while chain.parent is not None:
        chain = chain.parent
        if chain is ancestor:
            return True
    return False


def _operand_sql(operand: Operand, columns: dict[str, str]) -> str:
    if operand.kind == "column":
        return quote_ident(columns[operand.text.lower()])
    return text_sql(operand.text)


def _case(subject: str, pairs: tuple[tuple[str, str], ...], otherwise: str) -> str:
    """A vocabulary as SQL; a value of "" maps deliberately to no value."""
    whens = " ".join(f"when {sql_literal(k)} then {sql_literal(v) if v else 'null'}"
                     for k, v in pairs)
    return f"case {subject} {whens} else {otherwise} end"


def _stage(name: str, previous: str, selects: list[str]) -> str:
    return f"{name} as (select *{_comma(selects)} from {previous})"


def _comma(items: list[str]) -> str:
    return "".join(f", {item}" for item in items)


def _strptime(value: str, fmt: str) -> str:
    """One format: naive results as local wall time text, zoned ones as exact UTC (`Z`)."""
    parsed = f"try_strptime({value}, {sql_literal(fmt)})"
    fraction = ".%f" if any(code in fmt for code in ("%f", "%g", "%n")) else ""
    if "%z" in fmt or "%Z" in fmt:
        return (f"strftime(timezone('UTC', {parsed}), "
                f"{sql_literal('%Y-%m-%dT%H:%M:%S' + fraction + 'Z')})")
    return f"strftime({parsed}, {sql_literal(OUTPUT_TIMESTAMP + fraction)})"


def _number_sql(value: str, decimal: str, thousands: str | None) -> str:
    """`1.234,50` → `1234.50` when the text is a number in the declared notation; any other
    text passes on unchanged (the canonical loader quarantines it if it is no number)."""
    escape = {".": "\\.", ",": ",", " ": " ", "'": "'"}
    point = escape[decimal]
    whole = f"(\\d+|\\d{{1,3}}({escape[thousands]}\\d{{3}})+)" if thousands else "\\d+"
    pattern = f"[+-]?({whole}({point}\\d*)?|{point}\\d+)"
    converted = value
    if thousands:
        converted = f"replace({converted}, {sql_literal(thousands)}, '')"
    if decimal != ".":
        converted = f"replace({converted}, {sql_literal(decimal)}, '.')"
    return f"case when regexp_full_match({value}, {sql_literal(pattern)}) then {converted} " \
           f"else {value} end"
