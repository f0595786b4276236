-- new_revenue_mom_growth: a row for every month of the new_revenue series (team and company):
-- numerator = current − previous, denominator = previous, value = numerator / denominator;
-- all three empty in the first month, the value empty when previous is 0.
with new_revenue as (
    select * from {{ ref('int_kpi__count_values') }}
    where kpi_id = 'new_revenue'
),

registry as (
    select * from {{ ref('kpi_definitions') }}
    where is_active and kpi_id = 'new_revenue_mom_growth'
),

with_previous as (
    select
        *,
        lag(value) over (partition by scope, scope_id order by period_start) as previous_value
    from new_revenue
)

select
    registry.kpi_id,
    registry.kpi_kind,
    registry.grain,
    with_previous.period_start,
    with_previous.scope,
    with_previous.scope_id,
    case
        when with_previous.previous_value <> 0
            then (with_previous.value - with_previous.previous_value) / with_previous.previous_value
    end as value,
    with_previous.value - with_previous.previous_value as numerator,
    with_previous.previous_value as denominator
from with_previous
inner join registry
    on list_contains(string_split(registry.scopes, ','), with_previous.scope)
