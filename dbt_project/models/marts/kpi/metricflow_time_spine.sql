-- The day spine MetricFlow (dbt's semantic layer) needs to place KPI periods in time: one row
-- per day from 2000-01-01 up to 2100-01-01 (excluded), from each engine's series function
-- (macro day_spine).
with days as (
    {{ day_spine("cast('2000-01-01' as date)", "cast('2100-01-01' as date)") }}
)

select date_day
from days
