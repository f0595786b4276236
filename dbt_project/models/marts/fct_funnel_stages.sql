-- One row per contact and stage reached, with the time spent in it (int_leads__funnel).
with funnel as (
    select * from {{ ref('int_leads__funnel') }}
)

select
    contact_id,
    stage,
    stage_order,
    entered_at,
    exited_at,
    {{ local_month('entered_at') }} as entered_month,
    lead_origin,
    team,
    definitions_version
from funnel
