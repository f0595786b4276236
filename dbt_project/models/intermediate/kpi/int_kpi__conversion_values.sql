-- Conversion KPIs (the registry's `conversion` computation): per cohort period, of the
-- contacts that reached the funnel stage `fact` in the period, the share that reached
-- `converted_fact` within the window (start <= end <= start + conversion_window_days × 24 h).
-- Not zero-filled: a row exists only for a non-empty cohort. Team = the lead's team.
with registry as (
    select * from {{ ref('int_kpi__registry') }}
    where computation = 'conversion'
),

funnel as (
    select * from {{ ref('int_leads__funnel') }}
),

kpis as (
    select distinct kpi_id, kpi_kind, grain, fact, converted_fact from registry
),

cohort_members as (
    select
        kpis.kpi_id,
        kpis.grain,
        started.contact_id,
        started.team,
        started.entered_at as started_at,
        converted.entered_at as converted_at
    from kpis
    inner join funnel as started on kpis.fact = started.stage
    left join funnel as converted
        on started.contact_id = converted.contact_id
        and kpis.converted_fact = converted.stage
),

judged as (
    select
        kpi_id,
        team,
        {{ period_of('started_at', 'grain') }} as period_start,
        coalesce(
            converted_at >= started_at
            and converted_at <= {{ conversion_window_end('started_at') }},
            false
        ) as has_converted
    from cohort_members
),

by_scope as (
    select
        registry.kpi_id,
        registry.kpi_kind,
        registry.grain,
        judged.period_start,
        registry.scope,
        case registry.scope when 'team' then judged.team else 'all' end as scope_id,
        count(*) filter (where judged.has_converted) as converted,
        count(*) as cohort_size
    from judged
    inner join registry on judged.kpi_id = registry.kpi_id
    where registry.scope in ('team', 'company')
    group by 1, 2, 3, 4, 5, 6
)

select
    kpi_id,
    kpi_kind,
    grain,
    period_start,
    scope,
    scope_id,
    cast(converted as double) / cohort_size as value,
    cast(converted as double) as numerator,
    cast(cohort_size as double) as denominator
from by_scope
