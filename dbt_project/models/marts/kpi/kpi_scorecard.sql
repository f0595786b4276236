-- Actual vs target per KPI, scope and period with a target. Insight KPIs get no targets and
-- never appear here (so never on a rep's card).
with kpi_values as (
    select * from {{ ref('int_kpi__values') }}
),

targets as (
    select * from {{ ref('int_kpi__targets') }}
),

scope_names as (
    select * from {{ ref('int_kpi__scope_names') }}
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
    joined.kpi_id,
    joined.kpi_kind,
    joined.scope,
    joined.scope_id,
    joined.period_start,
    joined.actual,
    joined.target,
    joined.target_source,
    case when joined.target <> 0 then joined.actual / joined.target end as attainment,
    joined.is_complete,
    case
        when not joined.is_complete then 'in_progress'
        when joined.actual >= joined.target * (1 - 1e-9) then 'met'
        else 'below'
    end as status,
    scope_names.scope_name,
    scope_names.team
from joined
left join scope_names
    on joined.scope = scope_names.scope
    and joined.scope_id = scope_names.scope_id
