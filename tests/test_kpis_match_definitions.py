"""The published KPI marts agree, row by row, with an independent implementation of the rules.

`tests/kpi_oracle.py` computes `kpi_values`, `kpi_baselines` and `kpi_scorecard` in pandas
from the published fact marts (checked by `test_marts_match_definitions.py`), the build's
`as_of` and the loaded target overrides; the job builds them with dbt. Two scenarios, both
with a few manager overrides (a low one that makes the ladder ratchet, a high one, a 0 that
leaves attainment empty): the default settings on the generated sample (scale 0.3, seed 5,
`as_of` derived from the data), and `kpi_program_start` set in the middle of the history (on a
Wednesday whose ISO week starts in the previous month, so the weekly and the monthly program
periods differ) on the smaller sample with `as_of` pinned. Each is one of the session's two
oracle runs (tests/oracle_runs.py), whose fact marts test_marts_match_definitions.py compares:
one run per distinct input and setting set for both files.

The default-settings scenario also holds a hand-made delivery for the v1.1 rules on series
and facts (`V11_FILES`): marketing leads months before the extract's first activity and deal,
a won deal reassigned to a new hire whose first activity comes months after it closed, and a
sales lead whose sales-lead deal a marketer owns (one run for both: the row-by-row comparison
covers the whole sample with the v1.1 rows in it). Besides that comparison, its tests state
those rules directly on the published marts, so a failure names the rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from kpi_oracle import KPIS, KpiOracle, kpi_oracle_from_warehouse, period_of
from mart_comparison import ColumnKinds, compare
from oracle_runs import PROGRAM_START, read_overrides

pytestmark = pytest.mark.slow

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
            return con.execute(f"select {', '.join(columns)} from pub.{table}").df()
        finally:
            con.close()


def _scenario(name: str, run: Path, program_start: date | None) -> Scenario:
    """One of the session's oracle runs (tests/oracle_runs.py) and the oracle on its marts."""
    warehouse = run / "warehouse"
    oracle = kpi_oracle_from_warehouse(warehouse, program_start)
    return Scenario(name, warehouse, oracle, read_overrides(run), program_start)


@pytest.fixture(scope="module")
def v11_run(derived_oracle_run: Path) -> Scenario:
    """The session's derived-as_of run: the sample with the overrides, the v1.1 delivery and
    the as_of probes (which test_marts_match_definitions.py compares too), default settings."""
    return _scenario("v1.1 series and facts", derived_oracle_run, None)


@pytest.fixture(scope="module")
def default_run(v11_run: Scenario) -> Scenario:
    """The default settings on the sample plus the v1.1 delivery: one run for both (the
    marts must match the oracle on the whole sample, with the v1.1 series and facts in it)."""
    return v11_run


@pytest.fixture(scope="module")
def program_run(pinned_oracle_run: Path) -> Scenario:
    """The session's pinned run: `kpi_program_start` in the middle of the history, on the
    smaller sample with the edge deliveries and `as_of` pinned (the fact marts of the same run
    are test_marts_match_definitions.py's pinned scenario)."""
    return _scenario(f"kpi_program_start={PROGRAM_START}", pinned_oracle_run, PROGRAM_START)


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
            "select settings from pub.runs order by published_at desc limit 1"
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
            f"runs records kpi_program_start={program_start!r}, not the "
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


# --------------------------------------------------------------------------------------------
# v1.1: series and facts
#
# The derived run's delivery of hand-made rows (ids `V11-…`; tests/oracle_runs.py `V11_FILES`
# says what each row is for). The tests below state its rules on the published marts.

V11_EARLY_LEAD_MONTH = date(2024, 5, 1)  # V11-E1, 2024-05-14
V11_NEW_HIRE = "V11-U1"
V11_MARKETER = "V11-U2"
V11_REASSIGNED_DEAL = "V11-D1"
V11_REASSIGNED_CLOSE_MONTH = date(2025, 2, 1)
V11_REASSIGNED_SALES_LEAD_MONTH = date(2025, 1, 1)
V11_NEW_HIRE_FIRST_MONTH = date(2025, 9, 1)
V11_NEW_HIRE_FIRST_WEEK = date(2025, 9, 15)  # V11-A1, Monday 2025-09-15
V11_MARKETER_SALES_LEAD = "V11-C5"
V11_MARKETER_SALES_LEAD_MONTH = date(2026, 4, 1)


COUNT_SUM_KPIS = tuple(k for k, (kind, _, _) in KPIS.items() if kind != "insight")


def _published(scenario: Scenario, sql: str) -> pd.DataFrame:
    """A query on the published marts (attached as `pub`), timestamps in UTC."""
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{scenario.warehouse / 'marts.duckdb'}' as pub (read_only)")
        return con.execute(sql).df()
    finally:
        con.close()


def _count_sum_values(scenario: Scenario) -> pd.DataFrame:
    """Published count/sum rows of kpi_values, `period_start` as a date."""
    ids = ", ".join(f"'{k}'" for k in COUNT_SUM_KPIS)
    values = _published(
        scenario,
        "select kpi_id, scope, scope_id, period_start, value from pub.kpi_values"
        f" where kpi_id in ({ids})",
    )
    values["period_start"] = pd.to_datetime(values["period_start"]).dt.date
    return values


def _month(instant: Any) -> date:
    """The local (Europe/Amsterdam) month of an instant from a mart (UTC when naive)."""
    stamp = pd.Timestamp(instant)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return period_of(stamp, "month").date()


def test_v11_scenario_reaches_its_cases(v11_run: Scenario) -> None:
    """The hand-made rows mean what the v1.1 tests rely on, read from the fact marts (which
    `test_marts_match_definitions.py` checks): a failure here is the scenario's, not a KPI's."""
    leads = _published(
        v11_run,
        "select contact_id, marketing_lead_at, sales_lead_at, sales_lead_deal_owner_user_id"
        " from pub.dim_leads where contact_id like 'V11-%'",
    ).set_index("contact_id")
    firsts = _published(
        v11_run,
        "select (select min(occurred_at) from pub.fct_activities) as first_activity,"
        " (select min(created_at) from pub.fct_deals) as first_deal,"
        " (select min(occurred_at) from pub.fct_activities"
        f"   where owner_user_id = '{V11_NEW_HIRE}') as new_hire_first_activity",
    ).iloc[0]
    deal = _published(
        v11_run,
        "select owner_user_id, created_at, closed_at, is_won, amount_eur from pub.fct_deals"
        f" where deal_id = '{V11_REASSIGNED_DEAL}'",
    )
    roles = _published(
        v11_run, "select user_id, role, is_sales_rep from pub.dim_reps"
    ).set_index("user_id")
    # (a) the marketing leads come months before the extract's first activity and deal.
    start = min(firsts["first_activity"], firsts["first_deal"])
    assert _month(leads.loc["V11-C1", "marketing_lead_at"]) == V11_EARLY_LEAD_MONTH
    assert pd.notna(leads.loc["V11-C2", "marketing_lead_at"])
    assert leads.loc["V11-C2", "marketing_lead_at"] < start - pd.Timedelta(days=90)
    # (b) the reassigned deal: won, with an amount, before the new hire's first activity.
    assert len(deal) == 1 and bool(deal["is_won"].iloc[0])
    assert deal["owner_user_id"].iloc[0] == V11_NEW_HIRE
    assert deal["amount_eur"].iloc[0] > 0
    assert _month(deal["closed_at"].iloc[0]) == V11_REASSIGNED_CLOSE_MONTH
    assert firsts["new_hire_first_activity"] > deal["closed_at"].iloc[0] + pd.Timedelta(days=90)
    assert _month(firsts["new_hire_first_activity"]) == V11_NEW_HIRE_FIRST_MONTH
    assert bool(roles.loc[V11_NEW_HIRE, "is_sales_rep"])
    assert _month(leads.loc["V11-C3", "sales_lead_at"]) == V11_REASSIGNED_SALES_LEAD_MONTH
    # (c) a sales lead whose sales-lead deal a non-sales user owns.
    lead = leads.loc[V11_MARKETER_SALES_LEAD]
    assert lead["sales_lead_deal_owner_user_id"] == V11_MARKETER
    assert _month(lead["sales_lead_at"]) == V11_MARKETER_SALES_LEAD_MONTH
    assert roles.loc[V11_MARKETER, "role"] == "marketing"
    assert not bool(roles.loc[V11_MARKETER, "is_sales_rep"])


def test_marketing_lead_before_first_activity_starts_the_company_series(
    v11_run: Scenario,
) -> None:
    """v1.1: a company KPI whose first counted fact precedes the first activity or deal starts
    its company series at that fact's period, so no marketing lead falls outside."""
    values = _count_sum_values(v11_run)
    series = values[
        (values["kpi_id"] == "new_marketing_leads") & (values["scope"] == "company")
    ].sort_values("period_start")
    marketing_leads = _published(
        v11_run,
        "select count(*) as n from pub.dim_leads where marketing_lead_at is not null",
    )["n"].iloc[0]
    months = list(series["period_start"])
    assert months, "no company new_marketing_leads series"
    assert months[0] == V11_EARLY_LEAD_MONTH, (
        f"the company new_marketing_leads series starts at {months[0]}, not at the month of "
        f"the first marketing lead ({V11_EARLY_LEAD_MONTH})"
    )
    expected_months = [
        (pd.Timestamp(V11_EARLY_LEAD_MONTH) + pd.DateOffset(months=i)).date()
        for i in range(len(months))
    ]
    assert months == expected_months, "the series has gaps or duplicate months"
    assert series["value"].iloc[0] >= 1
    assert series["value"].sum() == marketing_leads, (
        f"the company counts {series['value'].sum()} marketing leads, dim_leads has "
        f"{marketing_leads}"
    )


def test_other_company_kpis_keep_the_activity_or_deal_start(v11_run: Scenario) -> None:
    """v1.1: only a KPI with an earlier first fact starts earlier; the others start at the
    period of the first live activity or deal `created_at` (baselines not padded with empty
    pre-history)."""
    firsts = _published(
        v11_run,
        "select least((select min(occurred_at) from pub.fct_activities),"
        " (select min(created_at) from pub.fct_deals)) as first",
    )
    first = pd.Timestamp(firsts["first"].iloc[0]).tz_convert("UTC")
    values = _count_sum_values(v11_run)
    company = values[values["scope"] == "company"]
    starts = company.groupby("kpi_id")["period_start"].min()
    wrong = {
        kpi_id: (starts.get(kpi_id), period_of(first, KPIS[kpi_id][1]).date())
        for kpi_id in COUNT_SUM_KPIS
        if kpi_id != "new_marketing_leads"
        and starts.get(kpi_id) != period_of(first, KPIS[kpi_id][1]).date()
    }
    assert not wrong, f"company series start (published, expected): {wrong}"


def test_fact_before_a_reps_series_counts_for_the_company_only(v11_run: Scenario) -> None:
    """v1.1: a won deal reassigned to a new hire, closed before the hire's first activity,
    counts for the company's new revenue, not for the hire's row (nor, so, its team's); the
    same for the sales lead of that deal."""
    values = _count_sum_values(v11_run)
    rep = values[(values["scope"] == "rep") & (values["scope_id"] == V11_NEW_HIRE)]
    company = values[values["scope"] == "company"]
    for kpi_id in COUNT_SUM_KPIS:
        if "rep" not in KPIS[kpi_id][2]:
            continue
        starts = rep[rep["kpi_id"] == kpi_id]["period_start"]
        expected = (
            V11_NEW_HIRE_FIRST_WEEK if KPIS[kpi_id][1] == "week" else V11_NEW_HIRE_FIRST_MONTH
        )
        assert len(starts) and starts.min() == expected, (
            f"the new hire's {kpi_id} series starts at {starts.min() if len(starts) else None},"
            f" not at its first activity's period {expected}"
        )
    for kpi_id, month in (
        ("new_revenue", V11_REASSIGNED_CLOSE_MONTH),
        ("new_sales_leads", V11_REASSIGNED_SALES_LEAD_MONTH),
    ):
        credited = rep[(rep["kpi_id"] == kpi_id) & (rep["period_start"] == month)]
        assert credited["value"].fillna(0).sum() == 0, (
            f"the new hire's row has {kpi_id} in {month}, before its series starts"
        )
    deal = _published(
        v11_run,
        f"select amount_eur from pub.fct_deals where deal_id = '{V11_REASSIGNED_DEAL}'",
    )["amount_eur"].iloc[0]
    won = _published(
        v11_run,
        "select closed_at, amount_eur from pub.fct_deals"
        " where deal_type = 'new_business' and is_won and closed_at is not null",
    )
    in_month = won[won["closed_at"].map(_month) == V11_REASSIGNED_CLOSE_MONTH]
    revenue = company[
        (company["kpi_id"] == "new_revenue")
        & (company["period_start"] == V11_REASSIGNED_CLOSE_MONTH)
    ]["value"]
    assert len(revenue) == 1, f"no company new_revenue row for {V11_REASSIGNED_CLOSE_MONTH}"
    assert revenue.iloc[0] >= deal
    # The hire's team counts exactly what its reps' rows count that month, so not the deal.
    reps = _published(v11_run, "select user_id, team from pub.dim_reps")
    team = reps.set_index("user_id").loc[V11_NEW_HIRE, "team"]
    mates = set(reps[reps["team"] == team]["user_id"])
    month_rows = values[
        (values["kpi_id"] == "new_revenue")
        & (values["period_start"] == V11_REASSIGNED_CLOSE_MONTH)
    ]
    team_value = month_rows[
        (month_rows["scope"] == "team") & (month_rows["scope_id"] == team)
    ]["value"].sum()
    mates_value = month_rows[
        (month_rows["scope"] == "rep") & month_rows["scope_id"].isin(mates)
    ]["value"].sum()
    assert team_value == pytest.approx(mates_value, rel=1e-9, abs=FLOAT_ABS_TOLERANCE), (
        f"{team}'s new revenue in {V11_REASSIGNED_CLOSE_MONTH} is {team_value}, its reps' rows "
        f"add up to {mates_value}: the reassigned deal counts for the team, not for the rep"
    )
    assert revenue.iloc[0] == pytest.approx(in_month["amount_eur"].fillna(0).sum(), rel=1e-9), (
        "the company's new revenue of the month is not every won new_business deal closed in it"
    )


def test_sales_lead_owned_by_a_non_sales_user_counts_for_the_company_only(
    v11_run: Scenario,
) -> None:
    """v1.1: a fact whose credited owner is not a sales rep counts for the company and for no
    team (v1 gave it to `Unassigned`); a team has a series only through its current sales
    reps."""
    values = _count_sum_values(v11_run)
    month = V11_MARKETER_SALES_LEAD_MONTH
    leads = _published(
        v11_run,
        "select l.sales_lead_at, coalesce(r.is_sales_rep, false) as by_rep"
        " from pub.dim_leads l left join pub.dim_reps r"
        "   on r.user_id = l.sales_lead_deal_owner_user_id"
        " where l.sales_lead_at is not null",
    )
    in_month = leads[leads["sales_lead_at"].map(_month) == month]
    not_by_rep = int((~in_month["by_rep"].astype(bool)).sum())
    assert not_by_rep >= 1
    sales_leads = values[
        (values["kpi_id"] == "new_sales_leads") & (values["period_start"] == month)
    ]
    company = sales_leads[sales_leads["scope"] == "company"]["value"].sum()
    teams = sales_leads[sales_leads["scope"] == "team"]["value"].sum()
    assert company == len(in_month), "the company does not count every sales lead of the month"
    assert teams <= company - not_by_rep, (
        f"the teams count {teams} of the month's {company} sales leads, but {not_by_rep} of "
        "them were accepted by a non-sales user"
    )
    reps = _published(v11_run, "select user_id, team, is_sales_rep from pub.dim_reps")
    rep_teams = set(reps[reps["is_sales_rep"].astype(bool)]["team"].fillna("Unassigned"))
    stray = set(values[values["scope"] == "team"]["scope_id"]) - rep_teams
    assert not stray, f"teams with count/sum rows but no current sales rep: {sorted(stray)}"


def test_team_value_is_the_sum_of_its_reps_values(v11_run: Scenario) -> None:
    """v1.1: for every count/sum KPI and period, a team's value is the sum of its current
    reps' values (reps by their current team; a rep without a row adds nothing)."""
    values = _count_sum_values(v11_run)
    reps = _published(v11_run, "select user_id, team from pub.dim_reps")
    team_of = dict(zip(reps["user_id"], reps["team"].fillna("Unassigned"), strict=True))
    rep_rows = values[values["scope"] == "rep"].copy()
    rep_rows["team"] = rep_rows["scope_id"].map(team_of)
    summed = rep_rows.groupby(["kpi_id", "team", "period_start"])["value"].sum()
    teams = values[values["scope"] == "team"].set_index(["kpi_id", "scope_id", "period_start"])[
        "value"
    ]
    teams.index = teams.index.set_names(["kpi_id", "team", "period_start"])
    both = pd.concat({"team": teams, "reps": summed}, axis=1)
    no_team_row = both[both["team"].isna()]
    both = both.fillna(0.0)
    off = both[
        [
            not math.isclose(t, r, rel_tol=FLOAT_REL_TOLERANCE, abs_tol=FLOAT_ABS_TOLERANCE)
            for t, r in zip(both["team"], both["reps"], strict=True)
        ]
    ]
    assert no_team_row.empty, (
        f"{len(no_team_row)} rep values without a team row; first: "
        f"{no_team_row.head(SHOWN).to_dict('index')}"
    )
    assert off.empty, (
        f"{len(off)} team values differ from the sum of their reps'; first: "
        f"{off.head(SHOWN).to_dict('index')}"
    )
