"""`sales-kpi explain CONTACT_ID`: why a contact has its stage, in words.

Reads the classification (marts.dim_leads) and the facts behind it from the warehouse, so
what it prints is exactly what the marts use.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

LABEL_MEANS = {
    "customer": "customer",
    "sales_qualified_lead": "sales lead or quote",
    "opportunity": "sales lead or quote",
    "marketing_qualified_lead": "marketing lead",
    "subscriber": "none",
    "lead": "none",
    "other": "none",
}


class ContactNotFound(LookupError):
    """The contact is not a live contact of the last build."""


def _fmt(value: datetime | None, tz: ZoneInfo) -> str:
    if value is None:
        return "—"
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def explain_contact(database: Path, contact_id: str, timezone: str = "Europe/Amsterdam") -> str:
    tz = ZoneInfo(timezone)
    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        lead = con.execute(
            "select * from marts.dim_leads where contact_id = ?", [contact_id]
        ).fetchdf()
        if lead.empty:
            deleted = con.execute(
                "select count(*) from raw.contacts where contact_id = ?", [contact_id]
            ).fetchone()[0]  # type: ignore[index]
            hint = (
                "it is deleted (or only in raw)" if deleted else "no such contact in the extracts"
            )
            raise ContactNotFound(f"contact {contact_id!r} is not a live contact: {hint}")
        row = lead.iloc[0].to_dict()
        row = {k: (None if _isnull(v) else v) for k, v in row.items()}
        as_of = con.execute("select as_of from intermediate.int_as_of").fetchone()[0]  # type: ignore[index]
        events = con.execute(
            """
            select e.event_id, e.event_type, e.occurred_at, coalesce(t.is_intent, false)
            from staging.stg_crm__marketing_events as e
            left join definitions.intent_event_types as t using (event_type)
            where e.contact_id = ? order by e.occurred_at, e.event_id
            """,
            [contact_id],
        ).fetchall()
        owner = con.execute(
            "select full_name, role, team, is_sales_rep from marts.dim_reps where user_id = ?",
            [row["owner_user_id"]],
        ).fetchone()
        deal = None
        if row["sales_lead_deal_id"]:
            deal = con.execute(
                "select deal_type, stage, owner_user_id, created_at from marts.fct_deals "
                "where deal_id = ?",
                [row["sales_lead_deal_id"]],
            ).fetchone()

    lines = [
        f"Contact {contact_id} — stage: {row['stage']} "
        f"(definitions {row['definitions_version']}, as of {_fmt(as_of, tz)})",
    ]
    if owner:
        rep = "a sales rep" if owner[3] else f"not a sales rep ({owner[1]})"
        lines.append(f"  team: {row['team']} — owner {row['owner_user_id']} ({owner[0]}), {rep}")
    else:
        lines.append(f"  team: {row['team']} — owner {row['owner_user_id'] or 'none'} unknown")

    domain = row["email_domain"]
    fit_reasons = []
    if domain is None:
        fit_reasons.append("no e-mail domain")
    elif row["is_free_mail"]:
        fit_reasons.append(f"free-mail domain {domain}")
    if not row["has_live_company"]:
        fit_reasons.append(
            f"company {row['company_id']} is missing or deleted" if row["company_id"]
            else "no company"
        )
    fit = "yes" if row["is_fit"] else "no — " + ", ".join(fit_reasons)
    lines.append(
        f"  fit: {fit}"
        + (f" (domain {domain}, company {row['company_id']})" if row["is_fit"] else "")
    )

    if row["marketing_lead_at"] is not None:
        lines.append(
            f"  marketing lead: {_fmt(row['marketing_lead_at'], tz)} — qualifying event "
            f"{row['qualifying_event_id']} ({row['qualifying_event_type']})"
        )
    else:
        reason = row["no_marketing_lead_reason"] or "none qualified"
        lines.append(f"  marketing lead: no — {reason}")
    if row["sales_lead_at"] is not None:
        detail = ""
        if deal:
            detail = f" ({deal[0]}, now {deal[1]}, owner {deal[2]})"
        lines.append(
            f"  sales lead: {_fmt(row['sales_lead_at'], tz)} — deal "
            f"{row['sales_lead_deal_id']}{detail}"
        )
    else:
        lines.append("  sales lead: no — no new_business deal with this contact as primary contact")
    lines.append(f"  quote: {_fmt(row['quote_at'], tz)}")
    lines.append(f"  customer: {_fmt(row['customer_at'], tz)}")
    origin = {"marketing": "marketing", "sales": "sales (sales-sourced)"}.get(
        row["lead_origin"] or "", "none (not a lead)"
    )
    lines.append(f"  origin: {origin}")

    if row["crm_label"] is None:
        lines.append("  CRM label: none (nothing to judge)")
    else:
        verdict = (
            "consistent" if row["crm_label_consistent"]
            else f"INCONSISTENT — it means {LABEL_MEANS.get(row['crm_label'], '?')}, "
            f"the agreed stage then was {row['crm_label_judged_stage']}"
        )
        lines.append(
            f"  CRM label: {row['crm_label']}, set by {row['crm_label_set_by']} on "
            f"{_fmt(row['crm_label_changed_at'], tz)} — {verdict}"
        )

    if events:
        lines.append("  marketing events:")
        for event_id, event_type, occurred_at, is_intent in events:
            if as_of is not None and occurred_at > as_of:
                note = "after as_of: not yet happened"
            elif event_id == row["qualifying_event_id"]:
                note = "QUALIFYING"
            elif not is_intent:
                note = "not intent"
            elif not row["is_fit"]:
                note = "intent, but the contact is not fit"
            elif row["sales_lead_at"] is not None and occurred_at > row["sales_lead_at"]:
                note = "intent, but after becoming a sales lead"
            else:
                note = "intent, later than the qualifying event"
            lines.append(f"    {_fmt(occurred_at, tz)}  {event_id}  {event_type:<22} {note}")
    else:
        lines.append("  marketing events: none")
    return "\n".join(lines)


def _isnull(value: object) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
