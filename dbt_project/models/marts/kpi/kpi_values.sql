-- Every KPI value per period and scope, with completeness (int_kpi__values).
with kpi_values as (
    select * from {{ ref('int_kpi__values') }}
),

scope_names as (
    select * from {{ ref('int_kpi__scope_names') }}
)

select
    kpi_values.kpi_id,
    kpi_values.kpi_kind,
    kpi_values.grain,
    kpi_values.period_start,
    kpi_values.scope,
    kpi_values.scope_id,
    kpi_values.value,
    kpi_values.numerator,
    kpi_values.denominator,
    kpi_values.is_complete,
    scope_names.scope_name,
    scope_names.team
from kpi_values
left join scope_names
    on kpi_values.scope = scope_names.scope
    and kpi_values.scope_id = scope_names.scope_id
