-- Baseline (nulmeting) per action/result KPI and scope that has one (int_kpi__baselines).
with baselines as (
    select * from {{ ref('int_kpi__baselines') }}
)

select
    kpi_id,
    scope,
    scope_id,
    grain,
    baseline_value,
    baseline_from,
    baseline_to,
    periods_used
from baselines
