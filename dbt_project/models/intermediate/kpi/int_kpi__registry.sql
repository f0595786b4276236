-- The active KPIs of the registry, one row per KPI and scope it is reported for: the seeds
-- kpi_definitions (one row per KPI) and kpi_scopes (one row per KPI and scope). Every KPI
-- model reads the registry here; inactive KPIs are not computed.
with definitions as (
    select * from {{ ref('kpi_definitions') }}
),

scopes as (
    select * from {{ ref('kpi_scopes') }}
),

final as (
    select
        definitions.kpi_id,
        definitions.kpi_kind,
        definitions.grain,
        definitions.unit,
        definitions.computation,
        definitions.fact,
        definitions.converted_fact,
        definitions.growth_of,
        scopes.scope
    from definitions
    inner join scopes on definitions.kpi_id = scopes.kpi_id
    where definitions.is_active
)

select * from final
