-- Every marketing event of a live contact, judged against "Lead stages" 1 (definitions): why
-- it did or did not make the contact a marketing lead. The qualifying event itself is decided
-- once, in int_leads__stages; this model only says, per event, which rule kept it out.
-- Judgement, the first that applies:
--   after_as_of            occurred after as_of: it has not happened yet
--   qualifying             the contact's qualifying event (int_leads__stages)
--   not_intent             its type is not an intent type (seed intent_event_types)
--   contact_not_fit        an intent event, but the contact is not fit
--   after_sales_lead       an intent event after sales_lead_at (exactly at it still qualifies)
--   later_than_qualifying  an intent event, but the qualifying event came first
with events as (
    select * from {{ ref('stg_crm__marketing_events') }}
),

stages as (
    select * from {{ ref('int_leads__stages') }}
),

intent_event_types as (
    select * from {{ ref('intent_event_types') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

judged as (
    select
        events.event_id,
        events.contact_id,
        events.event_type,
        events.occurred_at,
        coalesce(intent_event_types.is_intent, false) as is_intent,
        intent_event_types.why as event_type_why,
        case
            when as_of.as_of is null or events.occurred_at > as_of.as_of then 'after_as_of'
            when events.event_id = stages.qualifying_event_id then 'qualifying'
            when not coalesce(intent_event_types.is_intent, false) then 'not_intent'
            when not stages.is_fit then 'contact_not_fit'
            when events.occurred_at > stages.sales_lead_at then 'after_sales_lead'
            else 'later_than_qualifying'
        end as judgement
    from events
    inner join stages on events.contact_id = stages.contact_id
    cross join as_of
    left join intent_event_types on events.event_type = intent_event_types.event_type
),

final as (
    select
        event_id,
        contact_id,
        event_type,
        occurred_at,
        is_intent,
        judgement,
        case judgement
            when 'after_as_of' then 'after as_of: not yet happened'
            when 'qualifying' then 'QUALIFYING: the first intent event of the fit contact, at or before sales_lead_at'
            when 'not_intent' then 'not intent: ' || coalesce(event_type_why, 'not an agreed event type')
            when 'contact_not_fit' then 'intent, but the contact is not fit'
            when 'after_sales_lead' then 'intent, but after becoming a sales lead'
            when 'later_than_qualifying' then 'intent, later than the qualifying event'
        end as judgement_reason
    from judged
)

select * from final
