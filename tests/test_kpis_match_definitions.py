"""The published KPI marts agree, row by row, with an independent implementation of the rules.

`tests/kpi_oracle.py` computes `kpi_values`, `kpi_baselines` and `kpi_scorecard` in pandas
from the published fact marts (checked by `test_marts_match_definitions.py`), the build's
`as_of` and the loaded target overrides; the job builds them with dbt. Two scenarios on the
same generated sample (scale 0.3, seed 5), both with a few manager overrides (a low one that
makes the ladder ratchet, a high one, a 0 that leaves attainment empty): the default settings,
and `kpi_program_start` set in the middle of the history (on a Wednesday whose ISO week starts
in the previous month, so the weekly and the monthly program periods differ).

The default-settings scenario also holds a hand-made delivery for the v1.1 rules on series
and facts (`V11_FILES`): marketing leads months before the extract's first activity and deal,
a won deal reassigned to a new hire whose first activity comes months after it closed, and a
sales lead whose sales-lead deal a marketer owns (one run for both: the row-by-row comparison
covers the whole sample with the v1.1 rows in it). Besides that comparison, its tests state
those rules directly on the published marts, so a failure names the rule.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from kpi_oracle import KPIS, KpiOracle, kpi_oracle_from_warehouse, period_of
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
            return con.execute(f"select {', '.join(columns)} from pub.{table}").df()
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
def default_run(v11_run: Scenario) -> Scenario:
    """The default settings on the sample plus the v1.1 delivery: one run for both (the
    marts must match the oracle on the whole sample, with the v1.1 series and facts in it)."""
    return v11_run


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
# A delivery after the sample's three, with hand-made rows (ids `V11-…`). The sample's first
# activity is on 2024-11-04 and its first deal created on 2024-11-26; every row below is well
# before the sample's end, so the derived as_of does not move.
# - (a) V11-C1 and V11-C2 are fit (business domain, live company) and show intent in May and
#   July 2024 — months before the first activity and deal of the whole extract;
# - (b) V11-D1, a won new_business deal with an amount, created in January and closed in
#   February 2025, is now owned by V11-U1, an account executive hired later: V11-U1 owns no
#   other deal and its first activity is in September 2025 (with activities, its series starts
#   there, not at the deal); its sales lead V11-C3 (January 2025) is credited to V11-U1 too;
# - (c) V11-C5's sales-lead deal V11-D2 (April 2026) is owned by V11-U2, a marketer.

V11_DELIVERY = "2026-11-27T0200"
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
T_V11 = "2024-03-01T09:00:00Z"
V11_FILES: dict[str, str] = {
    "users": """
user_id,full_name,email,role,team,is_active,updated_at
V11-U1,Nieuwe Collega,nieuwe.collega@kompassoftware.nl,ae,Team Noord,true,2025-09-01T08:00:00Z
V11-U2,Veld Marketeer,veld.marketeer@kompassoftware.nl,marketing,Marketing,true,2024-03-01T08:00:00Z
""",
    "companies": f"""
company_id,name,domain,created_at,updated_at,is_deleted
V11-ORG1,Vroeg Verzoek B.V.,v11-early.example,{T_V11},{T_V11},false
V11-ORG2,Overgedragen Klant B.V.,v11-customer.example,{T_V11},{T_V11},false
V11-ORG3,Koude Prospect B.V.,v11-prospect.example,{T_V11},{T_V11},false
V11-ORG4,Inkomend Verzoek B.V.,v11-inbound.example,{T_V11},{T_V11},false
""",
    "contacts": f"""
contact_id,company_id,email,first_name,last_name,owner_user_id,created_at,updated_at,is_deleted
V11-C1,V11-ORG1,anna@v11-early.example,Anna,Vroeg,V11-U2,{T_V11},{T_V11},false
V11-C2,V11-ORG1,bram@v11-early.example,Bram,Vroeg,V11-U2,{T_V11},{T_V11},false
V11-C3,V11-ORG2,carla@v11-customer.example,Carla,Klant,V11-U1,{T_V11},2025-09-01T08:00:00Z,false
V11-C4,V11-ORG3,dirk@v11-prospect.example,Dirk,Koud,V11-U1,{T_V11},{T_V11},false
V11-C5,V11-ORG4,eva@v11-inbound.example,Eva,Inkomend,V11-U2,{T_V11},{T_V11},false
""",
    "marketing_events": """
event_id,contact_id,event_type,occurred_at,campaign,channel,is_deleted
V11-E1,V11-C1,demo_request,2024-05-14T09:30:00Z,Demo,website,false
V11-E2,V11-C2,newsletter_signup,2024-06-03T10:00:00Z,Nieuwsbrief,email,false
V11-E3,V11-C2,demo_request,2024-07-03T10:00:00Z,Demo,website,false
""",
    "deals": """
deal_id,contact_id,company_id,owner_user_id,deal_type,stage,amount,currency,created_at,closed_at,updated_at,is_deleted
V11-D1,V11-C3,V11-ORG2,V11-U1,new_business,closed_won,18000,EUR,2025-01-13T10:00:00Z,2025-02-18T14:00:00Z,2025-09-01T08:00:00Z,false
V11-D2,V11-C5,V11-ORG4,V11-U2,new_business,discovery,9000,EUR,2026-04-08T09:00:00Z,,2026-04-08T09:00:00Z,false
""",
    "activities": """
activity_id,activity_type,direction,owner_user_id,contact_id,deal_id,occurred_at,duration_seconds,outcome,updated_at,is_deleted
V11-A1,email,outbound,V11-U1,V11-C4,,2025-09-15T08:00:00Z,,sent,2025-09-15T08:00:00Z,false
V11-A2,call,outbound,V11-U1,V11-C4,,2025-09-16T09:00:00Z,420,connected,2025-09-16T09:10:00Z,false
V11-A3,meeting,outbound,V11-U1,V11-C3,,2025-10-02T13:00:00Z,3600,held,2025-10-02T14:00:00Z,false
V11-A4,email,outbound,V11-U1,V11-C4,,2026-10-05T08:00:00Z,,sent,2026-10-05T08:00:00Z,false
""",
}


def _write_v11_delivery(extracts: Path) -> None:
    folder = extracts / V11_DELIVERY
    folder.mkdir(parents=True, exist_ok=True)
    for entity, text in V11_FILES.items():
        (folder / f"{entity}.csv").write_text(text.lstrip("\n"), encoding="utf-8")


@pytest.fixture(scope="module")
def v11_run(
    tmp_path_factory: pytest.TempPathFactory, sample: tuple[Path, Path]
) -> Iterator[Scenario]:
    """A copy of the sample (the program-start scenario reads the original) plus the v1.1
    delivery, with the same overrides and default settings."""
    root = tmp_path_factory.mktemp("kpi_v11")
    extracts = root / "extracts"
    shutil.copytree(sample[0], extracts)
    _write_v11_delivery(extracts)
    yield _scenario("v1.1 series and facts", root, (extracts, sample[1]), None)


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
