"""Twins of a canonical extract: the same facts as a Salesforce export and as a HubSpot export.

The source adapters (pipelines/adapters, presets `salesforce` and `hubspot`) turn a CRM's own
export back into the canonical extract. To test that they keep every fact, these writers do the
opposite: from one canonical extract (e.g. `generate_sample`'s) they write what that CRM would
have exported — its objects, API field names or column headers, id fields and vocabularies —
delivery by delivery (full, then the deltas), keeping the canonical ids as the CRM's record
ids wherever the CRM has a record for the fact. Run through the preset, a twin must give the
same marts as the canonical extract (tests/test_source_twins.py).

Where a CRM's standard objects have no field for a canonical fact, the writer puts it where the
preset's documented derivation looks for it (docs/sources.md), e.g. a Salesforce meeting's
outcome in the Event's subject and end time, a quote's sent time in QuoteHistory.

The canonical extract is read with the loader's own readers (so a naive timestamp means what
it means to the loader) into DuckDB, and every export file is one set-based query written with
COPY: no per-row Python. Files are byte-stable for the same input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.contract import ENTITIES
from pipelines.ingest.landing import scan_landing
from pipelines.ingest.readers import TEXT_TABLE, read_as_text
from pipelines.ingest.validation import checked_select, match_columns, sql_type
from pipelines.sql_text import quote_ident, sql_literal

# A user id that is no exported user: Salesforce's "Automated Process" user, an integration
# user. Salesforce always fills CreatedById; the presets read a change made by anyone who is not
# in the user export as an automation (changed_by_user_id empty).
SF_AUTOMATION_USER = "005-AUTOMATION"
# The lead queue that owns Salesforce leads without an owner (a queue is no user).
SF_LEAD_QUEUE = "00G-LEAD-QUEUE"
# Salesforce requires a lead's company; orgs type this placeholder when there is none.
SF_NO_COMPANY = "[not provided]"

# Canonical value → the Salesforce value the twin writes (the preset maps it back; its
# vocabularies accept more spellings than these).
SF_ROLES = {
    "sdr": "Sales Development Representative",
    "ae": "Account Executive",
    "manager": "Sales Manager",
    "marketing": "Marketing Manager",
}
SF_LIFECYCLE = {
    "subscriber": "Subscriber",
    "lead": "Open - Not Contacted",
    "marketing_qualified_lead": "Marketing Qualified",
    "sales_qualified_lead": "Sales Qualified",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "other": "Closed - Not Converted",
}
# event type → (Campaign.Type, CampaignMember.Status)
SF_CAMPAIGN_TYPES = {
    "newsletter_signup": ("Email", "Responded"),
    "linkedin_follow": ("Social Media", "Responded"),
    "content_download": ("Content", "Responded"),
    "webinar_registration": ("Webinar", "Registered"),
    "webinar_attended": ("Webinar", "Attended"),
    "event_visit": ("Trade Show", "Attended"),
    "chat_conversation": ("Chat", "Responded"),
    "contact_form": ("Website", "Responded"),
    "demo_request": ("Demo Request", "Responded"),
    "pricing_request": ("Pricing Request", "Responded"),
    "trial_signup": ("Trial", "Responded"),
}
SF_CALL_RESULTS = {
    "connected": "Connected",
    "no_answer": "No Answer",
    "voicemail": "Left Voicemail",
    "busy": "Busy",
    "wrong_number": "Wrong Number",
    "sent": "Sent",
    "replied": "Replied",
}
SF_DEAL_TYPES = {
    "new_business": "New Customer",
    "upsell": "Existing Customer - Upgrade",
    "renewal": "Renewal",
}
SF_STAGES = {
    "qualification": "Qualification",
    "discovery": "Needs Analysis",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "closed_won": "Closed Won",
    "closed_lost": "Closed Lost",
}
# Country names as people type them (Salesforce's BillingCountry, HubSpot's Country/Region).
COUNTRY_NAMES = {"NL": "Netherlands", "BE": "Belgium", "DE": "Germany", "LU": "Luxembourg"}
SF_QUOTE_STATUSES = {
    "draft": "Draft",
    "sent": "Presented",
    "accepted": "Accepted",
    "rejected": "Denied",
    "expired": "Expired",
}


@dataclass(frozen=True)
class TwinSummary:
    """What a twin writer wrote: rows per `<delivery>/<file>`."""

    out_dir: Path
    deliveries: list[str]
    files: dict[str, int] = field(default_factory=dict)


class TwinError(ValueError):
    """The canonical extract cannot be twinned (e.g. it holds rows the loader would reject)."""


def read_canonical(
    con: duckdb.DuckDBPyConnection, extract_dir: Path, timezone: str = "Europe/Amsterdam"
) -> list[str]:
    """Load every canonical file into `c_<entity>` (typed as the loader types them, plus
    `_delivery` and `_line`); return the deliveries in order. A twin is made of valid facts, so
    a value the loader would quarantine is an error here."""
    con.execute("set TimeZone = 'UTC'")
    for entity in ENTITIES.values():
        columns = ", ".join(f"{quote_ident(c.name)} {sql_type(c)}" for c in entity.columns)
        con.execute(
            f"create or replace table c_{entity.name} ({columns}, _extra_columns varchar, "
            "_delivery varchar, _line bigint)"
        )
    files, _notes = scan_landing(Path(extract_dir))
    for file in files:
        entity = ENTITIES[file.entity]
        relation = read_as_text(con, file)
        match = match_columns(entity, relation.columns)
        select = checked_select(entity, match, timezone, TEXT_TABLE, relation.line)
        con.execute(f"create or replace temp table twin_checked as {select}")
        problems = " or ".join(f"{quote_ident('_err_' + c.name)} is not null"
                               for c in entity.columns)
        bad = con.execute(f"select count(*) from twin_checked where {problems}").fetchone()
        if bad and bad[0]:
            raise TwinError(f"{file.label}: {bad[0]} rows the loader would quarantine; a twin "
                            "needs a valid extract")
        names = ", ".join(quote_ident(c.name) for c in entity.columns)
        con.execute(
            f"insert into c_{entity.name} select {names}, _extra_columns, "
            f"{sql_literal(file.delivery)}, _line from twin_checked"
        )
    return sorted({file.delivery for file in files})


class _Writer:
    """COPY helpers shared by the two twins."""

    def __init__(self, con: duckdb.DuckDBPyConnection, out_dir: Path, timezone: str) -> None:
        self.con = con
        self.out_dir = out_dir
        self.tz = sql_literal(timezone)
        self.files: dict[str, int] = {}

    def values(self, name: str, pairs: dict[str, str] | dict[str, tuple[str, str]]) -> None:
        """A small vocabulary table `name(k, v[, v2])` from a Python dict, for joins."""
        rows = [(key, *(value if isinstance(value, tuple) else (value,)))
                for key, value in pairs.items()]
        names = ", ".join(["k", "v", *(f"v{i}" for i in range(2, len(rows[0])))])
        values = ", ".join("(" + ", ".join(sql_literal(v) for v in row) + ")" for row in rows)
        self.con.execute(f"create or replace temp table {name} as "
                         f"select * from (values {values}) as t({names})")

    def write(self, delivery: str, name: str, query: str) -> None:
        """Write the query's rows as `<out>/<delivery>/<name>` (no file when it has none)."""
        count = self.con.execute(f"select count(*) from ({query})").fetchone()
        if not count or not count[0]:
            return
        folder = self.out_dir / delivery
        folder.mkdir(parents=True, exist_ok=True)
        self.con.execute(
            f"copy ({query}) to {sql_literal(str(folder / name))} "
            "(format csv, header true, delimiter ',', quote '\"', escape '\"')"
        )
        self.files[f"{delivery}/{name}"] = int(count[0])


def _api_ts(column: str) -> str:
    """An instant as both CRMs' APIs write it: UTC with milliseconds,
    `2026-11-24T08:52:23.000Z`."""
    return f"strftime({column}, '%Y-%m-%dT%H:%M:%S.%gZ')"


def _prepare_out(out_dir: Path) -> Path:
    """A new or empty folder: a twin never mixes with an earlier one's files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise TwinError(f"{out_dir} is not empty: a twin is written into a new folder")
    return out_dir


# --- Salesforce -------------------------------------------------------------------------------


def write_salesforce_twin(
    extract_dir: Path, out_dir: Path, timezone: str = "Europe/Amsterdam"
) -> TwinSummary:
    """Write the Salesforce export (Data Loader CSVs named after their objects) of the
    canonical extract in `extract_dir`, one folder per canonical delivery.

    Who is a Lead and who a Contact: a person on a deal (its primary contact, or on an
    activity about a deal) must be a Contact; the others stay unconverted Leads — unless their
    company cannot be named unambiguously by its Account name (a lead names its company as
    text only). A Contact with any marketing or label history was converted from a Lead (that
    Lead, `L-<contact id>`, keeps the history from before the conversion); the rest were
    created as Contacts. Canonical ids stay the record ids: users, accounts, leads and contacts
    (the Contact of a converted lead), campaign members, tasks and events, opportunities,
    quotes.
    """
    out_dir = _prepare_out(out_dir)
    with duckdb.connect() as con:
        deliveries = read_canonical(con, extract_dir, timezone)
        writer = _Writer(con, out_dir, timezone)
        _sf_check_meetings(con)
        _sf_vocabularies(writer)
        _sf_people(writer)
        for delivery in deliveries:
            _sf_delivery(writer, delivery)
    return TwinSummary(out_dir, deliveries, writer.files)


def _sf_check_meetings(con: duckdb.DuckDBPyConnection) -> None:
    """The preset calls a meeting held once it ended before the delivery's date (an Event has
    no outcome); a held meeting ending on its delivery's own date cannot be twinned."""
    late = con.execute("""
        select activity_id, _delivery from c_activities
        where activity_type = 'meeting' and outcome = 'held'
          and strftime(occurred_at + to_seconds(coalesce(duration_seconds, 0)), '%Y-%m-%d')
              >= substr(_delivery, 1, 10)
        order by 1 limit 3
    """).fetchall()
    if late:
        raise TwinError(
            "held meetings ending on their delivery's date (UTC), which the Salesforce preset "
            f"reads as still to come: {', '.join(f'{a} in {d}' for a, d in late)}"
        )


def _sf_vocabularies(w: _Writer) -> None:
    w.values("sf_roles", SF_ROLES)
    w.values("sf_lifecycle", SF_LIFECYCLE)
    w.values("sf_campaign_types", SF_CAMPAIGN_TYPES)
    w.values("sf_call_results", SF_CALL_RESULTS)
    w.values("sf_deal_types", SF_DEAL_TYPES)
    w.values("sf_stages", SF_STAGES)
    w.values("sf_quote_statuses", SF_QUOTE_STATUSES)
    w.values("countries", COUNTRY_NAMES)


def _sf_people(w: _Writer) -> None:
    """`sf_people`: per canonical contact, its kind (lead / converted / contact), when a
    converted lead was converted, and the delivery it first appears in."""
    w.con.execute("""
        create or replace temp table sf_people as
        with versions as (select * from c_contacts),
        name_use as (
            select lower(name) as lname, count(distinct company_id) as companies
            from c_companies group by 1
        ),
        named_once as (
            select company_id from c_companies join name_use on lower(name) = lname
            group by company_id having max(companies) = 1
        ),
        must_be_contact as (
            select contact_id from c_deals where contact_id is not null
            union select contact_id from c_activities
                  where deal_id is not null and contact_id is not null
            union select contact_id from versions
                  where company_id is not null
                    and company_id not in (select company_id from named_once)
        ),
        with_history as (
            select contact_id from c_lifecycle_changes
            union select contact_id from c_marketing_events
        ),
        first_deal as (select contact_id, min(created_at) as at from c_deals group by 1),
        firsts as (
            select contact_id, min(updated_at) as updated_at, min(created_at) as created_at,
                   min(_delivery) as first_delivery
            from versions group by 1
        )
        select
            firsts.contact_id,
            case
                when firsts.contact_id not in (select contact_id from must_be_contact)
                    then 'lead'
                when firsts.contact_id in (select contact_id from with_history) then 'converted'
                else 'contact'
            end as kind,
            greatest(firsts.created_at,
                     least(coalesce(first_deal.at, firsts.updated_at), firsts.updated_at))
                as converted_at,
            'L-' || firsts.contact_id as lead_id,
            firsts.first_delivery
        from firsts left join first_deal using (contact_id)
    """)
    # Every company's latest name: how a lead names its company.
    w.con.execute("""
        create or replace temp table sf_company_names as
        select company_id, arg_max(name, (updated_at, _delivery, _line)) as name
        from c_companies group by 1
    """)


def _sf_delivery(w: _Writer, d: str) -> None:
    """Every Salesforce object file of delivery `d`."""
    at = sql_literal(d)
    tz = w.tz
    ts = _api_ts

    # User (+ UserRole, Profile: exported with the users, as their names are only there).
    w.write(d, "User.csv", f"""
        select user_id as Id, email as Username,
               split_part(full_name, ' ', 1) as FirstName,
               nullif(substr(full_name, strpos(full_name, ' ') + 1), full_name) as LastName,
               full_name as Name, email as Email,
               case when role <> 'other' then 'ROLE-' || upper(role) end as UserRoleId,
               case role when 'other' then 'PROFILE-ADMIN'
                         when 'marketing' then 'PROFILE-MARKETING'
                         else 'PROFILE-STANDARD' end as ProfileId,
               team as Department, is_active as IsActive, 'Standard' as UserType,
               {ts('updated_at')} as LastModifiedDate
        from c_users where _delivery = {at} order by _line
    """)
    if (d + "/User.csv") in w.files:
        w.write(d, "UserRole.csv", """
            select 'ROLE-' || upper(k) as Id, v as Name,
                   replace(v, ' ', '_') as DeveloperName
            from sf_roles order by Id
        """)
        w.write(d, "Profile.csv", """
            select * from (values ('PROFILE-ADMIN', 'System Administrator'),
                                  ('PROFILE-MARKETING', 'Marketing User'),
                                  ('PROFILE-STANDARD', 'Standard User')) as t(Id, Name)
        """)

    w.write(d, "Account.csv", f"""
        select c.company_id as Id, c.name as Name,
               case when c.domain is not null then 'www.' || c.domain end as Website,
               c.industry as Industry, c.employee_count as NumberOfEmployees,
               coalesce(n.v, c.country) as BillingCountry, c.country as BillingCountryCode,
               'Prospect' as Type, {ts('c.created_at')} as CreatedDate,
               {ts('c.updated_at')} as LastModifiedDate, c.is_deleted as IsDeleted
        from c_companies c left join countries n on n.k = c.country
        where c._delivery = {at} order by c._line
    """)

    # Lead: every version of an unconverted lead; a converted lead once, frozen at conversion.
    lead_status = """(select v from sf_lifecycle where k = (
            select arg_max(lifecycle_stage, (changed_at, change_id)) from c_lifecycle_changes lc
            where lc.contact_id = c.contact_id and lc.changed_at <= c.updated_at))"""
    w.write(d, "Lead.csv", f"""
        with leads as (
            select c.contact_id as Id, coalesce(n.name, {sql_literal(SF_NO_COMPANY)}) as Company,
                   c.first_name as FirstName, c.last_name as LastName, c.email as Email,
                   c.job_title as Title,
                   coalesce({lead_status}, 'Open - Not Contacted') as Status,
                   coalesce(c.owner_user_id, {sql_literal(SF_LEAD_QUEUE)}) as OwnerId,
                   false as IsConverted, null as ConvertedContactId, null as ConvertedAccountId,
                   null as ConvertedDate, {ts('c.created_at')} as CreatedDate,
                   {ts('c.updated_at')} as LastModifiedDate, c.is_deleted as IsDeleted,
                   c._line as _order
            from c_contacts c join sf_people p using (contact_id)
            left join sf_company_names n on n.company_id = c.company_id
            where c._delivery = {at} and p.kind = 'lead'
            union all
            select p.lead_id, coalesce(n.name, {sql_literal(SF_NO_COMPANY)}), c.first_name,
                   c.last_name, c.email, c.job_title, 'Closed - Converted',
                   coalesce(c.owner_user_id, {sql_literal(SF_AUTOMATION_USER)}), true,
                   c.contact_id, c.company_id,
                   strftime(timezone({tz}, p.converted_at), '%Y-%m-%d'),
                   {ts('c.created_at')}, {ts('p.converted_at')}, false, c._line
            from c_contacts c join sf_people p using (contact_id)
            left join sf_company_names n on n.company_id = c.company_id
            where c._delivery = {at} and p.kind = 'converted' and p.first_delivery = {at}
            qualify row_number() over (partition by c.contact_id order by c._line) = 1
        )
        select * exclude (_order) from leads order by _order, Id
    """)

    # Contact: the current record of a converted lead (created at the conversion) or of a
    # person created as a contact.
    w.write(d, "Contact.csv", f"""
        select c.contact_id as Id, c.company_id as AccountId, c.first_name as FirstName,
               c.last_name as LastName, c.email as Email, c.job_title as Title,
               coalesce(c.owner_user_id, {sql_literal(SF_AUTOMATION_USER)}) as OwnerId,
               {ts("case when p.kind = 'converted' then p.converted_at else c.created_at end")}
                   as CreatedDate,
               {ts('c.updated_at')} as LastModifiedDate, c.is_deleted as IsDeleted
        from c_contacts c join sf_people p using (contact_id)
        where c._delivery = {at} and p.kind <> 'lead'
        order by c._line
    """)

    # LeadHistory / ContactHistory: the lifecycle label. Before a conversion it is the Lead's
    # Status; after it (and for people created as contacts) a Contact picklist.
    history = f"""
        select lc.change_id as Id, lc.contact_id, p.kind, p.lead_id, p.converted_at,
               lc.changed_at, lc.is_deleted, lc._line,
               lag(lc.lifecycle_stage) over (partition by lc.contact_id
                                             order by lc.changed_at, lc.change_id) as old_stage,
               lc.lifecycle_stage,
               coalesce(lc.changed_by_user_id, {sql_literal(SF_AUTOMATION_USER)}) as by_user,
               lc._delivery
        from c_lifecycle_changes lc left join sf_people p using (contact_id)
    """
    lead_era = ("(h.kind is null or h.kind = 'lead' "
                "or (h.kind = 'converted' and h.changed_at < h.converted_at))")
    w.write(d, "LeadHistory.csv", f"""
        select h.Id, case when h.kind = 'converted' then h.lead_id else h.contact_id end
                   as LeadId,
               'Status' as Field, 'Text' as DataType, o.v as OldValue, n.v as NewValue,
               {ts('h.changed_at')} as CreatedDate, h.by_user as CreatedById,
               h.is_deleted as IsDeleted
        from ({history}) h join sf_lifecycle n on n.k = h.lifecycle_stage
        left join sf_lifecycle o on o.k = h.old_stage
        where h._delivery = {at} and {lead_era}
        order by h._line
    """)
    w.write(d, "ContactHistory.csv", f"""
        select h.Id, h.contact_id as ContactId, 'Lifecycle_Stage__c' as Field,
               'Text' as DataType, o.v as OldValue, n.v as NewValue,
               {ts('h.changed_at')} as CreatedDate, h.by_user as CreatedById,
               h.is_deleted as IsDeleted
        from ({history}) h join sf_lifecycle n on n.k = h.lifecycle_stage
        left join sf_lifecycle o on o.k = h.old_stage
        where h._delivery = {at} and not {lead_era}
        order by h._line
    """)

    # Campaign + CampaignMember: one campaign per name and type; canonical events without a
    # campaign go to an always-on campaign of their type (Salesforce has no member without one).
    campaigns = """
        select distinct coalesce(e.campaign, 'Always-on: ' || t.v) as Name, t.v as Type,
               'CMP-' || substr(md5(coalesce(e.campaign, 'Always-on: ' || t.v) || '|' || t.v),
                                1, 12) as Id
        from c_marketing_events e join sf_campaign_types t on t.k = e.event_type
    """
    w.write(d, "Campaign.csv", f"""
        select Id, Name, Type, 'In Progress' as Status, true as IsActive
        from ({campaigns}) where Id in (
            select 'CMP-' || substr(md5(coalesce(e.campaign, 'Always-on: ' || t.v) || '|'
                                        || t.v), 1, 12)
            from c_marketing_events e join sf_campaign_types t on t.k = e.event_type
            where e._delivery = {at})
        order by Name, Type
    """)
    w.write(d, "CampaignMember.csv", f"""
        select e.event_id as Id,
               'CMP-' || substr(md5(coalesce(e.campaign, 'Always-on: ' || t.v) || '|' || t.v),
                                1, 12) as CampaignId,
               case when p.kind is null or p.kind = 'lead' then e.contact_id
                    when p.kind = 'converted' and e.occurred_at < p.converted_at
                        then p.lead_id end as LeadId,
               case when p.kind in ('converted', 'contact') then e.contact_id end as ContactId,
               t.v2 as Status, true as HasResponded,
               strftime(timezone({tz}, e.occurred_at), '%Y-%m-%d') as FirstRespondedDate,
               {ts('e.occurred_at')} as CreatedDate, {ts('e.occurred_at')} as LastModifiedDate,
               e.is_deleted as IsDeleted
        from c_marketing_events e join sf_campaign_types t on t.k = e.event_type
        left join sf_people p using (contact_id)
        where e._delivery = {at} order by e._line
    """)

    # Task: calls, e-mails, LinkedIn messages, to-dos and notes (a Task of Type 'Note').
    w.write(d, "Task.csv", f"""
        select a.activity_id as Id, a.contact_id as WhoId, a.deal_id as WhatId,
               a.owner_user_id as OwnerId,
               case a.activity_type when 'call' then 'Call' when 'email' then 'Email'
                    when 'linkedin_message' then 'LinkedIn' else 'Task' end as TaskSubtype,
               case a.activity_type when 'call' then 'Call' when 'email' then 'Email'
                    when 'note' then 'Note' else 'Other' end as Type,
               case a.activity_type when 'call' then 'Call' when 'email' then 'Email: follow-up'
                    when 'linkedin_message' then 'LinkedIn message' when 'note' then 'Note'
                    else 'To do' end as Subject,
               'Completed' as Status, 'Normal' as Priority,
               strftime(timezone({tz}, a.occurred_at), '%Y-%m-%d') as ActivityDate,
               {ts('a.occurred_at')} as CompletedDateTime,
               case when a.activity_type = 'call' then
                   case a.direction when 'inbound' then 'Inbound' when 'outbound' then 'Outbound'
                   end end as CallType,
               case when a.activity_type = 'call' then a.duration_seconds end
                   as CallDurationInSeconds,
               case when a.activity_type in ('call', 'linkedin_message') then r.v end
                   as CallDisposition,
               {ts('a.occurred_at')} as CreatedDate, {ts('a.updated_at')} as LastModifiedDate,
               a.is_deleted as IsDeleted
        from c_activities a left join sf_call_results r on r.k = a.outcome
        where a._delivery = {at} and a.activity_type <> 'meeting'
        order by a._line
    """)
    # EmailMessage: an e-mail task's message (its direction and status live here).
    w.write(d, "EmailMessage.csv", f"""
        select 'EM-' || a.activity_id as Id, a.activity_id as ActivityId,
               a.direction = 'inbound' as Incoming,
               case a.outcome when 'replied' then '2' when 'sent' then '3'
                    when 'bounced' then '3' else '1' end as Status,
               a.outcome = 'bounced' as IsBounced, 'Follow-up' as Subject,
               {ts('a.occurred_at')} as MessageDate, {ts('a.updated_at')} as LastModifiedDate,
               a.is_deleted as IsDeleted
        from c_activities a
        where a._delivery = {at} and a.activity_type = 'email'
        order by a._line
    """)
    # Event: meetings. The preset's documented derivations read the outcome from the subject
    # (Outlook's "Canceled: …", a team's "No-show: …") and the end time, the direction from who
    # created it, and a duration of 0 minutes as "not recorded".
    minutes = ("case when a.outcome = 'held' then coalesce(a.duration_seconds // 60, 0) "
               "else 30 end")
    w.write(d, "Event.csv", f"""
        select a.activity_id as Id, a.contact_id as WhoId, a.deal_id as WhatId,
               a.owner_user_id as OwnerId,
               case a.outcome when 'cancelled' then 'Canceled: Meeting'
                    when 'no_show' then 'No-show: Meeting' else 'Meeting' end as Subject,
               {ts('a.occurred_at')} as StartDateTime, {ts('a.occurred_at')} as ActivityDateTime,
               strftime(timezone({tz}, a.occurred_at), '%Y-%m-%d') as ActivityDate,
               {minutes} as DurationInMinutes,
               {ts(f"a.occurred_at + to_minutes(cast({minutes} as bigint))")} as EndDateTime,
               false as IsAllDayEvent,
               case when a.outcome = 'cancelled' then 'Free' else 'Busy' end as ShowAs,
               case when a.direction = 'outbound' then a.owner_user_id
                    else {sql_literal(SF_AUTOMATION_USER)} end as CreatedById,
               {ts('least(a.occurred_at, a.updated_at)')} as CreatedDate,
               {ts('a.updated_at')} as LastModifiedDate, a.is_deleted as IsDeleted
        from c_activities a
        where a._delivery = {at} and a.activity_type = 'meeting'
        order by a._line
    """)

    # Opportunity (+ OpportunityContactRole for its primary contact).
    w.write(d, "Opportunity.csv", f"""
        select o.deal_id as Id,
               coalesce(json_extract_string(o._extra_columns, '$.deal_name'),
                        'Opportunity ' || o.deal_id) as Name,
               o.company_id as AccountId, o.owner_user_id as OwnerId, t.v as Type,
               s.v as StageName, o.amount as Amount, o.currency as CurrencyIsoCode,
               strftime(timezone({tz}, coalesce(o.closed_at, o.created_at + interval 60 day)),
                        '%Y-%m-%d') as CloseDate,
               o.stage in ('closed_won', 'closed_lost') as IsClosed,
               o.stage = 'closed_won' as IsWon, o.lost_reason as Loss_Reason__c,
               {ts('o.created_at')} as CreatedDate, {ts('o.updated_at')} as LastModifiedDate,
               o.is_deleted as IsDeleted
        from c_deals o join sf_deal_types t on t.k = o.deal_type
        join sf_stages s on s.k = o.stage
        where o._delivery = {at} order by o._line
    """)
    w.write(d, "OpportunityContactRole.csv", f"""
        select 'OCR-' || deal_id as Id, deal_id as OpportunityId, contact_id as ContactId,
               'Decision Maker' as Role, true as IsPrimary,
               {ts('created_at')} as CreatedDate, {ts('updated_at')} as LastModifiedDate,
               false as IsDeleted
        from c_deals where _delivery = {at} and contact_id is not null order by _line
    """)
    # OpportunityHistory: one row per stage change.
    w.write(d, "OpportunityHistory.csv", f"""
        with numbered as (
            select *, row_number() over (partition by deal_id
                                         order by changed_at, stage, _delivery, _line) as n
            from c_deal_stage_changes
        )
        select 'OH-' || deal_id || '-' || n as Id, deal_id as OpportunityId,
               s.v as StageName, {ts('changed_at')} as CreatedDate,
               coalesce(changed_by_user_id, {sql_literal(SF_AUTOMATION_USER)}) as CreatedById,
               is_deleted as IsDeleted
        from numbered join sf_stages s on s.k = numbered.stage
        where _delivery = {at} order by _line
    """)

    # Quote (+ QuoteHistory: when its Status became Presented, i.e. it was sent, and later
    # status changes), each status change exported once, with the quote version showing it.
    w.write(d, "Quote.csv", f"""
        select q.quote_id as Id, 'Quote ' || q.quote_id as Name, q.deal_id as OpportunityId,
               s.v as Status, q.amount as TotalPrice, q.amount as GrandTotal,
               q.currency as CurrencyIsoCode,
               strftime(timezone({tz}, q.created_at + interval 30 day), '%Y-%m-%d')
                   as ExpirationDate,
               {ts('q.created_at')} as CreatedDate, {ts('q.updated_at')} as LastModifiedDate,
               q.is_deleted as IsDeleted
        from c_quotes q join sf_quote_statuses s on s.k = q.status
        where q._delivery = {at} order by q._line
    """)
    w.write(d, "QuoteHistory.csv", f"""
        with changes as (
            select quote_id, 'Presented' as status, sent_at as changed, _delivery, _line, 1 as n
            from c_quotes where status <> 'draft' and sent_at is not null
            union all
            select quote_id, s.v, updated_at, _delivery, _line, 2
            from c_quotes join sf_quote_statuses s on s.k = status
            where status not in ('draft', 'sent')
        ),
        first_seen as (
            select * from changes
            qualify row_number() over (partition by quote_id, status
                                       order by _delivery, _line) = 1
        )
        select 'QH-' || quote_id || '-' || n as Id, quote_id as QuoteId, 'Status' as Field,
               case n when 1 then 'Draft' else 'Presented' end as OldValue, status as NewValue,
               {ts('changed')} as CreatedDate, false as IsDeleted
        from first_seen where _delivery = {at} order by _line, n
    """)

    # DatedConversionRate: ConversionRate is units of the currency per 1 EUR (the corporate
    # currency), valid from StartDate to NextStartDate.
    w.write(d, "DatedConversionRate.csv", f"""
        select 'DCR-' || currency || '-' || month as Id, currency as IsoCode,
               cast(1 / rate_to_eur as varchar) as ConversionRate,
               month || '-01' as StartDate,
               strftime(cast(month || '-01' as date) + interval 1 month, '%Y-%m-%d')
                   as NextStartDate
        from c_fx_rates where _delivery = {at} order by _line
    """)


# --- HubSpot ----------------------------------------------------------------------------------

# Canonical value → the HubSpot internal value the twin writes.
HS_PERMISSION_SETS = {
    "sdr": "Sales Development Rep",
    "ae": "Sales Rep",
    "manager": "Sales Manager",
    "marketing": "Marketer",
    "other": "Super Admin",
}
HS_LIFECYCLE = {
    "subscriber": "subscriber",
    "lead": "lead",
    "marketing_qualified_lead": "marketingqualifiedlead",
    "sales_qualified_lead": "salesqualifiedlead",
    "opportunity": "opportunity",
    "customer": "customer",
    "other": "other",
}
# Form submissions: event type → form name (a team's forms; the preset's vocabulary maps them).
HS_FORMS = {
    "newsletter_signup": "Newsletter sign-up",
    "linkedin_follow": "LinkedIn Lead Gen form",
    "content_download": "Content download",
    "chat_conversation": "Website chat",
    "contact_form": "Contact us",
    "demo_request": "Demo request",
    "pricing_request": "Pricing request",
    "trial_signup": "Free trial",
}
# Marketing event participations: event type → (event type, attendance state).
HS_PARTICIPATIONS = {
    "webinar_registration": ("WEBINAR", "REGISTERED"),
    "webinar_attended": ("WEBINAR", "ATTENDED"),
    "event_visit": ("CONFERENCE", "ATTENDED"),
}
# hs_call_disposition: HubSpot's default call outcomes are GUIDs.
HS_CALL_OUTCOMES = {
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
    "wrong_number": "17b47fee-58de-441e-a44c-c6300d46f273",
}
HS_MEETING_OUTCOMES = {"held": "COMPLETED", "no_show": "NO_SHOW", "cancelled": "CANCELED"}
HS_DEAL_TYPES = {"new_business": "newbusiness", "upsell": "existingbusiness", "renewal": "renewal"}
HS_DEAL_STAGES = {
    "qualification": "appointmentscheduled",
    "discovery": "qualifiedtobuy",
    "proposal": "presentationscheduled",
    "negotiation": "contractsent",
    "closed_won": "closedwon",
    "closed_lost": "closedlost",
}


def write_hubspot_twin(
    extract_dir: Path, out_dir: Path, timezone: str = "Europe/Amsterdam"
) -> TwinSummary:
    """Write the HubSpot export of the canonical extract in `extract_dir`: CRM exports with
    HubSpot's column headers and internal values ("Export … with internal values"), property
    history in the CRM API's long layout, owners, form submissions and marketing event
    participations, one folder per canonical delivery.

    HubSpot's exports leave deleted (archived) records out, and absence is not deletion in the
    contract, so a deleted version goes to an `…-archived-…` file of its object with
    `Archived` = true (what the CRM API returns with `archived=true`). Canonical ids stay the
    record ids (HubSpot's are numbers; nothing in the preset depends on that); an owner's
    HubSpot user id is `U-<owner id>`.
    """
    out_dir = _prepare_out(out_dir)
    with duckdb.connect() as con:
        deliveries = read_canonical(con, extract_dir, timezone)
        writer = _Writer(con, out_dir, timezone)
        for name, pairs in (
            ("hs_permission_sets", HS_PERMISSION_SETS), ("countries", COUNTRY_NAMES),
            ("hs_lifecycle", HS_LIFECYCLE), ("hs_forms", HS_FORMS),
            ("hs_participations", HS_PARTICIPATIONS), ("hs_call_outcomes", HS_CALL_OUTCOMES),
            ("hs_meeting_outcomes", HS_MEETING_OUTCOMES), ("hs_deal_types", HS_DEAL_TYPES),
            ("hs_deal_stages", HS_DEAL_STAGES),
        ):
            writer.values(name, pairs)
        for delivery in deliveries:
            _hs_delivery(writer, delivery)
    return TwinSummary(out_dir, deliveries, writer.files)


def _hs_export(w: _Writer, d: str, name: str, query: str) -> None:
    """A CRM export of object `name` (live rows) and its archived rows (deleted versions)."""
    day = d[:10]
    w.write(d, f"hubspot-crm-exports-all-{name}-{day}.csv",
            f"select * exclude (_deleted, _order) from ({query}) where not _deleted "
            "order by _order")
    w.write(d, f"hubspot-crm-exports-archived-{name}-{day}.csv",
            f"select * exclude (_deleted, _order), true as Archived from ({query}) "
            "where _deleted order by _order")


def _hs_delivery(w: _Writer, d: str) -> None:
    at = sql_literal(d)
    day = d[:10]
    ts = _api_ts
    user = "case when {0} is not null then 'U-' || {0} end"

    w.write(d, f"hubspot-owners-{day}.csv", f"""
        select u.user_id as "Owner ID", 'U-' || u.user_id as "User ID",
               split_part(u.full_name, ' ', 1) as "First Name",
               nullif(substr(u.full_name, strpos(u.full_name, ' ') + 1), u.full_name)
                   as "Last Name",
               u.email as "Email", u.team as "Primary Team", p.v as "Permission set",
               not u.is_active as "Deactivated", {ts('u.updated_at')} as "Last Modified Date"
        from c_users u join hs_permission_sets p on p.k = u.role
        where u._delivery = {at} order by u._line
    """)

    _hs_export(w, d, "companies", f"""
        select c.company_id as "Record ID", c.name as "Company name",
               c.domain as "Company Domain Name", c.industry as "Industry",
               c.employee_count as "Number of Employees",
               coalesce(n.v, c.country) as "Country/Region",
               {ts('c.created_at')} as "Create Date", {ts('c.updated_at')} as "Last Modified Date",
               c.is_deleted as _deleted, c._line as _order
        from c_companies c left join countries n on n.k = c.country
        where c._delivery = {at}
    """)
    _hs_export(w, d, "contacts", f"""
        select contact_id as "Record ID", first_name as "First Name",
               last_name as "Last Name", email as "Email", job_title as "Job Title",
               owner_user_id as "Contact owner", company_id as "Associated Company ID",
               {ts('created_at')} as "Create Date", {ts('updated_at')} as "Last Modified Date",
               is_deleted as _deleted, _line as _order
        from c_contacts where _delivery = {at}
    """)
    # Property history, in the CRM API's layout (propertiesWithHistory): one row per value.
    history_columns = ('"Record ID", "Property", "Value", "Timestamp", "Source", '
                       '"Updated by user ID"')
    w.write(d, f"contact-property-history-{day}.csv", f"""
        select {history_columns} from (
            select lc.contact_id as "Record ID", 'lifecyclestage' as "Property",
                   s.v as "Value", {ts('lc.changed_at')} as "Timestamp",
                   case when lc.changed_by_user_id is null then 'AUTOMATION_PLATFORM'
                        else 'CRM_UI' end as "Source",
                   {user.format('lc.changed_by_user_id')} as "Updated by user ID", lc._line
            from c_lifecycle_changes lc join hs_lifecycle s on s.k = lc.lifecycle_stage
            where lc._delivery = {at} and not lc.is_deleted
        ) order by _line
    """)

    _hs_export(w, d, "deals", f"""
        select o.deal_id as "Record ID",
               coalesce(json_extract_string(o._extra_columns, '$.deal_name'),
                        'Deal ' || o.deal_id) as "Deal Name",
               'default' as "Pipeline", s.v as "Deal Stage", t.v as "Deal Type",
               o.amount as "Amount", o.currency as "Deal currency code",
               {ts('o.closed_at')} as "Close Date", o.lost_reason as "Closed Lost Reason",
               o.owner_user_id as "Deal owner", o.contact_id as "Associated Contact IDs",
               o.company_id as "Associated Company IDs",
               {ts('o.created_at')} as "Create Date", {ts('o.updated_at')} as "Last Modified Date",
               o.is_deleted as _deleted, o._line as _order
        from c_deals o join hs_deal_stages s on s.k = o.stage
        join hs_deal_types t on t.k = o.deal_type
        where o._delivery = {at}
    """)
    w.write(d, f"deal-property-history-{day}.csv", f"""
        select {history_columns} from (
            select c.deal_id as "Record ID", 'dealstage' as "Property", s.v as "Value",
                   {ts('c.changed_at')} as "Timestamp",
                   case when c.changed_by_user_id is null then 'AUTOMATION_PLATFORM'
                        else 'CRM_UI' end as "Source",
                   {user.format('c.changed_by_user_id')} as "Updated by user ID", c._line
            from c_deal_stage_changes c join hs_deal_stages s on s.k = c.stage
            where c._delivery = {at} and not c.is_deleted
        ) order by _line
    """)

    # Quotes: hs_status says whether a quote was published (sent), not whether the buyer
    # accepted it; the history of hs_status says when.
    _hs_export(w, d, "quotes", f"""
        select quote_id as "Record ID", 'Quote ' || quote_id as "Quote title",
               case when status = 'draft' then 'DRAFT' else 'APPROVAL_NOT_NEEDED' end
                   as "Quote status",
               amount as "Quote amount", currency as "Currency",
               deal_id as "Associated Deal IDs",
               {ts('created_at')} as "Create Date", {ts('updated_at')} as "Last Modified Date",
               is_deleted as _deleted, _line as _order
        from c_quotes where _delivery = {at}
    """)
    # …exported once: with the first version of the quote that was published.
    w.write(d, f"quote-property-history-{day}.csv", f"""
        with published as (
            select *, row_number() over (partition by quote_id order by _delivery, _line) as n
            from c_quotes where status <> 'draft' and sent_at is not null
        )
        select quote_id as "Record ID", 'hs_status' as "Property",
               'APPROVAL_NOT_NEEDED' as "Value", {ts('sent_at')} as "Timestamp",
               'CRM_UI' as "Source", null as "Updated by user ID"
        from published where n = 1 and _delivery = {at} order by _line
    """)

    # Engagements: one export per activity object.
    common = f"""a.activity_id as "Record ID", {ts('a.occurred_at')} as "Activity date",
               a.owner_user_id as "Activity assigned to",
               a.contact_id as "Associated Contact IDs", a.deal_id as "Associated Deal IDs",
               {ts('a.updated_at')} as "Last Modified Date",
               a.is_deleted as _deleted, a._line as _order"""
    where = f"a._delivery = {at} and a.activity_type ="
    _hs_export(w, d, "calls", f"""
        select {common}, upper(a.direction) as "Call direction",
               a.duration_seconds * 1000 as "Call duration", o.v as "Call outcome"
        from c_activities a left join hs_call_outcomes o on o.k = a.outcome
        where {where} 'call'
    """)
    _hs_export(w, d, "meetings", f"""
        select {common}, {ts('a.occurred_at')} as "Meeting start time",
               {ts("case when a.outcome = 'held' then a.occurred_at + "
                   "to_seconds(a.duration_seconds) else a.occurred_at + interval 30 minute end")}
                   as "Meeting end time",
               o.v as "Meeting outcome",
               case when a.direction = 'outbound' then 'CRM_UI' else 'MEETINGS_PUBLIC' end
                   as "Meeting source"
        from c_activities a left join hs_meeting_outcomes o on o.k = a.outcome
        where {where} 'meeting'
    """)
    _hs_export(w, d, "emails", f"""
        select {common},
               case a.direction when 'inbound' then 'INCOMING_EMAIL' else 'EMAIL' end
                   as "Email direction",
               case when a.direction = 'outbound' then
                   case when a.outcome = 'bounced' then 'BOUNCED' else 'SENT' end
               end as "Email send status",
               case when a.outcome = 'replied' then true end as "Replied"
        from c_activities a where {where} 'email'
    """)
    _hs_export(w, d, "communications", f"""
        select {common}, 'LINKEDIN_MESSAGE' as "Channel type", upper(a.outcome) as "Outcome"
        from c_activities a where {where} 'linkedin_message'
    """)
    _hs_export(w, d, "tasks", f"""
        select {common}, 'TODO' as "Task type", 'COMPLETED' as "Task status"
        from c_activities a where {where} 'task'
    """)
    _hs_export(w, d, "notes", f"""
        select {common} from c_activities a where {where} 'note'
    """)

    # Marketing: form submissions, and participations in marketing events (webinars, fairs).
    submissions = f"""
        select e.event_id as "Conversion ID", e.contact_id as "Record ID",
               f.v as "Form name", e.campaign as "Campaign",
               {ts('e.occurred_at')} as "Submitted at", e.is_deleted as _deleted,
               e._line as _order
        from c_marketing_events e join hs_forms f on f.k = e.event_type
        where e._delivery = {at}
    """
    w.write(d, f"form-submissions-{day}.csv",
            f"select * exclude (_deleted, _order) from ({submissions}) where not _deleted "
            "order by _order")
    w.write(d, f"form-submissions-archived-{day}.csv",
            f"select * exclude (_deleted, _order), true as Archived from ({submissions}) "
            "where _deleted order by _order")
    participations = f"""
        select e.event_id as "Participation ID", e.contact_id as "Record ID",
               e.campaign as "Marketing event name", p.v as "Event type",
               p.v2 as "Attendance state", {ts('e.occurred_at')} as "Occurred at",
               e.is_deleted as _deleted, e._line as _order
        from c_marketing_events e join hs_participations p on p.k = e.event_type
        where e._delivery = {at}
    """
    w.write(d, f"marketing-event-participations-{day}.csv",
            f"select * exclude (_deleted, _order) from ({participations}) where not _deleted "
            "order by _order")
    w.write(d, f"marketing-event-participations-archived-{day}.csv",
            f"select * exclude (_deleted, _order), true as Archived from ({participations}) "
            "where _deleted order by _order")

    # Exchange rates (multi-currency): 1 EUR (the company currency) = rate units of currency.
    w.write(d, f"exchange-rates-{day}.csv", f"""
        select currency as "Currency code", cast(1 / rate_to_eur as varchar) as "Exchange rate",
               month || '-01' as "Effective date"
        from c_fx_rates where _delivery = {at} order by _line
    """)
