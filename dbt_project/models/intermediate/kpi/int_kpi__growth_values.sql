-- Growth KPIs (the registry's `growth` computation, e.g. new_revenue_mom_growth): a row for
-- every period of the series of the KPI it is the growth of (`growth_of`), per scope it is
-- reported for: numerator = current − previous, denominator = previous,
-- value = numerator / denominator; all three empty in the first period, the value empty when
-- previous is 0.
with registry as (
    select * from {{ ref('int_kpi__registry') }}
    where computation = 'growth'
),

count_values as (
    select * from {{ ref('int_kpi__count_values') }}
),

with_previous as (
    select
        registry.kpi_id,
        registry.kpi_kind,
        registry.grain,
        count_values.period_start,
        count_values.scope,
        count_values.scope_id,
        count_values.value,
        lag(count_values.value) over (
            partition by registry.kpi_id, count_values.scope, count_values.scope_id
            order by count_values.period_start
        ) as previous_value
    from registry
    inner join count_values
        on registry.growth_of = count_values.kpi_id
        and registry.scope = count_values.scope
)

select
    kpi_id,
    kpi_kind,
    grain,
    period_start,
    scope,
    scope_id,
    case when previous_value <> 0 then (value - previous_value) / previous_value end as value,
    value - previous_value as numerator,
    previous_value as denominator
from with_previous
