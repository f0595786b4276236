-- The method warns against measuring too much: at most max_active_kpis KPIs may be active.
select count(*) as active_kpis
from {{ ref('kpi_definitions') }}
where is_active
having count(*) > {{ var('max_active_kpis') }}
