-- The agreed lead stages of every live contact (definitions v1.1, "Lead stages"):
--   sales lead     = created_at of the contact's first new_business deal (the sales-lead deal)
--   marketing lead = the first intent event of a fit contact at or before sales_lead_at
--   quote          = the earliest sent_at of a non-draft quote on its new_business deals
--   customer       = the earliest closed_at of its won new_business deals
-- Facts after as_of have not happened yet. References to missing or deleted records are empty.
with contacts as (
    select * from {{ ref('int_contacts__fit') }}
),

events as (
    select * from {{ ref('stg_crm__marketing_events') }}
),

intent_event_types as (
    select * from {{ ref('intent_event_types') }}
),

deals as (
    select * from {{ ref('int_deals__as_of') }}
),

quotes as (
    select * from {{ ref('stg_crm__quotes') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

new_business_deals as (
    select deals.*
    from deals
    inner join contacts on deals.contact_id = contacts.contact_id
    where deals.deal_type = 'new_business'
),

sales_lead as (
    select
        contact_id,
        min(created_at) as sales_lead_at,
        {{ value_at_min('deal_id', ['created_at', 'deal_id']) }} as sales_lead_deal_id,
        {{ value_at_min('owner_user_id', ['created_at', 'deal_id']) }}
            as sales_lead_deal_owner_user_id
    from new_business_deals
    group by contact_id
),

known_events as (
    select
        events.*,
        coalesce(intent_event_types.is_intent, false) as is_intent
    from events
    cross join as_of
    left join intent_event_types on events.event_type = intent_event_types.event_type
    where events.occurred_at <= as_of.as_of
),

intent_events as (
    select
        known_events.contact_id,
        known_events.event_id,
        known_events.event_type,
        known_events.occurred_at,
        sales_lead.sales_lead_at
    from known_events
    left join sales_lead on known_events.contact_id = sales_lead.contact_id
    where known_events.is_intent
),

qualifying_event as (
    select
        intent_events.contact_id,
        {{ value_at_min(
            'intent_events.event_id', ['intent_events.occurred_at', 'intent_events.event_id']
        ) }} as qualifying_event_id,
        {{ value_at_min(
            'intent_events.event_type', ['intent_events.occurred_at', 'intent_events.event_id']
        ) }} as qualifying_event_type,
        min(intent_events.occurred_at) as marketing_lead_at
    from intent_events
    inner join contacts on intent_events.contact_id = contacts.contact_id
    where contacts.is_fit
      and (intent_events.sales_lead_at is null
           or intent_events.occurred_at <= intent_events.sales_lead_at)
    group by intent_events.contact_id
),

event_counts as (
    select
        known_events.contact_id,
        count(*) filter (where known_events.is_intent) as intent_events,
        count(*) filter (where not known_events.is_intent) as non_intent_events,
        count(*) filter (
            where known_events.is_intent
              and known_events.occurred_at > sales_lead.sales_lead_at
        ) as intent_events_after_sales_lead
    from known_events
    left join sales_lead on known_events.contact_id = sales_lead.contact_id
    group by known_events.contact_id
),

quote as (
    select
        new_business_deals.contact_id,
        min(quotes.sent_at) as quote_at
    from quotes
    inner join new_business_deals on quotes.deal_id = new_business_deals.deal_id
    cross join as_of
    where quotes.status <> 'draft'
      and quotes.sent_at <= as_of.as_of
    group by new_business_deals.contact_id
),

customer as (
    select
        contact_id,
        min(closed_at) as customer_at
    from new_business_deals
    where stage = 'closed_won'
    group by contact_id
),

joined as (
    select
        contacts.contact_id,
        contacts.company_id,
        contacts.owner_user_id,
        contacts.email_domain,
        contacts.is_free_mail,
        contacts.has_live_company,
        contacts.is_fit,
        qualifying_event.marketing_lead_at,
        qualifying_event.qualifying_event_id,
        qualifying_event.qualifying_event_type,
        sales_lead.sales_lead_at,
        sales_lead.sales_lead_deal_id,
        sales_lead.sales_lead_deal_owner_user_id,
        quote.quote_at,
        customer.customer_at,
        coalesce(event_counts.intent_events, 0) as intent_events,
        coalesce(event_counts.non_intent_events, 0) as non_intent_events,
        coalesce(event_counts.intent_events_after_sales_lead, 0) as intent_events_after_sales_lead
    from contacts
    left join qualifying_event on contacts.contact_id = qualifying_event.contact_id
    left join sales_lead on contacts.contact_id = sales_lead.contact_id
    left join quote on contacts.contact_id = quote.contact_id
    left join customer on contacts.contact_id = customer.contact_id
    left join event_counts on contacts.contact_id = event_counts.contact_id
),

final as (
    select
        *,
        case
            when customer_at is not null then 'customer'
            when quote_at is not null then 'quote'
            when sales_lead_at is not null then 'sales_lead'
            when marketing_lead_at is not null then 'marketing_lead'
            else 'none'
        end as stage,
        case
            when marketing_lead_at is not null then 'marketing'
            when sales_lead_at is not null then 'sales'
        end as lead_origin,
        case
            when marketing_lead_at is not null then null
            when intent_events = 0 and non_intent_events = 0 then 'no marketing events'
            when intent_events = 0 then 'no intent event (only non-intent events)'
            when not is_fit then 'not fit'
            when intent_events = intent_events_after_sales_lead then 'intent only after becoming a sales lead'
        end as no_marketing_lead_reason
    from joined
)

select * from final
