-- as_of with the local week and month that contain it: where every KPI series ends.
with as_of as (
    select * from {{ ref('int_as_of') }}
)

select
    as_of,
    as_of_local_date,
    {{ period_of('as_of', "'week'") }} as as_of_week,
    {{ period_of('as_of', "'month'") }} as as_of_month
from as_of
