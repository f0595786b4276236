"""The two runs of the job that the oracle tests read, built once per session (conftest.py
`derived_oracle_run`, `pinned_oracle_run`) and shared by test_marts_match_definitions.py (the
fact marts against tests/oracle.py) and test_kpis_match_definitions.py (the KPI marts against
tests/kpi_oracle.py): one run per distinct input and setting set, not one per scenario and file.

- The derived run: the generated sample (scale 0.3, seed 5) with a few manager overrides, the
  v1.1 delivery (`V11_FILES`), the as_of probes (`AS_OF_PROBES`) and the hand-made contacts
  that test_explain.py explains (its `write_explain_delivery`), `as_of` derived from the data,
  the other settings at their defaults. test_explain.py reads its published marts too.
- The pinned run: the sample at scale 0.1, seed 11, with the same kind of overrides, two edge
  deliveries (`EDGE_FILES`), `as_of` pinned about two months before the data ends
  (`PINNED_AS_OF`) and `kpi_program_start` in the middle of the history (`PROGRAM_START`).
  The fact marts do not read `kpi_program_start` (only the KPI models do), so one run serves
  the pinned-as_of fact comparison and the program-start KPI comparison.

Each run's folder holds `extracts/`, `warehouse/` and `overrides.csv`; the site is not
written (no test of these files reads it).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SAMPLE_END = date(2026, 11, 26)
DERIVED_SAMPLE = {"scale": 0.3, "seed": 5}
PINNED_SAMPLE = {"scale": 0.1, "seed": 11}
PINNED_AS_OF = datetime(2026, 9, 24, 15, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))
PROGRAM_START = date(2025, 7, 2)  # a Wednesday; its ISO week starts on Monday 2025-06-30
OVERRIDES_COLUMNS = ["kpi_id", "scope", "scope_id", "period_start", "target"]

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
PROBE = "2026-11-28T0200"  # after the v1.1 delivery (V11_DELIVERY)
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


def write_deliveries(extracts: Path, files: dict[tuple[str, str], str]) -> None:
    for (delivery, entity), text in files.items():
        folder = extracts / delivery
        folder.mkdir(parents=True, exist_ok=True)
        body = text.lstrip("\n")  # (a `\` at a line's end continues it, in Python)
        (folder / f"{entity}.csv").write_text(body, encoding="utf-8")



def overrides(rep: str) -> list[dict[str, Any]]:
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


def a_rep(extracts: Path) -> str:
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


def build_run(
    folder: Path,
    sample: dict[str, Any],
    deliveries: dict[tuple[str, str], str],
    as_of: datetime | None = None,
    kpi_program_start: date | None = None,
    write_more: Callable[[Path], None] | None = None,
) -> None:
    """Generate the sample into `folder/extracts`, add the hand-made deliveries (and those
    `write_more(extracts)` writes) and an overrides file (`folder/overrides.csv`), and run the
    whole job once into `folder/warehouse` with those settings (no site). The run must
    succeed."""
    from pipelines.job_runner import run_nightly_job
    from pipelines.sample import generate_sample
    from pipelines.settings import Settings

    extracts, overrides_file = folder / "extracts", folder / "overrides.csv"
    generate_sample(extracts, end=SAMPLE_END, **sample)
    write_deliveries(extracts, deliveries)
    if write_more is not None:
        write_more(extracts)
    with overrides_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=OVERRIDES_COLUMNS)
        writer.writeheader()
        writer.writerows(overrides(a_rep(extracts)))
    outcome = run_nightly_job(
        Settings(
            extracts_dir=extracts, warehouse_dir=folder / "warehouse", as_of=as_of,
            target_overrides_file=overrides_file, kpi_program_start=kpi_program_start,
            write_site=False,
        ),
        log_level="WARNING",
    )
    assert outcome.success, f"the nightly job failed: {outcome.failures}"


def build_derived_run(folder: Path) -> None:
    """The derived-as_of run (module docstring)."""
    from test_explain import write_explain_delivery  # its rows live beside the tests on them

    v11 = {(V11_DELIVERY, entity): text for entity, text in V11_FILES.items()}
    build_run(folder, DERIVED_SAMPLE, v11 | AS_OF_PROBES, write_more=write_explain_delivery)


def build_pinned_run(folder: Path) -> None:
    """The pinned-as_of, program-start run (module docstring)."""
    build_run(folder, PINNED_SAMPLE, EDGE_FILES, PINNED_AS_OF, PROGRAM_START)


def read_overrides(folder: Path) -> list[dict[str, str]]:
    """The overrides file a run was given."""
    with (folder / "overrides.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
