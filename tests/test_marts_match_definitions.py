"""The published marts agree, row by row, with an independent implementation of the definitions.

`tests/oracle.py` computes `dim_leads`, `fct_funnel_stages`, `fct_activities` and `fct_deals`
in pandas from the raw layer (resolving record versions itself); the job builds them with dbt.
Two scenarios: the generated sample with `as_of` derived from the data, and a smaller sample
with `as_of` pinned about two months before the data ends (facts after `as_of` have not
happened yet). Each is one of the session's two oracle runs (tests/oracle_runs.py, which holds
their hand-made deliveries), shared with test_kpis_match_definitions.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from mart_comparison import ColumnKinds, compare
from oracle import OracleMarts, local_month, local_week, oracle_from_warehouse
from oracle_runs import PINNED_AS_OF, SAMPLE_END

pytestmark = pytest.mark.slow

FLOAT_TOLERANCE = 1e-6

TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # table: (key, compared columns)
    "dim_leads": (
        ("contact_id",),
        (
            "contact_id", "company_id", "owner_user_id", "team", "stage", "lead_origin",
            "marketing_lead_at", "sales_lead_at", "quote_at", "customer_at",
            "qualifying_event_id", "qualifying_event_type", "is_fit", "sales_lead_deal_id",
            "crm_label", "crm_label_set_by", "crm_label_consistent",
        ),
    ),
    "fct_funnel_stages": (
        ("contact_id", "stage"),
        (
            "contact_id", "stage", "entered_at", "exited_at", "entered_month", "lead_origin",
            "team",
        ),
    ),
    "fct_activities": (
        ("activity_id",),
        (
            "activity_id", "activity_type", "direction", "outcome", "occurred_at",
            "activity_week", "activity_month", "owner_user_id", "team", "contact_id", "deal_id",
            "is_sales_conversation", "is_cold_email", "is_cold_call",
        ),
    ),
    "fct_deals": (
        ("deal_id",),
        (
            "deal_id", "deal_type", "stage", "owner_user_id", "team", "contact_id",
            "created_at", "closed_at", "is_won", "amount", "currency", "amount_eur",
            "first_quote_sent_at",
        ),
    ),
}
TIMESTAMP_COLUMNS = {
    "marketing_lead_at", "sales_lead_at", "quote_at", "customer_at", "entered_at", "exited_at",
    "occurred_at", "created_at", "closed_at", "first_quote_sent_at",
}
DATE_COLUMNS = {"entered_month", "activity_week", "activity_month"}
FLOAT_COLUMNS = {"amount", "amount_eur"}
BOOL_COLUMNS = {
    "is_fit", "crm_label_consistent", "is_sales_conversation", "is_cold_email", "is_cold_call",
    "is_won",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    warehouse: Path
    oracle: OracleMarts

    def mart(self, table: str) -> pd.DataFrame:
        columns = ", ".join(TABLES[table][1])
        with duckdb.connect(str(self.warehouse / "marts.duckdb"), read_only=True) as con:
            con.execute("set TimeZone = 'UTC'")
            # The file's catalog is also called `marts`: qualify fully.
            return con.execute(f"select {columns} from marts.{table}").df()


@pytest.fixture(scope="module")
def derived(derived_oracle_run: Path) -> Scenario:
    """The session's derived-as_of run (tests/oracle_runs.py: the sample with the as_of probes,
    which test_kpis_match_definitions.py compares too) and the oracle on its raw layer."""
    warehouse = derived_oracle_run / "warehouse"
    return Scenario(
        "derived as_of", warehouse, oracle_from_warehouse(warehouse / "warehouse.duckdb")
    )


@pytest.fixture(scope="module")
def pinned(pinned_oracle_run: Path) -> Scenario:
    """The session's pinned-as_of run (tests/oracle_runs.py: the smaller sample with the edge
    deliveries; its `kpi_program_start` reaches only the KPI models, which
    test_kpis_match_definitions.py compares) and the oracle at that as_of."""
    warehouse = pinned_oracle_run / "warehouse"
    return Scenario(
        "pinned as_of",
        warehouse,
        oracle_from_warehouse(warehouse / "warehouse.duckdb", as_of=PINNED_AS_OF),
    )


# --------------------------------------------------------------------------------------------
# Comparison


KINDS = ColumnKinds(
    rel_tol=FLOAT_TOLERANCE,
    abs_tol=0.005,
    timestamps=frozenset(TIMESTAMP_COLUMNS),
    dates=frozenset(DATE_COLUMNS),
    floats=frozenset(FLOAT_COLUMNS),
    bools=frozenset(BOOL_COLUMNS),
)


def assert_same(
    scenario: Scenario,
    table: str,
    skip: Callable[[dict[str, Any]], set[str]] | None = None,
) -> None:
    expected = getattr(scenario.oracle, table)
    key, columns = TABLES[table]
    differences = compare(KINDS, scenario.mart(table), expected, key, columns, skip)
    problems = (
        differences.mismatching
        + [f"missing from the mart: {line}" for line in differences.missing]
        + [f"in the mart only: {line}" for line in differences.extra]
    )
    if problems:
        shown = "\n  ".join(problems[:10])
        pytest.fail(
            f"{scenario.name} (as_of {scenario.oracle.as_of}): marts.{table} disagrees with "
            f"the definitions on {len(problems)} of {len(expected)} keys; first 10:\n  {shown}",
            pytrace=False,
        )


def assert_as_of(scenario: Scenario) -> None:
    """The run's as_of is the oracle's: the company's count and sum series end in its period
    (and, once the `runs` mart exists, its as_of is the same instant)."""
    as_of = pd.Series([scenario.oracle.as_of])
    end = {"week": local_week(as_of)[0], "month": local_month(as_of)[0]}
    with duckdb.connect(str(scenario.warehouse / "marts.duckdb"), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        ends = con.execute(
            "select kpi_id, grain, max(period_start) from marts.kpi_values "
            "where scope = 'company' and kpi_kind in ('action', 'result') group by all"
        ).fetchall()
        has_runs = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'main' and table_name = 'runs'"
        ).fetchone()[0]
        run_as_of = (
            con.execute("select as_of from marts.runs order by published_at").fetchall()
            if has_runs
            else []
        )
    assert ends, "kpi_values has no company series"
    wrong = [
        f"{kpi} ({grain}) ends {last}, not {end[grain]}"
        for kpi, grain, last in ends
        if pd.Timestamp(last).date() != end[grain]
    ]
    assert not wrong, f"{scenario.name}: as_of is {scenario.oracle.as_of}, but " + "; ".join(wrong)
    if run_as_of:
        assert pd.Timestamp(run_as_of[-1][0]) == scenario.oracle.as_of


def _deal_skip(row: dict[str, Any]) -> set[str]:
    # A deal that closed or moved after `as_of` is compared with its stage history at `as_of`;
    # when that history says nothing, its stage then is unknown and not compared.
    return set() if row["stage_known"] else {"stage"}


# (The pinned scenario first: under pytest-xdist test_kpis_match_definitions.py starts with the
# derived run, so the two files' workers build the two shared runs side by side.)


# --------------------------------------------------------------------------------------------
# Tests: as_of pinned two months before the data ends


def test_pinned_as_of_is_used(pinned: Scenario) -> None:
    assert pinned.oracle.as_of == pd.Timestamp(PINNED_AS_OF).tz_convert("UTC")
    with duckdb.connect(str(pinned.warehouse / "warehouse.duckdb"), read_only=True) as con:
        latest = con.execute("select max(occurred_at) from raw.activities").fetchone()[0]
    assert pd.Timestamp(latest) > pinned.oracle.as_of, "the sample has no facts after as_of"
    assert_as_of(pinned)


def test_dim_leads_pinned_as_of(pinned: Scenario) -> None:
    assert_same(pinned, "dim_leads")


def test_fct_funnel_stages_pinned_as_of(pinned: Scenario) -> None:
    assert_same(pinned, "fct_funnel_stages")


def test_fct_activities_pinned_as_of(pinned: Scenario) -> None:
    assert_same(pinned, "fct_activities")


def test_fct_deals_pinned_as_of(pinned: Scenario) -> None:
    assert_same(pinned, "fct_deals", _deal_skip)


# --------------------------------------------------------------------------------------------
# Tests: derived as_of


def test_derived_as_of(derived: Scenario) -> None:
    sample_end = pd.Timestamp(SAMPLE_END.isoformat(), tz="UTC") + pd.Timedelta(days=1)
    assert derived.oracle.as_of < sample_end, "the probes' far-future timestamps moved as_of"
    assert_as_of(derived)


def test_dim_leads(derived: Scenario) -> None:
    assert_same(derived, "dim_leads")


def test_fct_funnel_stages(derived: Scenario) -> None:
    assert_same(derived, "fct_funnel_stages")


def test_fct_activities(derived: Scenario) -> None:
    assert_same(derived, "fct_activities")


def test_fct_deals(derived: Scenario) -> None:
    assert_same(derived, "fct_deals", _deal_skip)
