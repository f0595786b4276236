"""Row-by-row comparison of a mart with an oracle's table: shared by the oracle tests.

Values are brought to one comparable form per column kind (UTC instants, ISO dates, floats
with a tolerance, ints, bools, text; every empty value → None), rows are keyed, and the
result says which keys differ, which are missing from the mart and which are only in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

Row = dict[str, Any]


@dataclass(frozen=True)
class ColumnKinds:
    """How to compare each column; floats within `rel_tol`/`abs_tol` (math.isclose)."""

    rel_tol: float
    abs_tol: float
    timestamps: frozenset[str] = field(default_factory=frozenset)
    dates: frozenset[str] = field(default_factory=frozenset)
    floats: frozenset[str] = field(default_factory=frozenset)
    ints: frozenset[str] = field(default_factory=frozenset)
    bools: frozenset[str] = field(default_factory=frozenset)

    def normal(self, column: str, value: Any) -> Any:
        if value is None or value is pd.NaT or value is pd.NA:
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        if column in self.timestamps:
            stamp = pd.Timestamp(value)
            if stamp.tzinfo is None:
                raise AssertionError(f"{column}: a naive timestamp {value!r} is not an instant")
            return stamp.tz_convert("UTC")
        if column in self.dates:
            return pd.Timestamp(value).date().isoformat()
        if column in self.floats:
            return float(value)
        if column in self.ints:
            return int(value)
        if column in self.bools:
            return bool(value)
        return str(value)

    def same(self, column: str, left: Any, right: Any) -> bool:
        if left is None or right is None:
            return left is None and right is None
        if column in self.floats:
            return math.isclose(left, right, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        return left == right

    def rows(
        self, side: str, frame: pd.DataFrame, key: Sequence[str], columns: Sequence[str]
    ) -> dict[tuple[Any, ...], Row]:
        rows: dict[tuple[Any, ...], Row] = {}
        duplicates: list[tuple[Any, ...]] = []
        for record in frame[list(columns)].to_dict("records"):
            normal = {c: self.normal(c, record[c]) for c in columns}
            k = tuple(normal[c] for c in key)
            if k in rows:
                duplicates.append(k)
            rows[k] = normal
        assert not duplicates, f"{side}: {len(duplicates)} duplicate keys, e.g. {duplicates[:5]}"
        return rows


@dataclass(frozen=True)
class Differences:
    mismatching: list[str]  # keys on both sides whose values differ
    missing: list[str]  # keys only the oracle has
    extra: list[str]  # keys only the mart has

    def __bool__(self) -> bool:
        return bool(self.mismatching or self.missing or self.extra)


def compare(
    kinds: ColumnKinds,
    actual: pd.DataFrame,
    expected: pd.DataFrame,
    key: Sequence[str],
    columns: Sequence[str],
    skip: Callable[[Row], set[str]] | None = None,
) -> Differences:
    """The mart (`actual`) against the oracle (`expected`), one line per key.

    `skip(expected_row)` names columns not to compare for that row (it sees all of the
    oracle's columns, not only the compared ones).
    """
    got = kinds.rows("mart", actual, key, columns)
    want = kinds.rows("oracle", expected, key, columns)
    want_full = {
        tuple(kinds.normal(c, r[c]) for c in key): r for r in expected.to_dict("records")
    }
    mismatching: list[str] = []
    for k in sorted(set(got) & set(want), key=str):
        skipped = skip(want_full[k]) if skip else set()
        diffs = [
            f"{c}: mart={got[k][c]!r} oracle={want[k][c]!r}"
            for c in columns
            if c not in skipped and not kinds.same(c, got[k][c], want[k][c])
        ]
        if diffs:
            mismatching.append(f"{k}: " + "; ".join(diffs))
    missing = [f"{k}: oracle={want[k]}" for k in sorted(set(want) - set(got), key=str)]
    extra = [f"{k}: mart={got[k]}" for k in sorted(set(got) - set(want), key=str)]
    return Differences(mismatching, missing, extra)


# --- one mart on two engines (tests/test_engine_parity.py, tests/test_spark_job.py) -------

# The engine parity tolerance: 1e-9 relative for amounts and ratios. Sums of EUR amounts added
# in another order may differ in the last bits, so a difference (e.g. a growth numerator) that
# is 0 on one engine may be ~1e-12 on the other: 1e-9 absolute too.
ENGINE_REL_TOLERANCE = 1e-9
ENGINE_ABS_TOLERANCE = 1e-9

Schema = list[tuple[str, str]]


def relation_frame(relation: Any) -> tuple[pd.DataFrame, Schema]:
    """A DuckDB relation's rows and its (column, type) schema, for `kinds_from_schema`."""
    return relation.df(), list(zip(relation.columns, map(str, relation.types), strict=True))


def kinds_from_schema(schema: Sequence[tuple[str, str]]) -> ColumnKinds:
    """Column kinds read off a DuckDB schema, with the engine parity tolerance."""

    def named(*prefixes: str) -> frozenset[str]:
        return frozenset(c for c, t in schema if t.upper().startswith(prefixes))

    return ColumnKinds(
        rel_tol=ENGINE_REL_TOLERANCE,
        abs_tol=ENGINE_ABS_TOLERANCE,
        timestamps=named("TIMESTAMP WITH TIME ZONE"),
        dates=named("DATE"),
        floats=named("DOUBLE", "FLOAT", "DECIMAL"),
        ints=named("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT"),
        bools=named("BOOLEAN"),
    )


# The published marts and their keys (the contract's), compared between the engines.
MART_KEYS: dict[str, tuple[str, ...]] = {
    "dim_reps": ("user_id",),
    "dim_leads": ("contact_id",),
    "fct_funnel_stages": ("contact_id", "stage"),
    "fct_activities": ("activity_id",),
    "fct_deals": ("deal_id",),
    "fct_marketing_event_judgements": ("event_id",),
    "label_consistency": ("labeller",),
    "kpi_registry": ("kpi_id",),
    "kpi_values": ("kpi_id", "scope", "scope_id", "period_start"),
    "kpi_baselines": ("kpi_id", "scope", "scope_id"),
    "kpi_scorecard": ("kpi_id", "scope", "scope_id", "period_start"),
}
# An md5 of each engine's own rendering of a contact's input rows (macro row_fingerprint):
# compared for presence and form, not value.
ENGINE_SPECIFIC: dict[str, set[str]] = {
    "dim_leads": {"inputs_fingerprint"},
    "int_leads__inputs": {"inputs_fingerprint"},
}
OCCURRENCE = "_occurrence"
SHOWN = 10


def _keyed_by_every_column(
    frame: pd.DataFrame, schema: Schema, ignored: set[str]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """For a table without a declared key: every column that compares exactly (not floats,
    not `ignored`) is the key, and equal rows are told apart by their occurrence (rows sorted
    by the float columns too, so both engines number them alike)."""
    kinds = kinds_from_schema(schema)
    key = [c for c, _ in schema if c not in kinds.floats and c not in ignored]
    floats = [c for c, _ in schema if c in kinds.floats]
    # sorted and grouped on the values' text (lists and None sort and hash as text)
    text = pd.DataFrame({c: frame[c].map(repr) for c in key}, index=frame.index)
    order = pd.concat([text, frame[floats]], axis=1).sort_values([*key, *floats]).index
    ranked = frame.loc[order].copy()
    ranked[OCCURRENCE] = (
        text.loc[order].groupby(key).cumcount() if key else range(len(ranked))
    )
    return ranked.reset_index(drop=True), (*key, OCCURRENCE)


def engine_differences(
    table: str,
    on_duckdb: tuple[pd.DataFrame, Schema],
    on_spark: tuple[pd.DataFrame, Schema],
    key: Sequence[str] | None = None,
) -> str | None:
    """Why `table` differs between the engines (None when it does not): another schema, row
    count, rows on one side only, or values beyond the engine tolerance on a key; the columns
    of ENGINE_SPECIFIC only for presence and form (32 hex digits). Without a `key`, rows are
    compared as a multiset (`_keyed_by_every_column`)."""
    (expected, duckdb_schema), (actual, spark_schema) = on_duckdb, on_spark
    if spark_schema != duckdb_schema:
        return f"{table}: schema on Spark {spark_schema} != on DuckDB {duckdb_schema}"
    if len(actual) != len(expected):
        return f"{table}: {len(actual)} rows on Spark, {len(expected)} on DuckDB"
    engine_specific = ENGINE_SPECIFIC.get(table, set())
    columns = [c for c, _ in duckdb_schema if c not in engine_specific]
    if key is None:
        expected, key = _keyed_by_every_column(expected, duckdb_schema, engine_specific)
        actual, key = _keyed_by_every_column(actual, duckdb_schema, engine_specific)
        columns.append(OCCURRENCE)
        kinds = kinds_from_schema([*duckdb_schema, (OCCURRENCE, "BIGINT")])
    else:
        kinds = kinds_from_schema(duckdb_schema)
    differences = compare(kinds, actual, expected, key, columns)
    if differences:
        return (
            f"{table}: {len(differences.mismatching)} rows differ, {len(differences.missing)} "
            f"only on DuckDB, {len(differences.extra)} only on Spark\n"
            + "\n".join(differences.mismatching[:SHOWN] + differences.missing[:SHOWN]
                        + differences.extra[:SHOWN])
        )
    for column in engine_specific:
        on_both = expected[[*key, column]].merge(
            actual[[*key, column]], on=list(key), suffixes=("_duckdb", "_spark")
        )
        if len(on_both) != len(expected):
            return f"{table}.{column}: keys do not pair up"
        if not (on_both[f"{column}_duckdb"].notna() == on_both[f"{column}_spark"].notna()).all():
            return f"{table}.{column}: present on one engine, missing on the other"
        if not on_both[f"{column}_spark"].dropna().str.fullmatch(r"[0-9a-f]{32}").all():
            return f"{table}.{column}: not an md5 on Spark"
    return None
