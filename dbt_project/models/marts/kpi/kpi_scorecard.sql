-- Actual vs target per KPI, scope and period with a target. Insight KPIs get no targets and
-- never appear here (so never on a rep's card).
with kpi_values as (
    select * from {{ ref('int_kpi__values') }}
),

targets as (
    select * from {{ ref('int_kpi__targets') }}
),

joined as (
    select
        kpi_values.kpi_id,
        kpi_values.kpi_kind,
        kpi_values.scope,
        kpi_values.scope_id,
        kpi_values.period_start,
        kpi_values.value as actual,
        targets.target,
        targets.target_source,
        kpi_values.is_complete
    from kpi_values
    inner join targets
        on kpi_values.kpi_id = targets.kpi_id
        and kpi_values.scope = targets.scope
        and kpi_values.scope_id = targets.scope_id
        and kpi_values.period_start = targets.period_start
)

select
    kpi_id,
    kpi_kind,
    scope,
    scope_id,
    period_start,
    actual,
    target,
    target_source,
    case when target <> 0 then actual / target end as attainment,
    is_complete,
    case
        when not is_complete then 'in_progress'
        when actual >= target * (1 - 1e-9) then 'met'
        else 'below'
    end as status
from joined
