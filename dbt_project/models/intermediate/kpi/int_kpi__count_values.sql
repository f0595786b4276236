-- Count and sum KPIs (action and result): a row, with 0, for every period of every series
-- of a scope the KPI is reported for (definitions, "Series and zero-filling").
with registry as (
    select * from {{ ref('kpi_definitions') }}
    where is_active and kpi_kind in ('action', 'result')
),

series as (
    select * from {{ ref('int_kpi__series') }}
),

contributions as (
    select * from {{ ref('int_kpi__contributions') }}
),

kpi_series as (
    select
        registry.kpi_id,
        registry.kpi_kind,
        registry.grain,
        series.scope,
        series.scope_id,
        series.series_start,
        series.series_end
    from registry
    inner join series
        on registry.grain = series.grain
        and list_contains(string_split(registry.scopes, ','), series.scope)
),

periods as (
    select
        kpi_series.kpi_id,
        kpi_series.kpi_kind,
        kpi_series.grain,
        kpi_series.scope,
        kpi_series.scope_id,
        cast(period.period_start as date) as period_start
    from kpi_series,
        unnest(
            generate_series(
                cast(kpi_series.series_start as timestamp),
                cast(kpi_series.series_end as timestamp),
                case when kpi_series.grain = 'week' then interval 7 day else interval 1 month end
            )
        ) as period (period_start)
),

credited as (
    select kpi_id, period_start, 'rep' as scope, rep_id as scope_id, sum(amount) as amount
    from contributions where rep_id is not null
    group by kpi_id, period_start, rep_id
    union all
    select kpi_id, period_start, 'team', team, sum(amount)
    from contributions where team is not null
    group by kpi_id, period_start, team
    union all
    select kpi_id, period_start, 'company', 'all', sum(amount)
    from contributions
    group by kpi_id, period_start
),

zero_filled as (
    select
        periods.*,
        coalesce(credited.amount, 0) as value
    from periods
    left join credited
        on periods.kpi_id = credited.kpi_id
        and periods.period_start = credited.period_start
        and periods.scope = credited.scope
        and periods.scope_id = credited.scope_id
)

select
    kpi_id,
    kpi_kind,
    grain,
    period_start,
    scope,
    scope_id,
    cast(value as double) as value,
    cast(value as double) as numerator,
    cast(null as double) as denominator
from zero_filled
