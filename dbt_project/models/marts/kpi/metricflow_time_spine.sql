-- The day spine MetricFlow (dbt's semantic layer) needs to place KPI periods in time: one row
-- per day from 2000-01-01 to 2100-01-01 (dbt's portable date_spine macro).
with days as (
    {{ dbt.date_spine(datepart="day", start_date="cast('2000-01-01' as date)", end_date="cast('2100-01-01' as date)") }}
)

select cast(date_day as date) as date_day
from days
