"""`sales-kpi explain CONTACT_ID`: why a contact has its stage, in words.

Every rule has one home, the dbt project; this module only reads meaning. It opens nothing
but the published file (`<warehouse>/marts.duckdb`, read-only), so it explains exactly what
readers of the marts see, and it keeps working when the build database is gone. Each fact it
prints is a column computed, tested and documented in dbt:

- `dim_leads`: the stage, its timestamps, fit facts, the qualifying event or why none
  qualified, the sales-lead deal, the CRM label with what it means (`crm_label_means`) and the
  stage at its time, and the stage-order breach (`has_order_breach`, `order_breach`);
- `fct_marketing_event_judgements`: each marketing event with its judgement and reason;
- `dim_reps` and `fct_deals`: the owner and the sales-lead deal;
- `runs`: the as_of of the last publication.

No rule, label list, stage list or threshold is restated here: when a definition changes, the
explanation changes with the marts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from pipelines.publish import attached_table, open_published
from pipelines.safe_text import single_line

_LEAD_ORIGIN = {"marketing": "marketing", "sales": "sales (sales-sourced)"}


class ContactNotFound(LookupError):
    """The contact is not a live contact of the last published run."""


@dataclass(frozen=True)
class _Published:
    """A read-only connection to the published file that knows where its tables are."""

    con: duckdb.DuckDBPyConnection
    catalog: str

    def table(self, name: str) -> str:
        """The qualified name of a published table (the publisher knows the layout)."""
        return attached_table(self.con, self.catalog, name)

    def one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        """The first row of `sql` as a dict (None when there is none)."""
        cursor = self.con.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        names = [column[0] for column in cursor.description or ()]
        return dict(zip(names, row, strict=True))

    def all(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """Every row of `sql` as dicts."""
        cursor = self.con.execute(sql, params)
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _as_text(row: dict[str, Any]) -> dict[str, Any]:
    """A row's text values as they may stand inside one line of the explanation: names,
    labels and ids are CRM data, so a line break or a control character in one is escaped
    (single_line) and cannot forge a line (the CLI escapes what steers a terminal, not line
    breaks, which its own text has). For showing only: lookups use the values as they are."""
    return {name: single_line(value) if isinstance(value, str) else value
            for name, value in row.items()}


def _fmt(value: datetime | None, tz: ZoneInfo) -> str:
    if value is None:
        return "—"
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def explain_contact(
    published_database: Path, contact_id: str, timezone: str = "Europe/Amsterdam"
) -> str:
    """The explanation of one contact, read from the published marts only."""
    tz = ZoneInfo(timezone)
    with open_published(published_database) as con:
        con.execute("set TimeZone = 'UTC'")
        catalog = con.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        marts = _Published(con, catalog)
        lead = marts.one(f"select * from {marts.table('dim_leads')} where contact_id = ?",
                         [contact_id])
        if lead is None:
            raise ContactNotFound(
                f"contact {contact_id!r} is not a live contact of the last published run "
                "(deleted, or not in the extracts)"
            )
        run = marts.one(
            f"select as_of from {marts.table('runs')} order by published_at desc limit 1", []
        )
        events = marts.all(
            f"select event_id, event_type, occurred_at, judgement, judgement_reason "
            f"from {marts.table('fct_marketing_event_judgements')} "
            f"where contact_id = ? order by occurred_at, event_id",
            [contact_id],
        )
        owner = marts.one(
            f"select full_name, role, is_sales_rep from {marts.table('dim_reps')} "
            f"where user_id = ?",
            [lead["owner_user_id"]],
        )
        deal = None
        if lead["sales_lead_deal_id"] is not None:
            deal = marts.one(
                f"select deal_type, stage, owner_user_id from {marts.table('fct_deals')} "
                f"where deal_id = ?",
                [lead["sales_lead_deal_id"]],
            )
    as_of = run["as_of"] if run else None
    # looked up with the values as they are; shown escaped, one line each
    return "\n".join(_lines(
        single_line(contact_id), _as_text(lead), as_of, owner and _as_text(owner),
        deal and _as_text(deal), [_as_text(event) for event in events], tz,
    ))


def _lines(
    contact_id: str,
    lead: dict[str, Any],
    as_of: datetime | None,
    owner: dict[str, Any] | None,
    deal: dict[str, Any] | None,
    events: list[dict[str, Any]],
    tz: ZoneInfo,
) -> list[str]:
    """The explanation, line by line: wording only, every judgement is a column already."""
    lines = [
        f"Contact {contact_id} — stage: {lead['stage']} "
        f"(definitions {lead['definitions_version']}, as of {_fmt(as_of, tz)})",
    ]
    if owner:
        rep = "a sales rep" if owner["is_sales_rep"] else f"not a sales rep ({owner['role']})"
        lines.append(
            f"  team: {lead['team']} — owner {lead['owner_user_id']} ({owner['full_name']}), {rep}"
        )
    elif lead["owner_user_id"] is None:
        lines.append(f"  team: {lead['team']} — no owner")
    else:
        lines.append(f"  team: {lead['team']} — owner {lead['owner_user_id']}, not a known user")

    lines.append(f"  fit: {_fit(lead)}")
    if lead["marketing_lead_at"] is not None:
        lines.append(
            f"  marketing lead: {_fmt(lead['marketing_lead_at'], tz)} — qualifying event "
            f"{lead['qualifying_event_id']} ({lead['qualifying_event_type']})"
        )
    else:
        reason = lead["no_marketing_lead_reason"] or "none qualified"
        lines.append(f"  marketing lead: no — {reason}")
    if lead["sales_lead_at"] is not None:
        detail = (
            f" ({deal['deal_type']}, now {deal['stage']}, owner {deal['owner_user_id']})"
            if deal else ""
        )
        lines.append(
            f"  sales lead: {_fmt(lead['sales_lead_at'], tz)} — deal "
            f"{lead['sales_lead_deal_id']}{detail}"
        )
    else:
        lines.append("  sales lead: no — no new_business deal with this contact as primary contact")
    lines.append(f"  quote: {_fmt(lead['quote_at'], tz)}")
    lines.append(f"  customer: {_fmt(lead['customer_at'], tz)}")
    lines.append(f"  origin: {_LEAD_ORIGIN.get(lead['lead_origin'] or '', 'none (not a lead)')}")
    lines.append(f"  CRM label: {_label(lead, tz)}")
    if lead["has_order_breach"]:
        lines.append(f"  stage order: BREACH — {lead['order_breach']}")

    if events:
        lines.append("  marketing events:")
        lines.extend(
            f"    {_fmt(e['occurred_at'], tz)}  {e['event_id']}  {e['event_type']:<22} "
            f"{e['judgement_reason']}"
            for e in events
        )
    else:
        lines.append("  marketing events: none")
    return lines


def _fit(lead: dict[str, Any]) -> str:
    """Fit in words, from the fit facts dim_leads publishes (is_fit decides; this names why)."""
    domain = lead["email_domain"]
    if lead["is_fit"]:
        return f"yes (domain {domain}, company {lead['company_id']})"
    reasons = []
    if domain is None:
        reasons.append("no e-mail domain")
    elif lead["is_free_mail"]:
        reasons.append(f"free-mail domain {domain}")
    if not lead["has_live_company"]:
        reasons.append(
            f"company {lead['company_id']} is missing or deleted" if lead["company_id"]
            else "no company"
        )
    return "no — " + ", ".join(reasons)


def _label(lead: dict[str, Any], tz: ZoneInfo) -> str:
    """The CRM label, who set it when, and — when it disagrees — what it means and the stage
    then (both computed in dbt: crm_label_means, crm_label_judged_stage)."""
    if lead["crm_label"] is None:
        return "none (nothing to judge)"
    if lead["crm_label_consistent"]:
        verdict = "consistent"
    else:
        means = lead["crm_label_means"] or "no agreed stage (not an agreed label)"
        verdict = (
            f"INCONSISTENT — it means {means}, "
            f"the agreed stage then was {lead['crm_label_judged_stage']}"
        )
    return (
        f"{lead['crm_label']}, set by {lead['crm_label_set_by']} on "
        f"{_fmt(lead['crm_label_changed_at'], tz)} — {verdict}"
    )
