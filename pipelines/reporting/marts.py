"""Read what the dashboard needs from the published marts, read-only and in one go.

The published file may be swapped by the next run at any moment; reading everything into
memory at once keeps one report consistent with one publication.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipelines.publish import published_table

# Attached under our own name, read-only: one consistent read of one publication.
_ALIAS = "published"


def _table(name: str) -> str:
    return published_table(name, _ALIAS)


@dataclass
class PublishedMarts:
    """The published marts as the dashboard reads them (small frames, already aggregated)."""

    run: dict[str, Any]
    runs: pd.DataFrame
    settings: dict[str, Any]
    registry: pd.DataFrame
    values: pd.DataFrame
    scorecard: pd.DataFrame
    baselines: pd.DataFrame
    reps: pd.DataFrame
    labels: pd.DataFrame
    funnel: pd.DataFrame
    won_deals: pd.DataFrame
    weeks: list[date] = field(default_factory=list)
    months: list[date] = field(default_factory=list)
    complete_weeks: set[date] = field(default_factory=set)
    complete_months: set[date] = field(default_factory=set)

    @property
    def current_week(self) -> date | None:
        return self.weeks[-1] if self.weeks else None

    @property
    def last_complete_week(self) -> date | None:
        done = [w for w in self.weeks if w in self.complete_weeks]
        return done[-1] if done else None

    @property
    def current_month(self) -> date | None:
        return self.months[-1] if self.months else None

    @property
    def last_complete_month(self) -> date | None:
        done = [m for m in self.months if m in self.complete_months]
        return done[-1] if done else None

    def kpi(self, kpi_id: str) -> dict[str, Any]:
        """The registry row of a KPI (names, kind, unit)."""
        rows = self.registry[self.registry.kpi_id == kpi_id]
        if rows.empty:
            return {"kpi_id": kpi_id, "name_en": kpi_id, "name_nl": kpi_id, "unit": "count",
                    "kpi_kind": "", "grain": "month", "scopes": ""}
        return rows.iloc[0].to_dict()

    def kpi_name(self, kpi_id: str, language: str) -> str:
        return str(self.kpi(kpi_id)[f"name_{language}"])

    def active_kpis(self, kind: str, computation: str | None = None) -> list[str]:
        """Active KPIs of a kind (and computation), in the registry's reading order."""
        rows = self.registry[(self.registry.kpi_kind == kind) & self.registry.is_active]
        if computation is not None:
            rows = rows[rows.computation == computation]
        return list(rows.sort_values(["display_order", "kpi_id"]).kpi_id)

    def kpi_ids_computed_as(self, computation: str) -> set[str]:
        """The KPIs the registry computes as `computation` (count, sum, conversion, growth)."""
        return set(self.registry[self.registry.computation == computation].kpi_id)

    def series(self, kpi_id: str, scope: str, scope_id: str) -> pd.DataFrame:
        """kpi_values joined with the scorecard's target/status, by period."""
        values = self.values[
            (self.values.kpi_id == kpi_id)
            & (self.values.scope == scope)
            & (self.values.scope_id == scope_id)
        ]
        card = self.scorecard[
            (self.scorecard.kpi_id == kpi_id)
            & (self.scorecard.scope == scope)
            & (self.scorecard.scope_id == scope_id)
        ][["period_start", "target", "attainment", "status"]]
        return values.merge(card, on="period_start", how="left").sort_values("period_start")

    def baseline(self, kpi_id: str, scope: str, scope_id: str) -> dict[str, Any] | None:
        rows = self.baselines[
            (self.baselines.kpi_id == kpi_id)
            & (self.baselines.scope == scope)
            & (self.baselines.scope_id == scope_id)
        ]
        return None if rows.empty else rows.iloc[0].to_dict()


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.execute(sql).df()


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """DATE columns as `datetime.date` (pandas turns them into timestamps)."""
    for column in columns:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


def read_published_marts(published_db: Path) -> PublishedMarts:
    """Everything the dashboard shows, from one read-only attach of the published file."""
    if not Path(published_db).exists():
        raise FileNotFoundError(f"no published marts at {published_db}")
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        path = str(published_db).replace("'", "''")
        con.execute(f"attach '{path}' as {_ALIAS} (read_only)")
        runs = _frame(
            con,
            f"select run_id, as_of, published_at, definitions_version, settings, source_files "
            f"from {_table('runs')} order by published_at desc",
        )
        if runs.empty:
            raise ValueError(f"{published_db} has no published run")
        run = runs.iloc[0].to_dict()
        settings = json.loads(run["settings"]) if run.get("settings") else {}
        registry = _frame(
            con, f"select * from {_table('kpi_registry')} order by display_order, kpi_id"
        )
        values = _dates(
            _frame(
                con,
                f"select kpi_id, kpi_kind, grain, period_start, scope, scope_id, value, "
                f"numerator, denominator, is_complete from {_table('kpi_values')}",
            ),
            "period_start",
        )
        scorecard = _dates(
            _frame(
                con,
                f"select kpi_id, kpi_kind, scope, scope_id, period_start, actual, target, "
                f"target_source, attainment, is_complete, status "
                f"from {_table('kpi_scorecard')}",
            ),
            "period_start",
        )
        baselines = _dates(
            _frame(con, f"select * from {_table('kpi_baselines')}"),
            "baseline_from",
            "baseline_to",
        )
        reps = _frame(
            con,
            f"select user_id, full_name, role, team, is_sales_rep, is_active "
            f"from {_table('dim_reps')} order by full_name, user_id",
        )
        labels = _frame(
            con,
            f"select l.*, r.full_name, r.team from {_table('label_consistency')} l "
            f"left join {_table('dim_reps')} r on r.user_id = l.labeller "
            f"order by l.inconsistency_rate desc nulls last, l.labeller",
        )
        funnel = _dates(
            _frame(
                con,
                f"select team, stage, entered_month, count(*)::bigint as contacts "
                f"from {_table('fct_funnel_stages')} group by all",
            ),
            "entered_month",
        )
        won_deals = _dates(
            _frame(
                con,
                f"select team, is_owned_by_sales_rep, closed_month, count(*)::bigint as deals "
                f"from {_table('fct_deals')} "
                f"where is_won and deal_type = 'new_business' group by all",
            ),
            "closed_month",
        )
    finally:
        con.close()

    company = values[values.scope == "company"]
    weekly = company[company.grain == "week"]
    monthly = company[company.grain == "month"]
    marts = PublishedMarts(
        run=run,
        runs=runs,
        settings=settings,
        registry=registry,
        values=values,
        scorecard=scorecard,
        baselines=baselines,
        reps=reps,
        labels=labels,
        funnel=funnel,
        won_deals=won_deals,
    )
    marts.weeks = sorted(set(weekly.period_start))
    marts.months = sorted(set(monthly.period_start))
    # A period is complete when the company's count KPIs say so (conversions add maturity).
    conversions = marts.kpi_ids_computed_as("conversion")
    for grain, frame in (("week", weekly), ("month", monthly)):
        done = frame[~frame.kpi_id.isin(conversions) & frame.is_complete.fillna(False)]
        if grain == "week":
            marts.complete_weeks = set(done.period_start)
        else:
            marts.complete_months = set(done.period_start)
    return marts


def as_local(instant: Any, timezone: str) -> datetime | None:
    """A stored UTC instant in the business timezone."""
    if instant is None or pd.isna(instant):
        return None
    return pd.Timestamp(instant).tz_convert(timezone).to_pydatetime()
