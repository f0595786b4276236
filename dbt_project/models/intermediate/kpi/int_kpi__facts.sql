-- Every fact a count or sum KPI counts, one row per fact, with the instant that places it in
-- a period and the sales rep it is credited to (empty when it counts only for the company).
-- Which KPI counts which fact, and in which grain, is the registry's (kpi_definitions.fact).
--   cold_email, cold_call, sales_conversation: an activity whose flag is true, at occurred_at,
--     credited to its owner (the flags are only true for activities of sales reps)
--   marketing_lead: a contact's marketing_lead_at (company only)
--   sales_lead: a contact's sales_lead_at, credited to the owner of the sales-lead deal when
--     that owner is a sales rep
--   won_new_business_eur, won_upsell_eur: a won deal's amount_eur (0 when the amount or its
--     rate is missing) at closed_at, credited to its current owner when a sales rep; the
--     company counts every live deal. Renewals are neither.
with activities as (
    select * from {{ ref('int_activities__flagged') }}
),

leads as (
    select * from {{ ref('int_leads__stages') }}
),

deals as (
    select * from {{ ref('int_deals__credited') }}
),

users as (
    select * from {{ ref('int_users__roles') }}
),

activity_facts as (
    select
        case
            when is_cold_email then 'cold_email'
            when is_cold_call then 'cold_call'
        end as fact,
        occurred_at as counted_at,
        case when is_owned_by_sales_rep then owner_user_id end as rep_id,
        1.0 as amount
    from activities
    where is_cold_email or is_cold_call
    union all
    select
        'sales_conversation',
        occurred_at,
        case when is_owned_by_sales_rep then owner_user_id end,
        1.0
    from activities
    where is_sales_conversation
),

marketing_leads as (
    select
        'marketing_lead' as fact,
        marketing_lead_at as counted_at,
        cast(null as {{ dbt.type_string() }}) as rep_id,
        1.0 as amount
    from leads
    where marketing_lead_at is not null
),

sales_leads as (
    select
        'sales_lead' as fact,
        leads.sales_lead_at as counted_at,
        case when users.is_sales_rep then users.user_id end as rep_id,
        1.0 as amount
    from leads
    left join users on leads.sales_lead_deal_owner_user_id = users.user_id
    where leads.sales_lead_at is not null
),

won_deals as (
    select
        case deal_type
            when 'new_business' then 'won_new_business_eur'
            else 'won_upsell_eur'
        end as fact,
        closed_at as counted_at,
        case when is_owned_by_sales_rep then owner_user_id end as rep_id,
        coalesce(amount_eur, 0) as amount
    from deals
    where is_won and deal_type in ('new_business', 'upsell')
)

select * from activity_facts
union all select * from marketing_leads
union all select * from sales_leads
union all select * from won_deals
