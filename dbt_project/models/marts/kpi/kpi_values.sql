-- Every KPI value per period and scope, with completeness (int_kpi__values).
with kpi_values as (
    select * from {{ ref('int_kpi__values') }}
)

select
    kpi_id,
    kpi_kind,
    grain,
    period_start,
    scope,
    scope_id,
    value,
    numerator,
    denominator,
    is_complete
from kpi_values
