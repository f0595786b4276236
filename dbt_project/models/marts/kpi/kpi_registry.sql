-- The registry of KPIs as published: one row per KPI (seed kpi_definitions), its scopes
-- (seed kpi_scopes) joined into one comma-separated text for readers (rep,team,company).
-- The method warns against measuring too much (see the test on max_active_kpis). Inactive
-- KPIs are listed but not computed.
with definitions as (
    select * from {{ ref('kpi_definitions') }}
),

scopes as (
    select * from {{ ref('kpi_scopes') }}
),

scope_lists as (
    select
        kpi_id,
        {{ ordered_string_agg(
            'scope', "','", "case scope when 'rep' then 1 when 'team' then 2 else 3 end"
        ) }} as scopes
    from scopes
    group by kpi_id
)

select
    definitions.kpi_id,
    definitions.name_en,
    definitions.name_nl,
    definitions.kpi_kind,
    definitions.grain,
    scope_lists.scopes,
    definitions.unit,
    definitions.definition,
    definitions.owner,
    definitions.is_active,
    definitions.display_order,
    definitions.computation,
    definitions.fact,
    definitions.converted_fact,
    definitions.growth_of
from definitions
left join scope_lists on definitions.kpi_id = scope_lists.kpi_id
