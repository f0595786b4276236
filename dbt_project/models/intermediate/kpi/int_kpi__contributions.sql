-- What each fact contributes to the count and sum KPIs, with the rep and team it is
-- credited to (empty when it counts only for the company). One row per fact and KPI.
--   cold_emails, cold_calls, sales_conversations: the activity's owner and their team
--   new_marketing_leads: company only
--   new_sales_leads: the owner of the sales-lead deal (a sales rep) and their team, else team Unassigned
--   new_revenue, upsell_revenue: the won deal's current owner and team when a sales rep;
--     the company counts every live deal; a won deal without amount (or rate) adds 0
with activities as (
    select * from {{ ref('fct_activities') }}
),

leads as (
    select * from {{ ref('dim_leads') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),

reps as (
    select * from {{ ref('dim_reps') }}
),

activity_kpis as (
    select
        kpi.kpi_id,
        'week' as grain,
        activities.activity_week as period_start,
        case when activities.is_owned_by_sales_rep then activities.owner_user_id end as rep_id,
        case when activities.is_owned_by_sales_rep then activities.team end as team,
        1.0 as amount
    from activities
    cross join (
        values ('cold_emails'), ('cold_calls'), ('sales_conversations')
    ) as kpi (kpi_id)
    where (kpi.kpi_id = 'cold_emails' and activities.is_cold_email)
       or (kpi.kpi_id = 'cold_calls' and activities.is_cold_call)
       or (kpi.kpi_id = 'sales_conversations' and activities.is_sales_conversation)
),

new_marketing_leads as (
    select
        'new_marketing_leads' as kpi_id,
        'month' as grain,
        {{ period_of('marketing_lead_at', "'month'") }} as period_start,
        cast(null as varchar) as rep_id,
        cast(null as varchar) as team,
        1.0 as amount
    from leads
    where marketing_lead_at is not null
),

new_sales_leads as (
    select
        'new_sales_leads' as kpi_id,
        'month' as grain,
        {{ period_of('leads.sales_lead_at', "'month'") }} as period_start,
        case when reps.is_sales_rep then reps.user_id end as rep_id,
        case when reps.is_sales_rep then reps.team else 'Unassigned' end as team,
        1.0 as amount
    from leads
    left join reps on leads.sales_lead_deal_owner_user_id = reps.user_id
    where leads.sales_lead_at is not null
),

revenue as (
    select
        case deal_type when 'new_business' then 'new_revenue' else 'upsell_revenue' end as kpi_id,
        'month' as grain,
        closed_month as period_start,
        case when is_owned_by_sales_rep then owner_user_id end as rep_id,
        case when is_owned_by_sales_rep then team end as team,
        coalesce(amount_eur, 0) as amount
    from deals
    where is_won and deal_type in ('new_business', 'upsell')
)

select * from activity_kpis
union all select * from new_marketing_leads
union all select * from new_sales_leads
union all select * from revenue
