-- Conversion KPIs (insight): per cohort month, of the cohort's contacts, the share that
-- converted within the window (start <= end <= start + conversion_window_days × 24 h).
-- Not zero-filled: a row exists only for a non-empty cohort. Team = the lead's team.
with leads as (
    select * from {{ ref('dim_leads') }}
),

registry as (
    select * from {{ ref('kpi_definitions') }}
    where is_active
),

cohort_members as (
    select
        'conv_marketing_to_sales_lead' as kpi_id,
        contact_id,
        team,
        marketing_lead_at as started_at,
        sales_lead_at as converted_at
    from leads
    where marketing_lead_at is not null
    union all
    select 'conv_sales_lead_to_customer', contact_id, team, sales_lead_at, customer_at
    from leads
    where sales_lead_at is not null
    union all
    select 'conv_quote_to_customer', contact_id, team, quote_at, customer_at
    from leads
    where quote_at is not null
),

judged as (
    select
        kpi_id,
        team,
        {{ period_of('started_at', "'month'") }} as period_start,
        coalesce(
            converted_at >= started_at
            and converted_at <= started_at + {{ conversion_window() }},
            false
        ) as has_converted
    from cohort_members
),

by_scope as (
    select kpi_id, period_start, 'team' as scope, team as scope_id,
           count(*) filter (where has_converted) as converted, count(*) as cohort_size
    from judged
    group by kpi_id, period_start, team
    union all
    select kpi_id, period_start, 'company', 'all',
           count(*) filter (where has_converted), count(*)
    from judged
    group by kpi_id, period_start
)

select
    by_scope.kpi_id,
    registry.kpi_kind,
    registry.grain,
    by_scope.period_start,
    by_scope.scope,
    by_scope.scope_id,
    cast(by_scope.converted as double) / by_scope.cohort_size as value,
    cast(by_scope.converted as double) as numerator,
    cast(by_scope.cohort_size as double) as denominator
from by_scope
inner join registry
    on by_scope.kpi_id = registry.kpi_id
    and list_contains(string_split(registry.scopes, ','), by_scope.scope)
