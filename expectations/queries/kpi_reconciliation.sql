-- Facts reconcile (definitions v1.1, "Facts and series"): no fact falls out of a KPI.
--   company: for every count and sum KPI of the registry and every period, the company's value
--            equals the facts it counts in the fact marts — marketing and sales leads in
--            fct_funnel_stages (their month of entry), cold e-mails, cold calls and sales
--            conversations in fct_activities, won revenue in EUR in fct_deals (0 without a
--            rate). A fact in a period the company's series does not cover has no KPI row to
--            match, and fails.
--   team:    for every count and sum KPI reported for reps and teams, each team's value
--            equals the sum of its reps' values (dim_reps.team), period by period.
-- A fact mart holds a period column per grain the KPIs use (activity_week/activity_month,
-- entered_month, closed_month); a KPI given a grain its fact mart has no column for finds no
-- period and fails here, visibly.
with registry as (
    select * from intermediate.int_kpi__registry
    where computation in ('count', 'sum')
),

kpis as (
    select distinct kpi_id, grain, fact from registry
),

facts as (
    select 'cold_email' as fact, activity_week as week, activity_month as month, 1.0 as amount
    from marts.fct_activities where is_cold_email
    union all
    select 'cold_call', activity_week, activity_month, 1.0
    from marts.fct_activities where is_cold_call
    union all
    select 'sales_conversation', activity_week, activity_month, 1.0
    from marts.fct_activities where is_sales_conversation
    union all
    select stage, cast(null as date), entered_month, 1.0
    from marts.fct_funnel_stages where stage in ('marketing_lead', 'sales_lead')
    union all
    select 'won_new_business_eur', cast(null as date), closed_month, coalesce(amount_eur, 0)
    from marts.fct_deals where is_won and deal_type = 'new_business'
    union all
    select 'won_upsell_eur', cast(null as date), closed_month, coalesce(amount_eur, 0)
    from marts.fct_deals where is_won and deal_type = 'upsell'
),

facts_per_period as (
    select
        kpis.kpi_id,
        case kpis.grain when 'week' then facts.week else facts.month end as period_start,
        sum(facts.amount) as value
    from facts
    inner join kpis on facts.fact = kpis.fact
    group by 1, 2
),

kpi_values as (
    -- one value per key (a key twice is kpi_sanity's to report)
    select kpi_id, scope, scope_id, period_start, max(value) as value
    from marts.kpi_values
    where kpi_id in (select kpi_id from kpis)
    group by kpi_id, scope, scope_id, period_start
),

company as (
    select
        'company_equals_its_facts' as reconciliation,
        coalesce(kpi_values.kpi_id, facts_per_period.kpi_id) as kpi_id,
        'company' as scope,
        'all' as scope_id,
        coalesce(kpi_values.period_start, facts_per_period.period_start) as period_start,
        kpi_values.value as kpi_value,
        coalesce(facts_per_period.value, 0) as reconciled_value
    from (select * from kpi_values where scope = 'company') as kpi_values
    full outer join facts_per_period
        on kpi_values.kpi_id = facts_per_period.kpi_id
        and kpi_values.period_start = facts_per_period.period_start
),

rep_and_team_kpis as (
    select kpi_id from registry where scope in ('rep', 'team')
    group by kpi_id
    having count(distinct scope) = 2
),

reps_per_team as (
    select kpi_values.kpi_id, reps.team, kpi_values.period_start, sum(kpi_values.value) as value
    from kpi_values
    inner join marts.dim_reps as reps on kpi_values.scope_id = reps.user_id
    where kpi_values.scope = 'rep'
        and kpi_values.kpi_id in (select kpi_id from rep_and_team_kpis)
    group by 1, 2, 3
),

teams as (
    select
        'team_equals_its_reps' as reconciliation,
        coalesce(team_values.kpi_id, reps_per_team.kpi_id) as kpi_id,
        'team' as scope,
        coalesce(team_values.scope_id, reps_per_team.team) as scope_id,
        coalesce(team_values.period_start, reps_per_team.period_start) as period_start,
        team_values.value as kpi_value,
        coalesce(reps_per_team.value, 0) as reconciled_value
    from (
        select * from kpi_values
        where scope = 'team' and kpi_id in (select kpi_id from rep_and_team_kpis)
    ) as team_values
    full outer join reps_per_team
        on team_values.kpi_id = reps_per_team.kpi_id
        and team_values.scope_id = reps_per_team.team
        and team_values.period_start = reps_per_team.period_start
),

both_checks as (
    select * from company
    union all
    select * from teams
)

select
    *,
    coalesce(
        abs(kpi_value - reconciled_value) <= 1e-6 * greatest(1, abs(reconciled_value)),
        false
    ) as is_reconciled
from both_checks
