-- The registry of KPIs: the method warns against measuring too much (see the test on
-- max_active_kpis). Inactive KPIs are not computed.
with registry as (
    select * from {{ ref('kpi_definitions') }}
)

select
    kpi_id,
    name_en,
    name_nl,
    kpi_kind,
    grain,
    scopes,
    unit,
    definition,
    owner,
    is_active
from registry
