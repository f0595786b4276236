"""An independent implementation of the agreed definitions (v1), used as a test oracle.

Written from the written definitions only (not from the dbt models), in pandas, so that a
disagreement between the two points at a bug in one of them. It starts from the raw layer the
loader writes (`raw.<entity>`: typed columns plus `_delivery`, `_load_id`, `_line`), resolves
record versions itself, and computes the marts `dim_leads`, `fct_funnel_stages`,
`fct_activities` and `fct_deals`.

Everything the definitions fix is restated here (the project never reads the shared
definitions at run time): the free-mail domains, the intent event types, the sales-rep roles,
the label ↔ stage mapping and the default thresholds.

Choices made where the definitions leave room (a careful analyst's reading):

- `as_of` (derived) is the maximum over rows that are themselves live; a row that refers to a
  deleted record (e.g. a quote of a deleted deal) still counts, as the rule lists rows, not
  joins.
- Facts after `as_of`: marketing events, activities, labels and deal stage changes after it are
  dropped; deals created after it are dropped (and with them their quotes); a deal closed after
  it is open (`closed_at` empty, not won); a quote sent after it is unsent. Contacts and
  companies created after `as_of` stay (the rule names only events, activities, labels and
  deals, and `created_at` of contacts and companies never moves `as_of`).
- `closed_at` in `fct_deals` is empty for an open deal (its expected close date does not count).
- A deal's FX month is the *local* (business timezone) calendar month of the instant the amount
  is attributed to, as every other period.
- "A colleague at a customer is not cold": the company's deals are the live deals whose
  `company_id` is that company.
- A user is a sales rep by current `role` alone (`is_active` does not matter).
- `fct_activities.team` and `fct_deals.team` are the owner's current team, whatever the owner's
  role (`Unassigned` when that user's team is empty, as for `dim_reps`); an owner id with no
  user is an empty reference, so the team is empty (NULL). A lead's team is the owner's team
  only when the owner is a sales rep, else `Unassigned` (missing owner included).
- Stage at a label's `changed_at`: the furthest stage whose entry time is ≤ `changed_at`.
- `fct_funnel_stages.exited_at`: the earliest `entered_at` among the *further* stages reached
  (by stage order, not by time), as written.
- `fct_deals.stage` of a deal that closed, or moved, after `as_of`: the stage of its latest
  open stage change at or before `as_of`; unknown (not compared) without such history.
- An activity that names a deal created after `as_of` names no live deal (the deal has not
  happened yet).
- Version ties inside one delivery: a later load of the file (one replaced in place) wins
  before the later line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

BUSINESS_TIMEZONE = "Europe/Amsterdam"
MIN_CONVERSATION_SECONDS = 300

# Unicode's space separators (general category Zs), which the fit's domain loses at its ends.
SPACE_SEPARATORS = "".join(
    chr(c) for c in (0x20, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000)
)
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "hotmail.com", "outlook.com", "live.com", "msn.com",
        "yahoo.com", "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com",
        "gmx.com", "hotmail.nl", "live.nl", "outlook.nl", "ziggo.nl", "kpnmail.nl",
        "planet.nl", "home.nl", "xs4all.nl", "hotmail.be", "telenet.be", "skynet.be",
    }
)
INTENT_EVENT_TYPES = frozenset(
    {"demo_request", "contact_form", "pricing_request", "trial_signup"}
)
SALES_REP_ROLES = frozenset({"sdr", "ae", "manager"})
CLOSED_STAGES = frozenset({"closed_won", "closed_lost"})
UNASSIGNED = "Unassigned"

STAGES = ("marketing_lead", "sales_lead", "quote", "customer")
STAGE_COLUMNS = {
    "marketing_lead": "marketing_lead_at",
    "sales_lead": "sales_lead_at",
    "quote": "quote_at",
    "customer": "customer_at",
}
STAGE_RANK = {"none": 0, "marketing_lead": 1, "sales_lead": 2, "quote": 3, "customer": 4}
# A CRM label and the computed stages it agrees with.
LABEL_AGREES_WITH = {
    "customer": {"customer"},
    "sales_qualified_lead": {"sales_lead", "quote"},
    "opportunity": {"sales_lead", "quote"},
    "marketing_qualified_lead": {"marketing_lead"},
    "subscriber": {"none"},
    "lead": {"none"},
    "other": {"none"},
}

# entity → (primary key, versioned by `updated_at` (else by delivery), has `is_deleted`)
ENTITIES: dict[str, tuple[tuple[str, ...], bool, bool]] = {
    "users": (("user_id",), True, False),
    "companies": (("company_id",), True, True),
    "contacts": (("contact_id",), True, True),
    "lifecycle_changes": (("change_id",), False, True),
    "marketing_events": (("event_id",), False, True),
    "activities": (("activity_id",), True, True),
    "deals": (("deal_id",), True, True),
    "deal_stage_changes": (("deal_id", "stage", "changed_at"), False, True),
    "quotes": (("quote_id",), True, True),
    "fx_rates": (("currency", "month"), False, False),
}


@dataclass(frozen=True)
class OracleMarts:
    as_of: pd.Timestamp
    dim_leads: pd.DataFrame
    fct_funnel_stages: pd.DataFrame
    fct_activities: pd.DataFrame
    fct_deals: pd.DataFrame


# --------------------------------------------------------------------------------------------
# Raw layer → live records


def read_raw(database: Path | str) -> dict[str, pd.DataFrame]:
    """Every row version of every entity, read-only, timestamps as UTC instants."""
    frames: dict[str, pd.DataFrame] = {}
    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        for entity in ENTITIES:
            frames[entity] = _utc(con.execute(f"select * from raw.{entity}").df())
    return frames


def _utc(frame: pd.DataFrame) -> pd.DataFrame:
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].dt.tz_convert("UTC")
    return frame


def resolve_versions(entity: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The live version of each record (CONTRACT.md, deliveries).

    `updated_at` entities: latest `updated_at`, a tie → later delivery (name order) → later
    load (a file replaced in its delivery) → later line. Others: latest delivery, then later
    load, then later line. Then `is_deleted = true` drops the record. EUR rows of `fx_rates`
    are ignored.
    """
    key, by_updated_at, has_is_deleted = ENTITIES[entity]
    # A file replaced inside a delivery (same name, new content) is a later load of it.
    order = ["_delivery", "_load_id", "_line"]
    if by_updated_at:
        order = ["updated_at", *order]
    ranked = rows.sort_values([*key, *order], kind="mergesort")
    latest = ranked.drop_duplicates(list(key), keep="last")
    if has_is_deleted:
        latest = latest[~latest["is_deleted"].fillna(False).astype(bool)]
    if entity == "fx_rates":
        latest = latest[latest["currency"].str.upper() != "EUR"]
    return latest.reset_index(drop=True)


def live_records(database: Path | str) -> dict[str, pd.DataFrame]:
    raw = read_raw(database)
    return {entity: resolve_versions(entity, rows) for entity, rows in raw.items()}


# --------------------------------------------------------------------------------------------
# Helpers


def derive_as_of(live: dict[str, pd.DataFrame]) -> pd.Timestamp:
    deals = live["deals"]
    quotes = live["quotes"]
    candidates = [
        live["activities"]["occurred_at"],
        live["marketing_events"]["occurred_at"],
        live["lifecycle_changes"]["changed_at"],
        live["deal_stage_changes"]["changed_at"],
        deals["created_at"],
        deals.loc[deals["stage"].isin(CLOSED_STAGES), "closed_at"],
        quotes.loc[quotes["status"] != "draft", "sent_at"],
    ]
    return max(s.max() for s in candidates if s.notna().any())


def _instant(value: datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError("as_of must carry a timezone")
    return stamp.tz_convert("UTC")


def local_month(instants: pd.Series) -> pd.Series:
    """First day (a `date`) of the local calendar month of each instant; NaT → None."""
    local = instants.dt.tz_convert(BUSINESS_TIMEZONE)
    return pd.Series(
        [None if pd.isna(t) else date(t.year, t.month, 1) for t in local],
        index=instants.index,
        dtype=object,
    )


def local_week(instants: pd.Series) -> pd.Series:
    """Monday (a `date`) of the local ISO week of each instant; NaT → None."""
    local = instants.dt.tz_convert(BUSINESS_TIMEZONE)
    return pd.Series(
        [
            None if pd.isna(t) else (t.normalize() - pd.Timedelta(days=t.weekday())).date()
            for t in local
        ],
        index=instants.index,
        dtype=object,
    )


def _first_per(frame: pd.DataFrame, group: str, order: list[str]) -> pd.DataFrame:
    """The first row per `group` value by `order` (ascending; ids compare as strings)."""
    ranked = frame.sort_values([group, *order], kind="mergesort")
    return ranked.drop_duplicates(group, keep="first").set_index(group)


def _ids(values: Iterable[object]) -> set[str]:
    return {v for v in values if isinstance(v, str)}


def _user_team(users: pd.DataFrame) -> pd.Series:
    team = users["team"].where(users["team"].notna() & (users["team"] != ""), UNASSIGNED)
    return pd.Series(team.to_numpy(), index=users["user_id"].to_numpy(), dtype=object)


# --------------------------------------------------------------------------------------------
# The marts


def compute_marts(
    live: dict[str, pd.DataFrame], as_of: datetime | pd.Timestamp | None = None
) -> OracleMarts:
    as_of_ts = derive_as_of(live) if as_of is None else _instant(as_of)

    users = live["users"]
    companies = live["companies"]
    contacts = live["contacts"].copy()
    events = live["marketing_events"]
    events = events[events["occurred_at"] <= as_of_ts]
    labels = live["lifecycle_changes"]
    labels = labels[labels["changed_at"] <= as_of_ts]
    activities = live["activities"]
    activities = activities[activities["occurred_at"] <= as_of_ts].copy()
    stage_changes = live["deal_stage_changes"]

    # Deals as of `as_of`: created after it → ignored; closed after it → open.
    deals = live["deals"]
    deals = deals[deals["created_at"] <= as_of_ts].copy()
    deals["is_closed"] = (
        deals["stage"].isin(CLOSED_STAGES)
        & deals["closed_at"].notna()
        & (deals["closed_at"] <= as_of_ts)
    )
    deals["closed_at_eff"] = deals["closed_at"].where(deals["is_closed"])
    deals["is_won"] = deals["is_closed"] & (deals["stage"] == "closed_won")
    deal_ids = _ids(deals["deal_id"])

    # Quotes that count: live, not draft, sent at or before `as_of`, on an as-of deal.
    quotes = live["quotes"]
    quotes = quotes[
        (quotes["status"] != "draft")
        & quotes["sent_at"].notna()
        & (quotes["sent_at"] <= as_of_ts)
        & quotes["deal_id"].isin(deal_ids)
    ]

    user_team = _user_team(users)
    rep_ids = _ids(users.loc[users["role"].isin(SALES_REP_ROLES), "user_id"])
    company_ids = _ids(companies["company_id"])
    contact_ids = _ids(contacts["contact_id"])

    # ---- dim_leads -------------------------------------------------------------------------
    leads = contacts.set_index("contact_id", drop=False)
    email = leads["email"].astype(object)
    # the text after the last @, without Unicode's space separators (Zs) at its ends,
    # lower-cased with a capital Σ as σ wherever it stands (README, "Engines")
    domain = email.map(
        lambda e: e.rsplit("@", 1)[1].strip(SPACE_SEPARATORS).replace("Σ", "σ").lower()
        if isinstance(e, str) and "@" in e else None
    )
    leads["is_fit"] = (
        domain.map(lambda d: isinstance(d, str) and d != "" and d not in FREE_MAIL_DOMAINS)
        & leads["company_id"].isin(company_ids)
    ).astype(bool)

    new_business = deals[
        (deals["deal_type"] == "new_business") & deals["contact_id"].isin(contact_ids)
    ]
    first_deal = _first_per(new_business, "contact_id", ["created_at", "deal_id"])
    leads["sales_lead_deal_id"] = first_deal["deal_id"].reindex(leads.index)
    leads["sales_lead_at"] = first_deal["created_at"].reindex(leads.index)

    intent = events[
        events["event_type"].isin(INTENT_EVENT_TYPES)
        & events["contact_id"].isin(_ids(leads.index[leads["is_fit"]]))
    ].copy()
    intent["sales_lead_at"] = intent["contact_id"].map(leads["sales_lead_at"])
    intent = intent[
        intent["sales_lead_at"].isna() | (intent["occurred_at"] <= intent["sales_lead_at"])
    ]
    qualifying = _first_per(intent, "contact_id", ["occurred_at", "event_id"])
    leads["marketing_lead_at"] = qualifying["occurred_at"].reindex(leads.index)
    leads["qualifying_event_id"] = qualifying["event_id"].reindex(leads.index)
    leads["qualifying_event_type"] = qualifying["event_type"].reindex(leads.index)

    nb_quotes = quotes.merge(
        new_business[["deal_id", "contact_id"]], on="deal_id", how="inner"
    )
    leads["quote_at"] = nb_quotes.groupby("contact_id")["sent_at"].min().reindex(leads.index)
    won = new_business[new_business["is_won"]]
    leads["customer_at"] = (
        won.groupby("contact_id")["closed_at_eff"].min().reindex(leads.index)
    )

    leads["stage"] = "none"
    for stage in STAGES:  # furthest wins
        leads.loc[leads[STAGE_COLUMNS[stage]].notna(), "stage"] = stage
    leads["lead_origin"] = np.where(
        leads["marketing_lead_at"].notna(),
        "marketing",
        np.where(leads["sales_lead_at"].notna(), "sales", None),
    )
    owner_is_rep = leads["owner_user_id"].isin(rep_ids)
    leads["team"] = np.where(
        owner_is_rep, leads["owner_user_id"].map(user_team), UNASSIGNED
    )

    # The latest label: by changed_at, then the largest change_id.
    ordered = labels[labels["contact_id"].isin(contact_ids)].sort_values(
        ["contact_id", "changed_at", "change_id"], kind="mergesort"
    )
    latest_label = ordered.drop_duplicates("contact_id", keep="last").set_index("contact_id")
    leads["crm_label"] = latest_label["lifecycle_stage"].reindex(leads.index)
    label_at = latest_label["changed_at"].reindex(leads.index)
    set_by = latest_label["changed_by_user_id"].reindex(leads.index)
    leads["crm_label_set_by"] = set_by.where(
        set_by.notna() & (set_by != ""), "automation"
    ).where(leads["crm_label"].notna())
    stage_at_label = pd.Series("none", index=leads.index, dtype=object)
    for stage in STAGES:
        entered = leads[STAGE_COLUMNS[stage]]
        stage_at_label = stage_at_label.where(
            ~(entered.notna() & label_at.notna() & (entered <= label_at)), stage
        )
    leads["stage_at_label"] = stage_at_label
    leads["crm_label_consistent"] = [
        None if not isinstance(label, str) else at in LABEL_AGREES_WITH[label]
        for label, at in zip(leads["crm_label"], stage_at_label, strict=True)
    ]

    dim_leads = leads[
        [
            "contact_id", "company_id", "owner_user_id", "team", "stage", "lead_origin",
            "marketing_lead_at", "sales_lead_at", "quote_at", "customer_at",
            "qualifying_event_id", "qualifying_event_type", "is_fit", "sales_lead_deal_id",
            "crm_label", "crm_label_set_by", "crm_label_consistent", "stage_at_label",
        ]
    ].reset_index(drop=True)

    # ---- fct_funnel_stages -----------------------------------------------------------------
    funnel_rows = []
    for stage_index, stage in enumerate(STAGES):
        reached = dim_leads[dim_leads[STAGE_COLUMNS[stage]].notna()]
        later = [STAGE_COLUMNS[s] for s in STAGES[stage_index + 1 :]]
        exited = (
            reached[later].min(axis=1) if later else pd.Series(pd.NaT, index=reached.index)
        )
        funnel_rows.append(
            pd.DataFrame(
                {
                    "contact_id": reached["contact_id"],
                    "stage": stage,
                    "entered_at": reached[STAGE_COLUMNS[stage]],
                    "exited_at": pd.to_datetime(exited, utc=True),
                    "lead_origin": reached["lead_origin"],
                    "team": reached["team"],
                }
            )
        )
    funnel = pd.concat(funnel_rows, ignore_index=True)
    funnel["entered_month"] = local_month(funnel["entered_at"])

    # ---- fct_activities --------------------------------------------------------------------
    acts = activities
    lead_at = dim_leads.set_index("contact_id")
    contact_company = leads["company_id"].where(leads["company_id"].isin(company_ids))
    won_any = deals[deals["is_won"] & deals["company_id"].isin(company_ids)]
    first_company_win = won_any.groupby("company_id")["closed_at_eff"].min()

    is_rep = acts["owner_user_id"].isin(rep_ids)
    contact_live = acts["contact_id"].isin(contact_ids)
    deal_live = acts["deal_id"].isin(deal_ids)
    duration = acts["duration_seconds"]
    conversation = (
        (acts["activity_type"] == "meeting") & (acts["outcome"] == "held")
    ) | (
        (acts["activity_type"] == "call")
        & (acts["outcome"] == "connected")
        & duration.notna()
        & (duration.fillna(-1) >= MIN_CONVERSATION_SECONDS)
    )
    already_lead = pd.Series(False, index=acts.index)
    for column in ("marketing_lead_at", "sales_lead_at", "customer_at"):
        at = acts["contact_id"].map(lead_at[column])
        already_lead |= (at.notna() & (at < acts["occurred_at"])).astype(bool)
    company = acts["contact_id"].map(contact_company)
    company_win = company.map(first_company_win)
    colleague_of_customer = (company_win.notna() & (company_win < acts["occurred_at"])).astype(
        bool
    )
    cold = (
        is_rep
        & (acts["direction"] == "outbound")
        & contact_live
        & ~already_lead
        & ~colleague_of_customer
    )
    fct_activities = pd.DataFrame(
        {
            "activity_id": acts["activity_id"],
            "activity_type": acts["activity_type"],
            "direction": acts["direction"],
            "outcome": acts["outcome"],
            "occurred_at": acts["occurred_at"],
            "activity_week": local_week(acts["occurred_at"]),
            "activity_month": local_month(acts["occurred_at"]),
            "owner_user_id": acts["owner_user_id"],
            "team": acts["owner_user_id"].map(user_team),
            "contact_id": acts["contact_id"],
            "deal_id": acts["deal_id"],
            "is_sales_conversation": (is_rep & conversation & (contact_live | deal_live)),
            "is_cold_email": cold & (acts["activity_type"] == "email"),
            "is_cold_call": cold & (acts["activity_type"] == "call"),
        }
    ).reset_index(drop=True)
    for flag in ("is_sales_conversation", "is_cold_email", "is_cold_call"):
        fct_activities[flag] = fct_activities[flag].astype(bool)

    # ---- fct_deals -------------------------------------------------------------------------
    attributed_to = deals["closed_at_eff"].where(deals["is_closed"], deals["created_at"])
    attributed_month = local_month(attributed_to)
    rates = _rate_table(live["fx_rates"])
    amount_eur = []
    for amount, currency, month in zip(
        deals["amount"], deals["currency"], attributed_month, strict=True
    ):
        rate = _rate(rates, currency, month)
        amount_eur.append(None if pd.isna(amount) or rate is None else float(amount) * rate)
    stage_as_of = _stage_as_of(deals, stage_changes, as_of_ts)
    fct_deals = pd.DataFrame(
        {
            "deal_id": deals["deal_id"],
            "deal_type": deals["deal_type"],
            "stage": stage_as_of,
            "owner_user_id": deals["owner_user_id"],
            "team": deals["owner_user_id"].map(user_team),
            "contact_id": deals["contact_id"],
            "created_at": deals["created_at"],
            "closed_at": deals["closed_at_eff"],
            "is_won": deals["is_won"].astype(bool),
            "amount": deals["amount"].astype(float),
            "currency": deals["currency"],
            "amount_eur": pd.Series(amount_eur, index=deals.index, dtype=object),
            "first_quote_sent_at": deals["deal_id"].map(
                quotes.groupby("deal_id")["sent_at"].min()
            ),
            "stage_known": stage_as_of.notna(),
        }
    ).reset_index(drop=True)

    return OracleMarts(as_of_ts, dim_leads, funnel, fct_activities, fct_deals)


def _stage_as_of(
    deals: pd.DataFrame, stage_changes: pd.DataFrame, as_of: pd.Timestamp
) -> pd.Series:
    """The deal's stage at `as_of`.

    The current stage, unless the deal closed after `as_of` or its stage history moves after
    it: then the stage of its latest stage change at or before `as_of` (None, i.e. unknown and
    not compared, when it has none, when two changes share that instant, or when that change
    closes the deal although its closed_at is later).
    """
    later = _ids(stage_changes.loc[stage_changes["changed_at"] > as_of, "deal_id"])
    current_holds = deals["is_closed"] | (
        ~deals["stage"].isin(CLOSED_STAGES) & ~deals["deal_id"].isin(later)
    )
    before = stage_changes[stage_changes["changed_at"] <= as_of]
    last_at = before.groupby("deal_id")["changed_at"].transform("max")
    last = before[before["changed_at"] == last_at]
    last = last.groupby("deal_id")["stage"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else None)
    historic = deals["deal_id"].map(last)
    historic = historic.where(~historic.isin(CLOSED_STAGES))
    return deals["stage"].where(current_holds, historic).astype(object)


def _rate_table(fx: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    table: dict[str, list[tuple[str, float]]] = {}
    for currency, month, rate in zip(fx["currency"], fx["month"], fx["rate_to_eur"], strict=True):
        table.setdefault(str(currency).upper(), []).append((str(month), float(rate)))
    for rows in table.values():
        rows.sort()
    return table


def _rate(
    table: dict[str, list[tuple[str, float]]], currency: object, month: date | None
) -> float | None:
    """The rate of `month`, else of the latest earlier month of that currency."""
    code = "EUR" if not isinstance(currency, str) or currency == "" else currency.upper()
    if code == "EUR":
        return 1.0
    if month is None:
        return None
    wanted = f"{month.year:04d}-{month.month:02d}"
    best = None
    for rate_month, rate in table.get(code, []):
        if rate_month <= wanted:
            best = rate
    return best


def oracle_from_warehouse(
    database: Path | str, as_of: datetime | pd.Timestamp | None = None
) -> OracleMarts:
    """The four marts, computed from the raw layer of `database` (read-only)."""
    return compute_marts(live_records(database), as_of)
