-- Rule 3: every marketing lead has a qualifying event of an intent type (per the seed, so a
-- code change cannot drift from the definitions), and a fit contact.
select
    leads.contact_id,
    events.event_id is not null as has_qualifying_event,
    coalesce(intent.is_intent, false) as is_intent_event,
    events.occurred_at is not distinct from leads.marketing_lead_at as is_at_the_event,
    coalesce(leads.is_fit, false) as is_fit
from marts.dim_leads as leads
left join staging.stg_crm__marketing_events as events
    on leads.qualifying_event_id = events.event_id and leads.contact_id = events.contact_id
left join definitions.intent_event_types as intent on events.event_type = intent.event_type
where leads.marketing_lead_at is not null
