-- Baseline (nulmeting) per action/result KPI and scope (definitions, "Baseline and targets"):
-- the mean over baseline_periods complete periods of the series (3 months / 8 weeks):
-- with kpi_program_start set and that many complete periods before it, the last ones before
-- it; otherwise the first ones of the series (a rep's partial first period included).
-- Fewer complete periods: no baseline yet (no row).
{% set program_start = var('kpi_program_start') %}
with kpi_values as (
    select * from {{ ref('int_kpi__values') }}
    where kpi_kind in ('action', 'result')
),

complete_periods as (
    select
        *,
        case grain
            when 'week' then {{ var('baseline_periods_week') }}
            else {{ var('baseline_periods_month') }}
        end as periods_needed,
        {% if program_start %}
        {{ next_period_start('period_start', 'grain') }} <= cast('{{ program_start }}' as date)
        {% else %}
        false
        {% endif %} as is_before_program_start
    from kpi_values
    where is_complete
),

ranked as (
    select
        *,
        row_number() over (
            partition by kpi_id, scope, scope_id order by period_start
        ) as nth_from_series_start,
        -- a sum, not count(*) filter (…): Spark has no FILTER on window aggregates
        sum(case when is_before_program_start then 1 else 0 end) over (
            partition by kpi_id, scope, scope_id
        ) as periods_before_program_start,
        row_number() over (
            partition by kpi_id, scope, scope_id, is_before_program_start
            order by period_start desc
        ) as nth_before_program_start
    from complete_periods
),

window_periods as (
    select *
    from ranked
    where
        case
            when periods_before_program_start >= periods_needed
                then is_before_program_start and nth_before_program_start <= periods_needed
            else nth_from_series_start <= periods_needed
        end
),

baselines as (
    select
        kpi_id,
        scope,
        scope_id,
        any_value(grain) as grain,
        avg(value) as baseline_value,
        min(period_start) as baseline_from,
        max(period_start) as baseline_to,
        count(*) as periods_used,
        any_value(periods_needed) as periods_needed
    from window_periods
    group by kpi_id, scope, scope_id
)

select
    kpi_id,
    scope,
    scope_id,
    grain,
    cast(baseline_value as double) as baseline_value,
    baseline_from,
    baseline_to,
    cast(periods_used as bigint) as periods_used
from baselines
where periods_used = periods_needed
