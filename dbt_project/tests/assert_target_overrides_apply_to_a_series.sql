{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_targets__overrides'}}}) }}
-- A target override must name a period of its KPI's series for that scope (for example not
-- before a rep's first activity); one that does not is listed here and not applied.
select overrides.source_file, overrides.source_line, overrides.kpi_id, overrides.scope,
       overrides.scope_id, overrides.period_start
from {{ ref('stg_targets__overrides') }} as overrides
left join {{ ref('kpi_values') }} as kpi_values
    on overrides.kpi_id = kpi_values.kpi_id
    and overrides.scope = kpi_values.scope
    and overrides.scope_id = kpi_values.scope_id
    and overrides.period_start = kpi_values.period_start
where kpi_values.kpi_id is null
