-- One row per contact and stage reached, with when it entered the stage and when it left it:
-- a stage is exited at the earliest entry into a later stage the contact reached (empty
-- while it has not moved on). The funnel mart and the conversion KPIs read it.
with stages as (
    select * from {{ ref('int_leads__stages') }}
),

teams as (
    select * from {{ ref('int_leads__teams') }}
),

leads as (
    select
        stages.contact_id,
        stages.marketing_lead_at,
        stages.sales_lead_at,
        stages.quote_at,
        stages.customer_at,
        stages.lead_origin,
        teams.team
    from stages
    left join teams on stages.contact_id = teams.contact_id
),

stages_reached as (
    select contact_id, 'marketing_lead' as stage, 1 as stage_order, marketing_lead_at as entered_at,
           lead_origin, team
    from leads where marketing_lead_at is not null
    union all
    select contact_id, 'sales_lead', 2, sales_lead_at, lead_origin, team
    from leads where sales_lead_at is not null
    union all
    select contact_id, 'quote', 3, quote_at, lead_origin, team
    from leads where quote_at is not null
    union all
    select contact_id, 'customer', 4, customer_at, lead_origin, team
    from leads where customer_at is not null
),

with_exit as (
    select
        current_stage.*,
        (
            select min(later.entered_at)
            from stages_reached as later
            where later.contact_id = current_stage.contact_id
              and later.stage_order > current_stage.stage_order
        ) as exited_at
    from stages_reached as current_stage
)

select
    contact_id,
    stage,
    stage_order,
    entered_at,
    exited_at,
    lead_origin,
    team,
    {{ definitions_version() }} as definitions_version
from with_exit
