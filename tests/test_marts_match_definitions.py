"""The published marts agree, row by row, with an independent implementation of the definitions.

`tests/oracle.py` computes `dim_leads`, `fct_funnel_stages`, `fct_activities` and `fct_deals`
in pandas from the raw layer (resolving record versions itself); the job builds them with dbt.
Two scenarios: the generated sample with `as_of` derived from the data, and a smaller sample
with `as_of` pinned about two months before the data ends (facts after `as_of` have not
happened yet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
from mart_comparison import ColumnKinds, compare
from oracle import OracleMarts, local_month, local_week, oracle_from_warehouse

from pipelines.sample import generate_sample

pytestmark = pytest.mark.slow

SAMPLE_END = date(2026, 11, 26)
PINNED_AS_OF = datetime(2026, 9, 24, 15, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))
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


# Two small deliveries appended to the pinned scenario's sample: corners of the contract and
# the definitions the generated sample may not reach (version ties and out-of-order versions,
# deletes and undeletes, id ties, free-mail and odd e-mails, a deleted or missing company,
# an intent event at exactly sales_lead_at, thresholds at their edge, local month and ISO-week
# boundaries, FX fallbacks and gaps, facts after as_of). The expected values come from the
# oracle, not from here; the comments only say which rule a row exercises.
# As of 2026-09-24 13:30 UTC.
EDGE_A, EDGE_B = "2026-11-27T0200", "2026-11-28T0200"
T0 = "2026-01-05T09:00:00Z"
EDGE_FILES: dict[tuple[str, str], str] = {
    (EDGE_A, "users"): """
user_id,full_name,role,team,updated_at,is_active
EDGE-U1,Edge Ae,ae,Team Noord,2026-01-01T00:00:00Z,true
EDGE-U2,Edge Marketer,marketing,Marketing,2026-01-01T00:00:00Z,true
EDGE-U3,Edge Sdr Without Team,sdr,,2026-01-01T00:00:00Z,true
EDGE-U4,Edge Inactive Sdr,sdr,Team Zuid,2026-01-01T00:00:00Z,false
""",
    (EDGE_A, "companies"): """
company_id,name,created_at,updated_at,is_deleted
EDGE-ORG1,Edge One,2025-01-01T00:00:00Z,2025-01-01T00:00:00Z,false
EDGE-ORG2,Edge Two (deleted),2025-01-01T00:00:00Z,2025-01-02T00:00:00Z,true
EDGE-ORG3,Edge Three,2025-01-01T00:00:00Z,2025-01-01T00:00:00Z,false
EDGE-ORG5,Edge Five,2025-01-01T00:00:00Z,2025-01-01T00:00:00Z,false
""",
    # C01: the newer updated_at wins over a later delivery; C02: a tie → the later delivery;
    # C03: same key and updated_at twice in one file → the later line; C16 deleted by its
    # newest version; C21 undeleted by its newest version; C20's owner does not exist; C22's
    # owner is an inactive rep; C23 is created after as_of (and stays).
    (EDGE_A, "contacts"): f"""
contact_id,company_id,email,owner_user_id,created_at,updated_at,is_deleted
EDGE-C01,EDGE-ORG1,ann@edge-one.example,EDGE-U1,{T0},2026-03-02T00:00:00Z,false
EDGE-C02,EDGE-ORG1,bob@gmail.com,EDGE-U1,{T0},2026-03-01T00:00:00Z,false
EDGE-C03,EDGE-ORG1,cor@hotmail.nl,EDGE-U1,{T0},2026-03-01T00:00:00Z,false
EDGE-C03,EDGE-ORG1,cor@edge-one.example,EDGE-U1,{T0},2026-03-01T00:00:00Z,false
EDGE-C04,EDGE-ORG1,Dirk@Edge-One.EXAMPLE,EDGE-U1,{T0},{T0},false
EDGE-C05,EDGE-ORG1,eva@sub@GMAIL.com,EDGE-U1,{T0},{T0},false
EDGE-C06,EDGE-ORG1,frank@,EDGE-U1,{T0},{T0},false
EDGE-C07,EDGE-ORG2,gert@edge-two.example,EDGE-U1,{T0},{T0},false
EDGE-C08,EDGE-ORG-GONE,hans@edge-one.example,EDGE-U1,{T0},{T0},false
EDGE-C09,EDGE-ORG1,ilse@edge-one.example,EDGE-U2,{T0},{T0},false
EDGE-C10,EDGE-ORG1,jan@edge-one.example,EDGE-U3,{T0},{T0},false
EDGE-C11,EDGE-ORG1,kees@edge-one.example,EDGE-U1,{T0},{T0},false
EDGE-C12,EDGE-ORG1,lies@edge-one.example,EDGE-U1,{T0},{T0},false
EDGE-C13,EDGE-ORG3,mark@edge-three.example,EDGE-U1,{T0},{T0},false
EDGE-C14,EDGE-ORG3,nina@edge-three.example,EDGE-U1,{T0},{T0},false
EDGE-C15,EDGE-ORG1,otto@edge-one.example,EDGE-U1,{T0},{T0},false
EDGE-C16,EDGE-ORG1,piet@edge-one.example,EDGE-U1,{T0},2026-03-05T00:00:00Z,true
EDGE-C17,EDGE-ORG1,rob@edge-one.example,EDGE-U1,{T0},{T0},false
EDGE-C18,EDGE-ORG1,sara@edge-one.example,EDGE-U1,{T0},{T0},false
EDGE-C19,EDGE-ORG1,tom@edge-one.example,EDGE-U1,{T0},{T0},false
EDGE-C20,,,EDGE-U-GONE,{T0},{T0},false
EDGE-C21,EDGE-ORG1,ute@edge-one.example,EDGE-U1,{T0},2026-03-01T00:00:00Z,true
EDGE-C22,EDGE-ORG5,vera@edge-five.example,EDGE-U4,{T0},{T0},false
EDGE-C23,EDGE-ORG1,wim@edge-one.example,EDGE-U1,2026-10-01T00:00:00Z,2026-10-01T00:00:00Z,false
""",
    (EDGE_B, "contacts"): f"""
contact_id,company_id,email,owner_user_id,created_at,updated_at,is_deleted
EDGE-C01,EDGE-ORG1,ann@gmail.com,EDGE-U1,{T0},2026-03-01T00:00:00Z,false
EDGE-C02,EDGE-ORG1,bob@edge-one.example,EDGE-U1,{T0},2026-03-01T00:00:00Z,false
EDGE-C16,EDGE-ORG1,piet@edge-one.example,EDGE-U1,{T0},2026-03-01T00:00:00Z,false
EDGE-C21,EDGE-ORG1,ute@edge-one.example,EDGE-U1,{T0},2026-03-05T00:00:00Z,false
""",
    # E03 crosses a month boundary in local time; E04b is at exactly sales_lead_at; E09a/b tie
    # (smallest id wins); E15 is re-delivered as a non-intent type, E15x deleted later; E19 is
    # after sales_lead_at; E11 is after as_of.
    (EDGE_A, "marketing_events"): """
event_id,contact_id,event_type,occurred_at,is_deleted
EDGE-E01,EDGE-C01,demo_request,2026-05-04T10:00:00Z,false
EDGE-E02,EDGE-C02,contact_form,2026-05-05T10:00:00Z,false
EDGE-E03,EDGE-C03,trial_signup,2026-06-30T22:30:00Z,false
EDGE-E04a,EDGE-C04,newsletter_signup,2026-04-01T10:00:00Z,false
EDGE-E04b,EDGE-C04,pricing_request,2026-04-10T10:00:00Z,false
EDGE-E05,EDGE-C05,demo_request,2026-04-01T10:00:00Z,false
EDGE-E06,EDGE-C06,demo_request,2026-04-01T10:00:00Z,false
EDGE-E07,EDGE-C07,demo_request,2026-04-01T10:00:00Z,false
EDGE-E08,EDGE-C08,demo_request,2026-04-01T10:00:00Z,false
EDGE-E09b,EDGE-C09,demo_request,2026-04-02T08:00:00Z,false
EDGE-E09a,EDGE-C09,pricing_request,2026-04-02T08:00:00Z,false
EDGE-E11,EDGE-C11,demo_request,2026-10-01T10:00:00Z,false
EDGE-E12,EDGE-C12,contact_form,2026-05-12T12:00:00Z,false
EDGE-E15,EDGE-C15,demo_request,2026-05-15T10:00:00Z,false
EDGE-E15x,EDGE-C15,contact_form,2026-05-16T10:00:00Z,false
EDGE-E18,EDGE-C18,demo_request,2026-09-01T10:00:00Z,false
EDGE-E19,EDGE-C19,demo_request,2026-05-02T10:00:00Z,false
EDGE-E21,EDGE-C21,demo_request,2026-05-21T10:00:00Z,false
""",
    (EDGE_B, "marketing_events"): """
event_id,contact_id,event_type,occurred_at,is_deleted
EDGE-E15,EDGE-C15,newsletter_signup,2026-05-15T10:00:00Z,false
EDGE-E15x,EDGE-C15,contact_form,2026-05-16T10:00:00Z,true
""",
    # D10a/D10b tie on created_at (smallest id is the sales-lead deal); D17 closes after as_of;
    # D18 is created after it; D19 has a currency without rates; D22-D24 test the NOK month
    # fallback (local month) and the missing earlier rate; D26 ties on updated_at across
    # deliveries; D27 is deleted; D28 names a deleted contact; D29 is won by a contact of ORG5
    # but carries no company; D30's owner does not exist; D31 is open with an expected close date.
    (EDGE_A, "deals"): """
deal_id,contact_id,company_id,owner_user_id,deal_type,stage,amount,currency,created_at,closed_at,\
updated_at,is_deleted
EDGE-D04,EDGE-C04,EDGE-ORG1,EDGE-U1,new_business,proposal,5000,EUR,2026-04-10T10:00:00Z,,\
2026-04-12T10:00:00Z,false
EDGE-D10a,EDGE-C10,EDGE-ORG1,EDGE-U3,new_business,qualification,1000,EUR,2026-04-20T09:00:00Z,,\
2026-04-20T09:00:00Z,false
EDGE-D10b,EDGE-C10,EDGE-ORG1,EDGE-U1,new_business,proposal,2000,EUR,2026-04-20T09:00:00Z,,\
2026-04-25T10:00:00Z,false
EDGE-D10u,EDGE-C10,EDGE-ORG1,EDGE-U1,upsell,proposal,500,,2026-04-20T10:00:00Z,,\
2026-04-21T10:00:00Z,false
EDGE-D14u,EDGE-C14,EDGE-ORG3,EDGE-U1,upsell,closed_won,3000,EUR,2026-03-01T10:00:00Z,\
2026-04-01T10:00:00Z,2026-04-01T10:00:00Z,false
EDGE-D17,EDGE-C17,EDGE-ORG1,EDGE-U1,new_business,closed_won,7000,usd,2026-09-01T10:00:00Z,\
2026-10-01T10:00:00Z,2026-10-01T10:00:00Z,false
EDGE-D18,EDGE-C18,EDGE-ORG1,EDGE-U1,new_business,qualification,1000,EUR,2026-10-02T10:00:00Z,,\
2026-10-02T10:00:00Z,false
EDGE-D19,EDGE-C19,EDGE-ORG1,EDGE-U1,new_business,closed_lost,1000,SEK,2026-05-01T10:00:00Z,\
2026-05-10T10:00:00Z,2026-05-10T10:00:00Z,false
EDGE-D22,,,EDGE-U1,renewal,closed_won,1000,NOK,2026-02-01T10:00:00Z,\
2026-03-31T22:30:00Z,2026-03-31T22:30:00Z,false
EDGE-D23,,,EDGE-U1,renewal,closed_won,1000,NOK,2026-01-10T10:00:00Z,\
2026-02-15T10:00:00Z,2026-02-15T10:00:00Z,false
EDGE-D24,,,EDGE-U1,renewal,closed_lost,1000,NOK,2025-11-01T10:00:00Z,\
2025-12-10T10:00:00Z,2025-12-10T10:00:00Z,false
EDGE-D25,,,EDGE-U1,renewal,negotiation,,NOK,2026-03-10T10:00:00Z,,\
2026-03-10T10:00:00Z,false
EDGE-D26,,,EDGE-U1,upsell,discovery,100,EUR,2026-03-10T10:00:00Z,,\
2026-03-10T10:00:00Z,false
EDGE-D27,EDGE-C11,EDGE-ORG1,EDGE-U1,new_business,discovery,100,EUR,2026-03-10T10:00:00Z,,\
2026-03-10T10:00:00Z,true
EDGE-D28,EDGE-C16,EDGE-ORG1,EDGE-U1,new_business,discovery,100,EUR,2026-03-10T10:00:00Z,,\
2026-03-10T10:00:00Z,false
EDGE-D29,EDGE-C22,,EDGE-U1,upsell,closed_won,100,EUR,2026-01-10T10:00:00Z,\
2026-02-01T10:00:00Z,2026-02-01T10:00:00Z,false
EDGE-D30,,,EDGE-U-GONE,renewal,discovery,100,EUR,2026-03-10T10:00:00Z,,\
2026-03-10T10:00:00Z,false
EDGE-D31,,,EDGE-U1,renewal,negotiation,100,EUR,2026-03-10T10:00:00Z,2026-05-01T10:00:00Z,\
2026-03-10T10:00:00Z,false
""",
    (EDGE_B, "deals"): """
deal_id,contact_id,company_id,owner_user_id,deal_type,stage,amount,currency,created_at,closed_at,\
updated_at,is_deleted
EDGE-D26,,,EDGE-U1,upsell,discovery,200,EUR,2026-03-10T10:00:00Z,,\
2026-03-10T10:00:00Z,false
""",
    (EDGE_A, "deal_stage_changes"): """
deal_id,stage,changed_at,is_deleted
EDGE-D17,qualification,2026-09-01T10:00:00Z,false
EDGE-D17,negotiation,2026-09-20T10:00:00Z,false
EDGE-D17,closed_won,2026-10-01T10:00:00Z,false
""",
    # Q10d is a draft; Q10u is on an upsell deal; Q10x is deleted later; Q17 is sent after as_of.
    (EDGE_A, "quotes"): """
quote_id,deal_id,status,amount,created_at,sent_at,updated_at,is_deleted
EDGE-Q04,EDGE-D04,sent,5000,2026-04-12T09:00:00Z,2026-04-12T10:00:00Z,2026-04-12T10:00:00Z,false
EDGE-Q10d,EDGE-D10a,draft,1000,2026-04-20T09:30:00Z,,2026-04-20T09:30:00Z,false
EDGE-Q10u,EDGE-D10u,sent,500,2026-04-21T09:00:00Z,2026-04-21T10:00:00Z,2026-04-21T10:00:00Z,false
EDGE-Q10b,EDGE-D10b,sent,2000,2026-04-25T09:00:00Z,2026-04-25T10:00:00Z,2026-04-25T10:00:00Z,false
EDGE-Q10x,EDGE-D10b,sent,2000,2026-04-23T09:00:00Z,2026-04-23T10:00:00Z,2026-04-23T10:00:00Z,false
EDGE-Q17,EDGE-D17,sent,7000,2026-09-20T09:00:00Z,2026-09-30T10:00:00Z,2026-09-30T10:00:00Z,false
""",
    (EDGE_B, "quotes"): """
quote_id,deal_id,status,amount,created_at,sent_at,updated_at,is_deleted
EDGE-Q10x,EDGE-D10b,sent,2000,2026-04-23T09:00:00Z,2026-04-23T10:00:00Z,2026-04-24T10:00:00Z,true
""",
    # L11a/L11b tie (largest id wins; its labeller is no user); L11c is deleted later; L12 is at
    # exactly marketing_lead_at; L12z is after as_of; L04 is a day before the stage it claims.
    (EDGE_A, "lifecycle_changes"): """
change_id,contact_id,lifecycle_stage,changed_at,changed_by_user_id,is_deleted
EDGE-L04,EDGE-C04,sales_qualified_lead,2026-04-09T10:00:00Z,EDGE-U1,false
EDGE-L10,EDGE-C10,opportunity,2026-04-30T10:00:00Z,EDGE-U3,false
EDGE-L11a,EDGE-C11,customer,2026-05-01T10:00:00Z,EDGE-U1,false
EDGE-L11b,EDGE-C11,lead,2026-05-01T10:00:00Z,EDGE-GHOST,false
EDGE-L11c,EDGE-C11,customer,2026-06-01T10:00:00Z,EDGE-U1,false
EDGE-L12,EDGE-C12,marketing_qualified_lead,2026-05-12T12:00:00Z,,false
EDGE-L12z,EDGE-C12,customer,2026-10-01T10:00:00Z,EDGE-U1,false
""",
    (EDGE_B, "lifecycle_changes"): """
change_id,contact_id,lifecycle_stage,changed_at,changed_by_user_id,is_deleted
EDGE-L11c,EDGE-C11,customer,2026-06-01T10:00:00Z,EDGE-U1,true
""",
    # Conversation threshold at 300 s (299 and empty do not pass); a live deal makes a meeting
    # with a deleted contact count; cold outreach before, at and after a lead or customer instant;
    # owners that are no sales rep, no user, or an inactive rep; local month and ISO-week
    # boundaries; A20 and A21 resolve versions by updated_at; A19 is after as_of. C22's company
    # has no deal of its own (D29 names C22 but no company), so A24 is cold.
    (EDGE_A, "activities"): """
activity_id,activity_type,direction,owner_user_id,contact_id,deal_id,occurred_at,duration_seconds,\
outcome,updated_at
EDGE-A01,call,outbound,EDGE-U1,EDGE-C15,,2026-05-20T10:00:00Z,300,connected,2026-05-20T10:00:00Z
EDGE-A02,call,outbound,EDGE-U1,EDGE-C15,,2026-05-20T11:00:00Z,299,connected,2026-05-20T11:00:00Z
EDGE-A03,call,outbound,EDGE-U1,EDGE-C15,,2026-05-20T12:00:00Z,,connected,2026-05-20T12:00:00Z
EDGE-A04,meeting,,EDGE-U1,EDGE-C15,,2026-05-21T10:00:00Z,3600,held,2026-05-21T10:00:00Z
EDGE-A05,meeting,,EDGE-U1,EDGE-C16,,2026-05-21T11:00:00Z,3600,held,2026-05-21T11:00:00Z
EDGE-A06,meeting,,EDGE-U1,EDGE-C16,EDGE-D04,2026-05-21T12:00:00Z,3600,held,2026-05-21T12:00:00Z
EDGE-A07,email,outbound,EDGE-U2,EDGE-C15,,2026-05-22T10:00:00Z,,sent,2026-05-22T10:00:00Z
EDGE-A08,email,outbound,EDGE-U-GONE,EDGE-C15,,2026-05-22T11:00:00Z,,sent,2026-05-22T11:00:00Z
EDGE-A09,email,outbound,EDGE-U1,EDGE-C13,,2026-03-15T10:00:00Z,,sent,2026-03-15T10:00:00Z
EDGE-A10,email,outbound,EDGE-U1,EDGE-C13,,2026-04-15T10:00:00Z,,bounced,2026-04-15T10:00:00Z
EDGE-A11,call,outbound,EDGE-U1,EDGE-C13,,2026-04-01T10:00:00Z,,no_answer,2026-04-01T10:00:00Z
EDGE-A12,email,outbound,EDGE-U1,EDGE-C04,,2026-04-10T10:00:00Z,,sent,2026-04-10T10:00:00Z
EDGE-A13,email,outbound,EDGE-U1,EDGE-C04,,2026-04-10T10:00:01Z,,sent,2026-04-10T10:00:01Z
EDGE-A14,email,inbound,EDGE-U1,EDGE-C15,,2026-05-23T10:00:00Z,,replied,2026-05-23T10:00:00Z
EDGE-A15,email,outbound,EDGE-U1,,,2026-05-23T11:00:00Z,,sent,2026-05-23T11:00:00Z
EDGE-A16,email,outbound,EDGE-U1,EDGE-C16,,2026-05-23T12:00:00Z,,sent,2026-05-23T12:00:00Z
EDGE-A17,call,outbound,EDGE-U1,EDGE-C15,,2026-08-31T22:30:00Z,60,busy,2026-08-31T22:30:00Z
EDGE-A18,call,outbound,EDGE-U1,EDGE-C15,,2026-09-20T22:30:00Z,60,voicemail,2026-09-20T22:30:00Z
EDGE-A19,call,outbound,EDGE-U1,EDGE-C15,,2026-09-25T10:00:00Z,600,connected,2026-09-25T10:00:00Z
EDGE-A20,call,outbound,EDGE-U1,EDGE-C15,,2026-06-01T10:00:00Z,600,connected,2026-06-02T10:00:00Z
EDGE-A21,call,outbound,EDGE-U1,EDGE-C15,,2026-06-01T11:00:00Z,600,connected,2026-06-01T11:00:00Z
EDGE-A22,task,,EDGE-U1,EDGE-C15,,2026-06-03T10:00:00Z,,,2026-06-03T10:00:00Z
EDGE-A23,call,outbound,EDGE-U3,EDGE-C15,,2026-03-29T00:30:00Z,400,connected,2026-03-29T00:30:00Z
EDGE-A24,email,outbound,EDGE-U4,EDGE-C22,,2026-03-01T10:00:00Z,,sent,2026-03-01T10:00:00Z
""",
    (EDGE_B, "activities"): """
activity_id,activity_type,direction,owner_user_id,contact_id,deal_id,occurred_at,duration_seconds,\
outcome,updated_at,is_deleted
EDGE-A20,call,outbound,EDGE-U1,EDGE-C15,,2026-06-01T10:00:00Z,,no_answer,2026-06-01T10:00:00Z,false
EDGE-A21,call,outbound,EDGE-U1,EDGE-C15,,2026-06-01T11:00:00Z,600,connected,2026-06-02T11:00:00Z,true
""",
    # NOK: a month gap (falls back to the latest earlier month), a later delivery replaces
    # 2026-01, and EUR rows are ignored.
    (EDGE_A, "fx_rates"): """
currency,month,rate_to_eur
NOK,2026-01,0.09
NOK,2026-03,0.087
NOK,2026-04,0.081
EUR,2026-01,2.0
""",
    (EDGE_B, "fx_rates"): """
currency,month,rate_to_eur
NOK,2026-01,0.085
""",
}


# A delivery appended to the derived scenario's sample: timestamps far after the sample's end
# that must not move the derived as_of (an open deal's expected close date, a draft quote's
# sent_at, deleted rows, created_at of contacts and companies, updated_at).
PROBE = "2026-11-27T0200"
T1 = "2027-02-01T10:00:00Z"
AS_OF_PROBES: dict[tuple[str, str], str] = {
    (PROBE, "users"): f"""
user_id,full_name,role,team,updated_at
EDGE-U1,Edge Ae,ae,Team Noord,{T1}
""",
    (PROBE, "companies"): f"""
company_id,name,created_at,updated_at
EDGE-ORG1,Edge One,{T1},{T1}
""",
    (PROBE, "contacts"): f"""
contact_id,company_id,email,owner_user_id,created_at,updated_at
EDGE-C01,EDGE-ORG1,ann@edge-one.example,EDGE-U1,{T1},{T1}
""",
    (PROBE, "deals"): f"""
deal_id,contact_id,owner_user_id,deal_type,stage,amount,created_at,closed_at,updated_at,is_deleted
EDGE-D01,EDGE-C01,EDGE-U1,new_business,proposal,100,2026-06-01T10:00:00Z,{T1},{T1},false
EDGE-D02,EDGE-C01,EDGE-U1,new_business,closed_won,100,{T1},{T1},{T1},true
""",
    (PROBE, "quotes"): f"""
quote_id,deal_id,status,created_at,sent_at,updated_at,is_deleted
EDGE-Q01,EDGE-D01,draft,2026-06-02T10:00:00Z,{T1},{T1},false
EDGE-Q02,EDGE-D01,sent,2026-06-02T10:00:00Z,{T1},{T1},true
""",
    (PROBE, "activities"): f"""
activity_id,activity_type,direction,owner_user_id,contact_id,occurred_at,updated_at,is_deleted
EDGE-A01,call,outbound,EDGE-U1,EDGE-C01,{T1},{T1},true
""",
    (PROBE, "marketing_events"): f"""
event_id,contact_id,event_type,occurred_at,is_deleted
EDGE-E01,EDGE-C01,demo_request,{T1},true
""",
    (PROBE, "lifecycle_changes"): f"""
change_id,contact_id,lifecycle_stage,changed_at,is_deleted
EDGE-L01,EDGE-C01,lead,{T1},true
""",
    (PROBE, "deal_stage_changes"): f"""
deal_id,stage,changed_at,is_deleted
EDGE-D01,closed_won,{T1},true
""",
}


def write_deliveries(extracts: Path, files: dict[tuple[str, str], str]) -> None:
    for (delivery, entity), text in files.items():
        folder = extracts / delivery
        folder.mkdir(parents=True, exist_ok=True)
        body = text.lstrip("\n")  # (a `\` at a line's end continues it, in Python)
        (folder / f"{entity}.csv").write_text(body, encoding="utf-8")


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


def _run(
    root: Path,
    scale: float,
    seed: int,
    as_of: datetime | None,
    extra: dict[tuple[str, str], str],
) -> tuple[Path, Path]:
    extracts, warehouse = root / "extracts", root / "warehouse"
    generate_sample(extracts, scale=scale, seed=seed, end=SAMPLE_END)
    write_deliveries(extracts, extra)
    from pipelines.job_runner import run_nightly_job
    from pipelines.settings import Settings

    outcome = run_nightly_job(
        Settings(extracts_dir=extracts, warehouse_dir=warehouse, as_of=as_of, write_site=False),
        log_level="WARNING",
    )
    assert outcome.success, f"the nightly job failed: {outcome.failures}"
    return extracts, warehouse


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("oracle_derived")
    _extracts, warehouse = _run(root, scale=0.3, seed=7, as_of=None, extra=AS_OF_PROBES)
    oracle = oracle_from_warehouse(warehouse / "warehouse.duckdb")
    yield Scenario("derived as_of", warehouse, oracle)


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("oracle_pinned")
    _extracts, warehouse = _run(root, scale=0.1, seed=11, as_of=PINNED_AS_OF, extra=EDGE_FILES)
    yield Scenario(
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
