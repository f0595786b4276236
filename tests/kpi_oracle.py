"""An independent implementation of the KPI rules (v1.1), used as a test oracle.

Written from the written definitions only (not from the dbt models), in pandas: it computes
the marts `kpi_values`, `kpi_baselines` and `kpi_scorecard` from the published fact marts
(`dim_reps`, `dim_leads`, `fct_activities`, `fct_deals`, which another oracle checks), the
build's `as_of` (`intermediate.int_as_of`) and the loaded target overrides
(`raw.target_overrides`).

The rules, restated (the project never reads the shared definitions at run time):

- Periods are local wall time in Europe/Amsterdam: a week is an ISO week (Monday–Sunday), a
  month a calendar month; `period_start` is the first day. A period is complete when the local
  midnight that starts the next period is ≤ `as_of`. Facts after `as_of` have not happened.
- Action KPIs (weekly; rep, team, company): `cold_emails`, `cold_calls`,
  `sales_conversations` = the number of live activities with that flag, owned by sales reps
  (current role sdr, ae or manager).
- Result KPIs (monthly): `new_marketing_leads` (company) = contacts whose `marketing_lead_at`
  is in the month; `new_sales_leads` (rep, team, company) = contacts whose `sales_lead_at` is
  in the month, credited to the owner of the sales-lead deal when that owner is a sales rep
  (else to nobody: the company counts it, no rep and no team does);
  `new_revenue` / `upsell_revenue` (rep, team, company) = the EUR amount of live won
  `new_business` / `upsell` deals in the month of `closed_at` (no amount adds 0); company rows
  count every live deal, rep and team rows deals owned by sales reps (credited to the current
  owner and the owner's current team).
- Insight KPIs (monthly; team, company): `conv_marketing_to_sales_lead`,
  `conv_sales_lead_to_customer`, `conv_quote_to_customer` = of the cohort (contacts whose
  start instant is in the month), the share whose end instant is within
  `start ≤ end ≤ start + 90 × 24 h`; a row only for a non-empty cohort; the team is the lead's
  team; mature when (last day of the month + 90 days) ≤ the local date of `as_of`.
  `new_revenue_mom_growth` has a row for every month of the `new_revenue` series (team and
  company): numerator = current − previous, denominator = previous, value = their ratio; all
  empty in the first month, the value empty when previous is 0.
- Rates: value = numerator / denominator; counts and sums: numerator = value, no denominator.
  `is_complete` = the period is complete and, for conversions, the cohort is mature.
- Series and zero-filling: count and sum KPIs have a row (0 when nothing) for every period of
  their series. A rep's series runs from the period of its first live activity (any type), or
  without any, its first live deal's `created_at`, to the period of `as_of`; for an inactive
  rep to the period of its last live activity or deal event (capped at `as_of`). A team's
  series (`Unassigned` included) runs from the earliest start of its current reps' series to
  the period of `as_of`; a team has a series only through its current sales reps. The
  company's series runs from the period of the first live activity or deal `created_at` to the
  period of `as_of` — except that a count/sum KPI whose own first counted fact is in an earlier
  period (a marketing lead before any activity or deal) starts its company series there
  (v1.1); the other company KPIs keep the activity/deal start.
- Facts and series (v1.1): the company counts every fact. A rep's and its team's rows count a
  rep's facts only inside that rep's series (period_start within [series start, series end]);
  a fact credited to a rep before its series starts (a won deal reassigned to a new hire)
  counts for the company only. So a team's value is always the sum of its current reps'
  values, and a fact whose owner is not a sales rep counts for no team (v1 credited it to team
  `Unassigned`).
- Baseline per action/result KPI and scope: the mean over `baseline_periods` (3 months, 8
  weeks) complete periods of the series: when `kpi_program_start` is set and the series has that
  many complete periods before it, the last ones before it; otherwise the first ones of the
  series. Fewer → no baseline.
- Targets start in the first period after the baseline window, or in the period containing
  `kpi_program_start` when that is later, and run to the end of the series (the current
  incomplete period included): baseline × (1 + 0.10); a baseline of 0 derives no target. After
  3 consecutive complete periods with actual ≥ target (a miss resets the count, incomplete
  periods do not count) the next period's target is the previous one × 1.10 and the count
  starts again. An override replaces the target of its period (`override`), restarts the
  count, and later periods ladder from it (`derived`).
- Scorecard: per KPI, scope and period with a target: actual, target, attainment =
  actual / target (empty when the target is 0), `is_complete`, status `in_progress` while
  incomplete, else `met` when actual ≥ target × (1 − 1e-9), else `below`.

Choices made where the definitions leave room (a careful analyst's reading; see the report):

- A period is "before" `kpi_program_start` when it starts before the period that contains it
  (the period containing it is the first target period, never a baseline period).
- The company's exception is per KPI and per grain: the period (in that KPI's grain) of the
  first fact that KPI counts for the company, when earlier than the activity/deal start. Only
  `new_marketing_leads` can reach it with consistent data, but the rule is applied to all.
- A rep's and a team's series never stretch to a credited fact (v1's reading of this oracle
  did; v1.1 drops the fact from the rep and the team instead).
- "Current reps" of a team are all users whose current role makes them a sales rep and whose
  current team it is, active or not.
- An inactive rep's "deal events" are the `created_at` and (≤ `as_of`) `closed_at` of the
  live deals it owns.
- The ratchet count: the period whose target was just raised, or overridden, is the first
  period of the new count.
- An override in a period of the series before the derived targets start (or in a series with
  a 0 or no baseline) starts the ladder there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

BUSINESS_TIMEZONE = "Europe/Amsterdam"
CONVERSION_WINDOW_DAYS = 90
BASELINE_PERIODS = {"month": 3, "week": 8}
TARGET_UPLIFT = 0.10
RATCHET_AFTER = 3
MET_TOLERANCE = 1e-9
SALES_REP_ROLES = frozenset({"sdr", "ae", "manager"})
UNASSIGNED = "Unassigned"
COMPANY = "all"

# kpi_id: (kind, grain, scopes)
KPIS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "cold_emails": ("action", "week", ("rep", "team", "company")),
    "cold_calls": ("action", "week", ("rep", "team", "company")),
    "sales_conversations": ("action", "week", ("rep", "team", "company")),
    "new_marketing_leads": ("result", "month", ("company",)),
    "new_sales_leads": ("result", "month", ("rep", "team", "company")),
    "new_revenue": ("result", "month", ("rep", "team", "company")),
    "upsell_revenue": ("result", "month", ("rep", "team", "company")),
    "conv_marketing_to_sales_lead": ("insight", "month", ("team", "company")),
    "conv_sales_lead_to_customer": ("insight", "month", ("team", "company")),
    "conv_quote_to_customer": ("insight", "month", ("team", "company")),
    "new_revenue_mom_growth": ("insight", "month", ("team", "company")),
}
ACTIVITY_KPIS = {
    "cold_emails": "is_cold_email",
    "cold_calls": "is_cold_call",
    "sales_conversations": "is_sales_conversation",
}
REVENUE_KPIS = {"new_revenue": "new_business", "upsell_revenue": "upsell"}
CONVERSION_KPIS = {
    "conv_marketing_to_sales_lead": ("marketing_lead_at", "sales_lead_at"),
    "conv_sales_lead_to_customer": ("sales_lead_at", "customer_at"),
    "conv_quote_to_customer": ("quote_at", "customer_at"),
}

VALUE_COLUMNS = [
    "kpi_id", "kpi_kind", "grain", "period_start", "scope", "scope_id", "value", "numerator",
    "denominator", "is_complete",
]
BASELINE_COLUMNS = [
    "kpi_id", "scope", "scope_id", "baseline_value", "baseline_from", "baseline_to",
    "periods_used",
]
SCORECARD_COLUMNS = [
    "kpi_id", "kpi_kind", "scope", "scope_id", "period_start", "actual", "target",
    "target_source", "attainment", "is_complete", "status",
]

SeriesKey = tuple[str, str, str]  # kpi_id, scope, scope_id


@dataclass(frozen=True)
class KpiOracle:
    as_of: pd.Timestamp
    kpi_values: pd.DataFrame
    kpi_baselines: pd.DataFrame
    kpi_scorecard: pd.DataFrame


# --------------------------------------------------------------------------------------------
# Periods


def _local_day(instant: pd.Timestamp) -> pd.Timestamp:
    """The local calendar day of an instant, as a naive midnight timestamp."""
    return instant.tz_convert(BUSINESS_TIMEZONE).tz_localize(None).normalize()


def period_of(instant: pd.Timestamp, grain: str) -> pd.Timestamp:
    day = _local_day(instant)
    if grain == "week":
        return day - pd.Timedelta(days=day.weekday())
    return day.replace(day=1)


def periods_of(instants: pd.Series, grain: str) -> pd.Series:
    days = instants.dt.tz_convert(BUSINESS_TIMEZONE).dt.tz_localize(None).dt.normalize()
    if grain == "week":
        return days - pd.to_timedelta(days.dt.weekday, unit="D")
    return days.dt.to_period("M").dt.start_time


def next_period(start: pd.Timestamp, grain: str) -> pd.Timestamp:
    if grain == "week":
        return start + pd.Timedelta(days=7)
    return start + pd.DateOffset(months=1)


def period_range(first: pd.Timestamp, last: pd.Timestamp, grain: str) -> list[pd.Timestamp]:
    out = []
    current = first
    while current <= last:
        out.append(current)
        current = next_period(current, grain)
    return out


def is_complete(start: pd.Timestamp, grain: str, as_of: pd.Timestamp) -> bool:
    """The local midnight that starts the next period is ≤ as_of."""
    return next_period(start, grain).tz_localize(BUSINESS_TIMEZONE) <= as_of


def is_mature(month_start: pd.Timestamp, as_of: pd.Timestamp) -> bool:
    last_day = next_period(month_start, "month") - pd.Timedelta(days=1)
    return last_day + pd.Timedelta(days=CONVERSION_WINDOW_DAYS) <= _local_day(as_of)


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Inputs:
    as_of: pd.Timestamp
    reps: pd.DataFrame
    leads: pd.DataFrame
    activities: pd.DataFrame
    deals: pd.DataFrame
    overrides: pd.DataFrame


def _utc(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def read_inputs(warehouse_dir: Path) -> Inputs:
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{warehouse_dir / 'marts.duckdb'}' as pub (read_only)")
        con.execute(f"attach '{warehouse_dir / 'warehouse.duckdb'}' as wh (read_only)")
        as_of = pd.Timestamp(
            con.execute("select as_of from wh.intermediate.int_as_of").fetchone()[0]
        ).tz_convert("UTC")
        reps = con.execute(
            "select user_id, role, team, is_sales_rep, is_active from pub.dim_reps"
        ).df()
        leads = con.execute(
            "select contact_id, team, marketing_lead_at, sales_lead_at, quote_at, customer_at,"
            " sales_lead_deal_owner_user_id from pub.dim_leads"
        ).df()
        activities = con.execute(
            "select activity_id, occurred_at, owner_user_id, is_sales_conversation,"
            " is_cold_email, is_cold_call from pub.fct_activities"
        ).df()
        deals = con.execute(
            "select deal_id, deal_type, owner_user_id, created_at, closed_at, is_won,"
            " amount_eur from pub.fct_deals"
        ).df()
        overrides = con.execute(
            "select kpi_id, scope, scope_id, period_start, target from wh.raw.target_overrides"
        ).df()
    finally:
        con.close()
    leads = _utc(leads, ["marketing_lead_at", "sales_lead_at", "quote_at", "customer_at"])
    activities = _utc(activities, ["occurred_at"])
    deals = _utc(deals, ["created_at", "closed_at"])
    # Facts after as_of have not happened yet (a no-op when as_of is derived from the data).
    for column in ["marketing_lead_at", "sales_lead_at", "quote_at", "customer_at"]:
        leads.loc[leads[column] > as_of, column] = pd.NaT
    activities = activities[activities["occurred_at"] <= as_of]
    deals = deals[deals["created_at"] <= as_of].copy()
    closed_later = deals["closed_at"] > as_of
    deals.loc[closed_later, "closed_at"] = pd.NaT
    deals.loc[closed_later, "is_won"] = False
    # A sales rep is a user whose current role is sdr, ae or manager.
    reps = reps.copy()
    reps["is_sales_rep"] = reps["role"].isin(SALES_REP_ROLES)
    reps["team"] = reps["team"].fillna(UNASSIGNED)
    overrides = overrides.copy()
    overrides["period_start"] = pd.to_datetime(overrides["period_start"])
    return Inputs(as_of, reps, leads, activities, deals, overrides)


# --------------------------------------------------------------------------------------------
# Facts: one row per fact a count/sum KPI counts, with the sales rep it is credited to


def facts(inputs: Inputs) -> pd.DataFrame:
    """Every fact the company counts: kpi_id, period_start (in the KPI's grain), amount, and
    `rep`, the sales rep credited with it (empty when its owner is not a sales rep).

    Who is credited is decided here; whether the rep (and so its team) counts the fact depends
    on the rep's series, decided later (v1.1).
    """
    sales_reps = set(inputs.reps.loc[inputs.reps["is_sales_rep"], "user_id"])
    parts: list[pd.DataFrame] = []

    def add(kpi_id: str, period: pd.Series, amount: pd.Series, owner: pd.Series) -> None:
        parts.append(pd.DataFrame({
            "kpi_id": kpi_id,
            "period_start": period.values,
            "amount": amount.astype(float).values,
            "rep": owner.where(owner.isin(sales_reps)).astype(object).values,
        }))

    acts = inputs.activities
    acts = acts[acts["owner_user_id"].isin(sales_reps)]  # only sales reps' activities count
    for kpi_id, flag in ACTIVITY_KPIS.items():
        counted = acts[acts[flag].fillna(False).astype(bool)]
        add(
            kpi_id, periods_of(counted["occurred_at"], "week"),
            pd.Series(1.0, index=counted.index), counted["owner_user_id"],
        )

    deals = inputs.deals
    for kpi_id, deal_type in REVENUE_KPIS.items():
        # Company totals count every live deal; a rep only the deals it owns.
        won = deals[
            (deals["deal_type"] == deal_type)
            & deals["is_won"].fillna(False).astype(bool)
            & deals["closed_at"].notna()
        ]
        add(
            kpi_id, periods_of(won["closed_at"], "month"),
            won["amount_eur"].astype(float).fillna(0.0), won["owner_user_id"],
        )

    leads = inputs.leads
    mql = leads[leads["marketing_lead_at"].notna()]
    add(
        "new_marketing_leads", periods_of(mql["marketing_lead_at"], "month"),
        pd.Series(1.0, index=mql.index), pd.Series(None, index=mql.index, dtype=object),
    )
    sql = leads[leads["sales_lead_at"].notna()]
    # Credited to the owner of the sales-lead deal; a non-sales owner credits nobody (v1.1:
    # no longer team `Unassigned`).
    add(
        "new_sales_leads", periods_of(sql["sales_lead_at"], "month"),
        pd.Series(1.0, index=sql.index), sql["sales_lead_deal_owner_user_id"],
    )
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Series bounds


@dataclass(frozen=True)
class RepSpan:
    """The instants a sales rep's series runs between (before taking periods)."""

    first: pd.Timestamp
    last: pd.Timestamp
    team: str


def rep_spans(inputs: Inputs) -> dict[str, RepSpan]:
    """Per current sales rep with a series: its first live activity (any type) or, without
    any, its first live deal's `created_at`; `as_of` for an active rep, else its last live
    activity or deal event (`created_at`, `closed_at`), capped at `as_of`. A rep with neither
    activities nor deals has no series (and credits nothing)."""
    as_of = inputs.as_of
    acts, deals = inputs.activities, inputs.deals
    first_act = acts.groupby("owner_user_id")["occurred_at"].min()
    last_act = acts.groupby("owner_user_id")["occurred_at"].max()
    first_deal = deals.groupby("owner_user_id")["created_at"].min()
    last_created = deals.groupby("owner_user_id")["created_at"].max()
    last_closed = deals.groupby("owner_user_id")["closed_at"].max()
    spans: dict[str, RepSpan] = {}
    for rep in inputs.reps[inputs.reps["is_sales_rep"]].itertuples():
        user = rep.user_id
        if user in first_act.index:
            first = first_act[user]
        elif user in first_deal.index:
            first = first_deal[user]
        else:
            continue
        if bool(rep.is_active):
            last = as_of
        else:
            events = [
                s[user] for s in (last_act, last_created, last_closed)
                if user in s.index and pd.notna(s[user])
            ]
            last = min(max(events), as_of)
        spans[user] = RepSpan(first, last, rep.team)
    return spans


def series_bounds(
    inputs: Inputs, counted: pd.DataFrame, spans: dict[str, RepSpan]
) -> dict[SeriesKey, tuple[pd.Timestamp, pd.Timestamp]]:
    """(first, last) period_start of every count/sum series.

    - rep: the periods of its span, in the KPI's grain;
    - team (`Unassigned` included): only through its current sales reps with a series, from
      the earliest of their starts to the period of `as_of` (v1.1: a team with credits but no
      reps has no series; nothing credits such a team any more);
    - company: from the period of the first live activity or live deal `created_at` to the
      period of `as_of`, except that a KPI whose own first counted fact is in an earlier
      period starts there (v1.1). `counted` is the company's facts (`facts()`).
    """
    as_of = inputs.as_of
    acts, deals = inputs.activities, inputs.deals
    company_first = min(
        t for t in (acts["occurred_at"].min(), deals["created_at"].min()) if pd.notna(t)
    )
    first_fact = counted.groupby("kpi_id")["period_start"].min()
    bounds: dict[SeriesKey, tuple[pd.Timestamp, pd.Timestamp]] = {}
    for kpi_id, (kind, grain, scopes) in KPIS.items():
        if kind == "insight":
            continue
        end = period_of(as_of, grain)
        if "company" in scopes:
            start = period_of(company_first, grain)
            if kpi_id in first_fact.index:
                start = min(start, first_fact[kpi_id])
            bounds[(kpi_id, "company", COMPANY)] = (start, end)
        if "rep" in scopes:
            for user, span in spans.items():
                bounds[(kpi_id, "rep", user)] = (
                    period_of(span.first, grain), period_of(span.last, grain)
                )
        if "team" in scopes:
            for span in spans.values():
                key = (kpi_id, "team", span.team)
                start = period_of(span.first, grain)
                if key in bounds:
                    start = min(start, bounds[key][0])
                bounds[key] = (start, end)
    return bounds


def credits(
    counted: pd.DataFrame,
    spans: dict[str, RepSpan],
    bounds: dict[SeriesKey, tuple[pd.Timestamp, pd.Timestamp]],
) -> pd.DataFrame:
    """The amount per KPI key and period: the company counts every fact; a rep counts the
    facts credited to it inside its own series only, and a team exactly what its reps count
    (v1.1: a fact credited to a rep before its series starts counts for the company only)."""
    company = counted.assign(scope="company", scope_id=COMPANY)
    parts = [company]
    by_rep = counted[counted["rep"].notna()]
    by_rep = by_rep[by_rep["kpi_id"].map(lambda k: "rep" in KPIS[k][2]).astype(bool)]
    inside_series = [
        (k, "rep", r) in bounds and bounds[(k, "rep", r)][0] <= p <= bounds[(k, "rep", r)][1]
        for k, r, p in zip(by_rep["kpi_id"], by_rep["rep"], by_rep["period_start"], strict=True)
    ]
    inside = by_rep[np.array(inside_series, dtype=bool)]
    parts.append(inside.assign(scope="rep", scope_id=inside["rep"]))
    for_team = inside[inside["kpi_id"].map(lambda k: "team" in KPIS[k][2]).astype(bool)]
    parts.append(
        for_team.assign(scope="team", scope_id=for_team["rep"].map(lambda r: spans[r].team))
    )
    frame = pd.concat(parts, ignore_index=True)
    return frame.groupby(["kpi_id", "scope", "scope_id", "period_start"], as_index=False)[
        "amount"
    ].sum()


# --------------------------------------------------------------------------------------------
# kpi_values


def _value_row(
    kpi_id: str, period: pd.Timestamp, scope: str, scope_id: str, value: float | None,
    numerator: float | None, denominator: float | None, complete: bool,
) -> dict:
    kind, grain, _ = KPIS[kpi_id]
    return {
        "kpi_id": kpi_id, "kpi_kind": kind, "grain": grain, "period_start": period,
        "scope": scope, "scope_id": scope_id, "value": value, "numerator": numerator,
        "denominator": denominator, "is_complete": complete,
    }


def compute_values(
    inputs: Inputs,
) -> tuple[pd.DataFrame, dict[SeriesKey, list[tuple[pd.Timestamp, float, bool]]]]:
    as_of = inputs.as_of
    counted = facts(inputs)
    spans = rep_spans(inputs)
    bounds = series_bounds(inputs, counted, spans)
    credited = credits(counted, spans, bounds)
    amounts = {
        (r.kpi_id, r.scope, r.scope_id, r.period_start): float(r.amount)
        for r in credited.itertuples()
    }
    rows: list[dict] = []
    series: dict[SeriesKey, list[tuple[pd.Timestamp, float, bool]]] = {}
    for key, (first, last) in sorted(bounds.items()):
        kpi_id, scope, scope_id = key
        grain = KPIS[kpi_id][1]
        points = []
        for period in period_range(first, last, grain):
            value = amounts.get((*key, period), 0.0)
            complete = is_complete(period, grain, as_of)
            points.append((period, value, complete))
            rows.append(_value_row(kpi_id, period, scope, scope_id, value, value, None, complete))
        series[key] = points
    # By construction every counted amount lies inside a series (the company's starts at its
    # first fact at the latest; reps and teams count inside the rep's series only).
    outside = [
        key for key in amounts
        if key[:3] not in bounds or not bounds[key[:3]][0] <= key[3] <= bounds[key[:3]][1]
    ]
    assert not outside, f"credited outside a series: {outside[:10]}"

    # Month-over-month growth of new revenue, for every month of its team and company series.
    for (kpi_id, scope, scope_id), points in series.items():
        if kpi_id != "new_revenue" or scope == "rep":
            continue
        previous: float | None = None
        for period, value, complete in points:
            if previous is None:
                numerator = denominator = ratio = None
            else:
                numerator, denominator = value - previous, previous
                ratio = None if previous == 0 else numerator / denominator
            rows.append(
                _value_row(
                    "new_revenue_mom_growth", period, scope, scope_id, ratio, numerator,
                    denominator, complete,
                )
            )
            previous = value

    # Conversions: one row per non-empty cohort, per lead team and for the company.
    window = pd.Timedelta(days=CONVERSION_WINDOW_DAYS)
    leads = inputs.leads
    for kpi_id, (start_col, end_col) in CONVERSION_KPIS.items():
        cohort = leads[leads[start_col].notna()].copy()
        cohort["period_start"] = periods_of(cohort[start_col], "month")
        converted = (
            cohort[end_col].notna()
            & (cohort[end_col] >= cohort[start_col])
            & (cohort[end_col] <= cohort[start_col] + window)
        )
        cohort["converted"] = converted.astype(float)
        cohort["company"] = COMPANY
        for scope, column in (("team", "team"), ("company", "company")):
            grouped = cohort.groupby([column, "period_start"])["converted"].agg(["sum", "count"])
            for (scope_id, period), agg in grouped.iterrows():
                numerator, denominator = float(agg["sum"]), float(agg["count"])
                complete = is_complete(period, "month", as_of) and is_mature(period, as_of)
                rows.append(
                    _value_row(
                        kpi_id, period, scope, scope_id, numerator / denominator, numerator,
                        denominator, complete,
                    )
                )
    frame = pd.DataFrame(rows, columns=VALUE_COLUMNS)
    frame["period_start"] = frame["period_start"].dt.date
    return frame, series


# --------------------------------------------------------------------------------------------
# Baselines and targets


def baseline_window(
    points: list[tuple[pd.Timestamp, float, bool]], grain: str,
    program_start: pd.Timestamp | None,
) -> list[tuple[pd.Timestamp, float, bool]] | None:
    needed = BASELINE_PERIODS[grain]
    complete = [p for p in points if p[2]]
    if program_start is not None:
        before = [p for p in complete if p[0] < program_start]
        if len(before) >= needed:
            return before[-needed:]
    if len(complete) >= needed:
        # The first ones of the series (only the period of as_of can be incomplete).
        return complete[:needed]
    return None


def compute_targets(
    series: dict[SeriesKey, list[tuple[pd.Timestamp, float, bool]]],
    overrides: pd.DataFrame,
    kpi_program_start: date | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    override_at = {
        (r.kpi_id, r.scope, r.scope_id, pd.Timestamp(r.period_start)): float(r.target)
        for r in overrides.itertuples()
    }
    baselines: list[dict] = []
    card: list[dict] = []
    for key, points in sorted(series.items()):
        kpi_id, scope, scope_id = key
        kind, grain, _ = KPIS[kpi_id]
        if kind == "insight":
            continue
        program = None
        if kpi_program_start is not None:
            program = period_of(
                pd.Timestamp(kpi_program_start).tz_localize(BUSINESS_TIMEZONE), grain
            )
        window = baseline_window(points, grain, program)
        baseline: float | None = None
        target_start: pd.Timestamp | None = None
        if window is not None:
            baseline = float(np.mean([value for _, value, _ in window]))
            baselines.append({
                "kpi_id": kpi_id, "scope": scope, "scope_id": scope_id,
                "baseline_value": baseline, "baseline_from": window[0][0].date(),
                "baseline_to": window[-1][0].date(), "periods_used": len(window),
            })
            target_start = next_period(window[-1][0], grain)
            if program is not None and program > target_start:
                target_start = program
        target: float | None = None
        hits = 0
        for period, actual, complete in points:
            source = "derived"
            if (*key, period) in override_at:
                target, source, hits = override_at[(*key, period)], "override", 0
            elif period == target_start and target is None and baseline:
                # A baseline of 0 derives no target.
                target, hits = baseline * (1 + TARGET_UPLIFT), 0
            if target is None:
                continue
            hit = actual >= target * (1 - MET_TOLERANCE)
            card.append({
                "kpi_id": kpi_id, "kpi_kind": kind, "scope": scope, "scope_id": scope_id,
                "period_start": period.date(), "actual": actual, "target": target,
                "target_source": source,
                "attainment": None if target == 0 else actual / target,
                "is_complete": complete,
                "status": "in_progress" if not complete else ("met" if hit else "below"),
            })
            if complete:
                hits = hits + 1 if hit else 0
                if hits >= RATCHET_AFTER:
                    target, hits = target * (1 + TARGET_UPLIFT), 0
    return (
        pd.DataFrame(baselines, columns=BASELINE_COLUMNS),
        pd.DataFrame(card, columns=SCORECARD_COLUMNS),
    )


def kpi_oracle_from_warehouse(
    warehouse_dir: Path | str, kpi_program_start: date | datetime | None = None
) -> KpiOracle:
    """The KPI marts as the definitions say, from a finished run's warehouse folder."""
    if isinstance(kpi_program_start, datetime):
        kpi_program_start = kpi_program_start.date()
    inputs = read_inputs(Path(warehouse_dir))
    values, series = compute_values(inputs)
    baselines, scorecard = compute_targets(series, inputs.overrides, kpi_program_start)
    return KpiOracle(inputs.as_of, values, baselines, scorecard)
