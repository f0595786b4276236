-- Rule 6: marts are sane — conv_* rates in [0, 1], revenue >= 0, one row per KPI key, and
-- complete zero-filled series (no missing period between a series' first and last, and no
-- company or team series cut short before the period of as_of). Which KPIs are rates and
-- which are revenue is the registry's (computation conversion; computation sum in eur).
with registry as (
    select kpi_id, computation, unit from marts.kpi_registry
),

keyed as (
    select
        *,
        count(*) over (partition by kpi_id, scope, scope_id, period_start) as rows_per_key
    from marts.kpi_values
),

as_of_periods as (
    select as_of_week, as_of_month from intermediate.int_kpi__as_of_periods
),

series as (
    select
        kpi_id,
        scope,
        scope_id,
        count(distinct period_start) as periods,
        -- portable SQL (the checks run on DuckDB and on Spark as they are): the days between
        -- two week starts are the whole days of a timestamp difference; months by calendar
        case any_value(grain)
            when 'week' then extract(day from (
                cast(max(period_start) as timestamp) - cast(min(period_start) as timestamp)
            )) / 7 + 1
            else (year(max(period_start)) - year(min(period_start))) * 12
                + month(max(period_start)) - month(min(period_start)) + 1
        end as expected_periods,
        max(period_start) as last_period,
        case any_value(grain)
            when 'week' then any_value(as_of_periods.as_of_week)
            else any_value(as_of_periods.as_of_month)
        end as as_of_period
    from marts.kpi_values
    cross join as_of_periods
    where kpi_kind in ('action', 'result')
    group by kpi_id, scope, scope_id
)

select
    keyed.kpi_id,
    keyed.scope,
    keyed.scope_id,
    keyed.period_start,
    case when registry.computation = 'conversion' then keyed.value end as conversion_rate,
    case when registry.computation = 'sum' and registry.unit = 'eur' then keyed.value end
        as revenue,
    keyed.rows_per_key,
    -- no gap inside a series, and company and team series run to the period of as_of (a
    -- rep's may end earlier: an inactive rep's series ends at its last activity or deal)
    coalesce(
        series.periods = series.expected_periods
        and (keyed.scope = 'rep' or series.last_period = series.as_of_period),
        true
    ) as is_series_complete
from keyed
left join registry on keyed.kpi_id = registry.kpi_id
left join series
    on keyed.kpi_id = series.kpi_id
    and keyed.scope = series.scope
    and keyed.scope_id = series.scope_id
