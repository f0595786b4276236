"""The published KPI marts agree, row by row, with an independent implementation of the rules.

`tests/kpi_oracle.py` computes `kpi_values`, `kpi_baselines` and `kpi_scorecard` in pandas
from the published fact marts (checked by `test_marts_match_definitions.py`), the build's
`as_of` and the loaded target overrides; the job builds them with dbt. Two scenarios on the
same generated sample (scale 0.3, seed 5), both with a few manager overrides (a low one that
makes the ladder ratchet, a high one, a 0 that leaves attainment empty): the default settings,
and `kpi_program_start` set in the middle of the history (on a Wednesday whose ISO week starts
in the previous month, so the weekly and the monthly program periods differ).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from kpi_oracle import KpiOracle, kpi_oracle_from_warehouse
from mart_comparison import ColumnKinds, compare

from pipelines.sample import generate_sample

pytestmark = pytest.mark.slow

SAMPLE_END = date(2026, 11, 26)
SCALE, SEED = 0.3, 5
PROGRAM_START = date(2025, 7, 2)  # a Wednesday; its ISO week starts on Monday 2025-06-30
FLOAT_REL_TOLERANCE = 1e-9
# Sums of EUR amounts added in another order may differ in the last bits; a difference of
# current − previous that is 0 on one side may then be ~1e-12 on the other.
FLOAT_ABS_TOLERANCE = 1e-9
SHOWN = 10

KEYS: dict[str, tuple[str, ...]] = {
    "kpi_values": ("kpi_id", "scope", "scope_id", "period_start"),
    "kpi_baselines": ("kpi_id", "scope", "scope_id"),
    "kpi_scorecard": ("kpi_id", "scope", "scope_id", "period_start"),
}
DATE_COLUMNS = {"period_start", "baseline_from", "baseline_to"}
FLOAT_COLUMNS = {
    "value", "numerator", "denominator", "baseline_value", "actual", "target", "attainment",
}
BOOL_COLUMNS = {"is_complete"}
INT_COLUMNS = {"periods_used"}


def _overrides(rep: str) -> list[dict[str, Any]]:
    """Valid overrides in the middle of the data (after PROGRAM_START as well)."""
    return [
        # Low: met week after week, so the ladder ratchets from it.
        {"kpi_id": "cold_emails", "scope": "rep", "scope_id": rep,
         "period_start": "2025-09-01", "target": 1},
        # High: a miss; later months ladder from it.
        {"kpi_id": "new_revenue", "scope": "team", "scope_id": "Team Zuid",
         "period_start": "2026-03-01", "target": 250000},
        # Zero: attainment is empty, and a 0 ladders to 0.
        {"kpi_id": "sales_conversations", "scope": "company", "scope_id": "all",
         "period_start": "2026-02-02", "target": 0},
    ]


@dataclass(frozen=True)
class Scenario:
    name: str
    warehouse: Path
    oracle: KpiOracle
    overrides: list[dict[str, Any]]
    program_start: date | None

    def mart(self, table: str, columns: Sequence[str]) -> pd.DataFrame:
        con = duckdb.connect()
        try:
            con.execute("set TimeZone = 'UTC'")
            con.execute(f"attach '{self.warehouse / 'marts.duckdb'}' as pub (read_only)")
            # The file's catalog is also called `marts`: qualify fully.
            return con.execute(f"select {', '.join(columns)} from pub.marts.{table}").df()
        finally:
            con.close()


def _a_rep(extracts: Path) -> str:
    """An active account executive of Team Noord, from the first (full) delivery's users."""
    first = sorted(p for p in extracts.iterdir() if p.is_dir())[0]
    with (first / "users.csv").open(newline="", encoding="utf-8-sig") as handle:
        users = list(csv.DictReader(handle))
    candidates = sorted(
        u["user_id"] for u in users
        if u["role"] == "ae" and u["team"] == "Team Noord" and u["is_active"].lower() == "true"
    )
    assert candidates, "the sample has no active account executive in Team Noord"
    return candidates[0]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The generated extracts (the job only reads them) and an overrides file."""
    root = tmp_path_factory.mktemp("kpi_oracle")
    extracts = root / "extracts"
    generate_sample(extracts, scale=SCALE, seed=SEED, end=SAMPLE_END)
    overrides = _overrides(_a_rep(extracts))
    path = root / "overrides.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["kpi_id", "scope", "scope_id", "period_start", "target"]
        )
        writer.writeheader()
        writer.writerows(overrides)
    return extracts, path


def _scenario(
    name: str, root: Path, sample: tuple[Path, Path], program_start: date | None
) -> Scenario:
    from pipelines.job_runner import run_nightly_job
    from pipelines.settings import Settings

    extracts, overrides_file = sample
    warehouse = root / "warehouse"
    outcome = run_nightly_job(
        Settings(
            extracts_dir=extracts,
            warehouse_dir=warehouse,
            target_overrides_file=overrides_file,
            kpi_program_start=program_start,
            write_site=False,
        ),
        log_level="WARNING",
    )
    assert outcome.success, f"{name}: the nightly job failed: {outcome.failures}"
    with overrides_file.open(newline="", encoding="utf-8") as handle:
        overrides = list(csv.DictReader(handle))
    oracle = kpi_oracle_from_warehouse(warehouse, program_start)
    return Scenario(name, warehouse, oracle, overrides, program_start)


@pytest.fixture(scope="module")
def default_run(
    tmp_path_factory: pytest.TempPathFactory, sample: tuple[Path, Path]
) -> Iterator[Scenario]:
    yield _scenario("default settings", tmp_path_factory.mktemp("kpi_default"), sample, None)


@pytest.fixture(scope="module")
def program_run(
    tmp_path_factory: pytest.TempPathFactory, sample: tuple[Path, Path]
) -> Iterator[Scenario]:
    yield _scenario(
        f"kpi_program_start={PROGRAM_START}",
        tmp_path_factory.mktemp("kpi_program"),
        sample,
        PROGRAM_START,
    )


# --------------------------------------------------------------------------------------------
# Comparison


KINDS = ColumnKinds(
    rel_tol=FLOAT_REL_TOLERANCE,
    abs_tol=FLOAT_ABS_TOLERANCE,
    dates=frozenset(DATE_COLUMNS),
    floats=frozenset(FLOAT_COLUMNS),
    ints=frozenset(INT_COLUMNS),
    bools=frozenset(BOOL_COLUMNS),
)


def assert_same(scenario: Scenario, table: str) -> None:
    expected: pd.DataFrame = getattr(scenario.oracle, table)
    actual = scenario.mart(table, list(expected.columns))
    differences = compare(KINDS, actual, expected, KEYS[table], list(expected.columns))
    if not differences:
        return
    parts = [
        f"{scenario.name} (as_of {scenario.oracle.as_of}): marts.{table} disagrees with the "
        f"definitions ({len(actual)} mart rows, {len(expected)} oracle rows)"
    ]
    for title, lines in (
        ("keys whose values differ", differences.mismatching),
        ("keys missing from the mart", differences.missing),
        ("keys only in the mart", differences.extra),
    ):
        if lines:
            shown = "\n    ".join(lines[:SHOWN])
            parts.append(f"  {len(lines)} {title}; first {min(SHOWN, len(lines))}:\n    {shown}")
    pytest.fail("\n".join(parts), pytrace=False)


def assert_settings_reach_the_run(scenario: Scenario) -> None:
    """The run used the settings it was given: the overrides file was loaded, the program
    start recorded; and the oracle's scorecard applies each override (so the scenario reaches
    what it means to test)."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{scenario.warehouse / 'warehouse.duckdb'}' as wh (read_only)")
        con.execute(f"attach '{scenario.warehouse / 'marts.duckdb'}' as pub (read_only)")
        loaded = con.execute(
            "select kpi_id, scope, scope_id, cast(period_start as varchar), target"
            " from wh.raw.target_overrides order by all"
        ).fetchall()
        recorded = con.execute(
            "select settings from pub.marts.runs order by published_at desc limit 1"
        ).fetchone()[0]
    finally:
        con.close()
    given = sorted(
        (o["kpi_id"], o["scope"], o["scope_id"], o["period_start"], float(o["target"]))
        for o in scenario.overrides
    )
    program_start = json.loads(recorded).get("kpi_program_start")
    expected_start = scenario.program_start.isoformat() if scenario.program_start else None
    problems = []
    if sorted(loaded) != given:
        problems.append(
            f"raw.target_overrides holds {loaded}, not the {len(given)} override(s) of "
            f"Settings.target_overrides_file"
        )
    if program_start != expected_start:
        problems.append(
            f"marts.runs records kpi_program_start={program_start!r}, not the "
            f"{expected_start!r} of Settings.kpi_program_start"
        )
    assert not problems, (
        f"{scenario.name}: run_nightly_job(Settings(...)) did not use its settings:\n  "
        + "\n  ".join(problems)
    )
    card = scenario.oracle.kpi_scorecard
    for override in scenario.overrides:
        row = card[
            (card["kpi_id"] == override["kpi_id"])
            & (card["scope"] == override["scope"])
            & (card["scope_id"] == override["scope_id"])
            & (card["period_start"] == date.fromisoformat(override["period_start"]))
        ]
        assert list(row["target_source"]) == ["override"], f"override not applied: {override}"
    assert (card["target_source"] == "derived").any()


# --------------------------------------------------------------------------------------------
# Tests: default settings


def test_kpi_values(default_run: Scenario) -> None:
    assert_same(default_run, "kpi_values")


def test_kpi_baselines(default_run: Scenario) -> None:
    assert_same(default_run, "kpi_baselines")


def test_settings_reach_the_run(default_run: Scenario) -> None:
    assert_settings_reach_the_run(default_run)


def test_kpi_scorecard(default_run: Scenario) -> None:
    assert_same(default_run, "kpi_scorecard")


# --------------------------------------------------------------------------------------------
# Tests: kpi_program_start in the middle of the history


def test_kpi_values_with_program_start(program_run: Scenario) -> None:
    assert_same(program_run, "kpi_values")


def test_kpi_baselines_with_program_start(program_run: Scenario) -> None:
    baselines = program_run.oracle.kpi_baselines
    before = pd.to_datetime(baselines["baseline_to"]) < pd.Timestamp(PROGRAM_START)
    assert before.any() and (~before).any(), "the scenario should have both kinds of window"
    assert_same(program_run, "kpi_baselines")


def test_settings_reach_the_run_with_program_start(program_run: Scenario) -> None:
    assert_settings_reach_the_run(program_run)


def test_kpi_scorecard_with_program_start(program_run: Scenario) -> None:
    assert_same(program_run, "kpi_scorecard")
