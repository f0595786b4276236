-- Every KPI value per period and scope, with completeness: a period is complete when the
-- local midnight that starts the next one is <= as_of (the local date of as_of has reached the
-- next period's first day: kpi_periods.sql); a conversion cohort also has to be
-- mature: (last day of its month + conversion_window_days) <= the local date of as_of.
with counts as (
    select * from {{ ref('int_kpi__count_values') }}
),

conversions as (
    select * from {{ ref('int_kpi__conversion_values') }}
),

growth as (
    select * from {{ ref('int_kpi__growth_values') }}
),

as_of as (
    select * from {{ ref('int_kpi__as_of_periods') }}
),

all_values as (
    select *, false as is_conversion from counts
    union all
    select *, true from conversions
    union all
    select *, false from growth
),

final as (
    select
        all_values.kpi_id,
        all_values.kpi_kind,
        all_values.grain,
        all_values.period_start,
        all_values.scope,
        all_values.scope_id,
        all_values.value,
        all_values.numerator,
        all_values.denominator,
        {{ is_period_complete('all_values.period_start', 'all_values.grain', 'as_of.as_of_local_date') }}
        and (
            not all_values.is_conversion
            or {{ add_days(
                next_period_start('all_values.period_start', "'month'"),
                (var('conversion_window_days') | int) - 1
            ) }} <= as_of.as_of_local_date
        ) as is_complete
    from all_values
    cross join as_of
)

select * from final
