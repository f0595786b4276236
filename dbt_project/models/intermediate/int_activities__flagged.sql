-- Activity flags (definitions, "Activities"). Only live activities at or before as_of, owned
-- by sales reps (current role), count; task and note never do. Each flag is true exactly when
-- its KPI counts the activity, and false (never empty) otherwise.
with activities as (
    select * from {{ ref('stg_crm__activities') }}
),

users as (
    select * from {{ ref('int_users__roles') }}
),

leads as (
    select * from {{ ref('int_leads__stages') }}
),

deals as (
    select * from {{ ref('int_deals__as_of') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

companies_first_won as (
    -- a colleague at a customer is not cold: the first won deal (any type) per live company
    select company_id, min(closed_at) as first_won_at
    from deals
    where stage = 'closed_won' and company_id is not null
    group by company_id
),

known_activities as (
    select activities.*
    from activities
    cross join as_of
    where activities.occurred_at <= as_of.as_of
),

enriched as (
    select
        known_activities.*,
        users.team,
        coalesce(users.is_sales_rep, false) as is_sales_rep,
        leads.contact_id is not null as has_live_contact,
        deals.deal_id is not null as has_live_deal,
        leads.marketing_lead_at,
        leads.sales_lead_at,
        leads.customer_at,
        leads.has_live_company,
        companies_first_won.first_won_at
    from known_activities
    left join users on known_activities.owner_user_id = users.user_id
    left join leads on known_activities.contact_id = leads.contact_id
    left join deals on known_activities.deal_id = deals.deal_id
    left join companies_first_won
        on leads.has_live_company and leads.company_id = companies_first_won.company_id
),

cold_target as (
    select
        *,
        has_live_contact
        and not coalesce(marketing_lead_at < occurred_at, false)
        and not coalesce(sales_lead_at < occurred_at, false)
        and not coalesce(customer_at < occurred_at, false)
        and not coalesce(first_won_at < occurred_at, false) as is_cold_target
    from enriched
),

flagged as (
    select
        *,
        is_sales_rep
        and (
            (activity_type = 'meeting' and outcome = 'held')
            or (
                activity_type = 'call'
                and outcome = 'connected'
                and coalesce(duration_seconds >= {{ var('min_conversation_seconds') }}, false)
            )
        )
        and (has_live_contact or has_live_deal) as is_sales_conversation,
        is_sales_rep
        and activity_type = 'email'
        and direction = 'outbound'
        and is_cold_target as is_cold_email,
        is_sales_rep
        and activity_type = 'call'
        and direction = 'outbound'
        and is_cold_target as is_cold_call
    from cold_target
)

select
    activity_id,
    activity_type,
    direction,
    outcome,
    occurred_at,
    duration_seconds,
    owner_user_id,
    team,
    is_sales_rep as is_owned_by_sales_rep,
    contact_id,
    deal_id,
    coalesce(is_sales_conversation, false) as is_sales_conversation,
    coalesce(is_cold_email, false) as is_cold_email,
    coalesce(is_cold_call, false) as is_cold_call
from flagged
