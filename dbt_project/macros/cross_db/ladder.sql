{#- The target ladder's walk (README, "Engines"; the rule: int_kpi__targets). Each period's
    target depends on the hits before it, so the walk is sequential per series: DuckDB runs it
    as a recursive CTE (one step per period, fast there); Spark walks each series' array of
    periods in one pass with `aggregate` (its recursive CTE runs a join, as a Spark job, per
    step: minutes where this takes seconds). Both give the same rows, to the last bit of every target.

    `periods` names a relation (a CTE of the model) with one row per period of each series:
    kpi_id, scope, scope_id, period_start, step (1, 2, ... by period_start), actual,
    is_complete, baseline_target (the start target, NULL when none is derived) and
    override_target (NULL without an override). The macro renders CTE `ladder`, to follow a
    `with recursive` list: kpi_id, scope, scope_id, step, period_start, target, target_source
    ('override' or 'derived') and hits_in_a_row. -#}
{% macro target_ladder(periods, ratchet_after, uplift) -%}
    {{ return(adapter.dispatch('target_ladder')(periods, ratchet_after, uplift)) }}
{%- endmacro %}

{% macro duckdb__target_ladder(periods, ratchet_after, uplift) -%}
ladder as (
    select
        kpi_id,
        scope,
        scope_id,
        step,
        period_start,
        target,
        target_source,
        case
            when is_complete and actual >= target * (1 - 1e-9) then 1 else 0
        end as hits_in_a_row
    from (
        select
            *,
            coalesce(override_target, baseline_target) as target,
            case when override_target is not null then 'override' else 'derived' end
                as target_source
        from {{ periods }}
        where step = 1
    )

    union all

    select
        kpi_id,
        scope,
        scope_id,
        step,
        period_start,
        target,
        target_source,
        case
            when is_complete and actual >= target * (1 - 1e-9)
                then case when is_restart then 1 else previous_hits + 1 end
            else 0
        end as hits_in_a_row
    from (
        select
            next_period.kpi_id,
            next_period.scope,
            next_period.scope_id,
            next_period.step,
            next_period.period_start,
            next_period.actual,
            next_period.is_complete,
            previous.hits_in_a_row as previous_hits,
            case
                when next_period.override_target is not null then next_period.override_target
                when previous.hits_in_a_row >= {{ ratchet_after }}
                    then previous.target * (1 + {{ uplift }})
                else previous.target
            end as target,
            case when next_period.override_target is not null then 'override' else 'derived' end
                as target_source,
            next_period.override_target is not null
                or previous.hits_in_a_row >= {{ ratchet_after }} as is_restart
        from ladder as previous
        inner join {{ periods }} as next_period
            on previous.kpi_id = next_period.kpi_id
            and previous.scope = next_period.scope
            and previous.scope_id = next_period.scope_id
            and next_period.step = previous.step + 1
    )
)
{%- endmacro %}

{#- One pass per series: its periods collected in step order, then `aggregate` folds them
    left to right into the array of rungs, each rung computed from the one before it
    (`previous`, the array's last element; NULL for the first period), then `explode` turns
    the array back into rows. The expressions are the recursive CTE's, term for term, so the
    arithmetic (and its rounding) is the same. -#}
{% macro spark__target_ladder(periods, ratchet_after, uplift) -%}
{%- set previous = "try_element_at(rungs, -1)" -%}
{%- set is_restart -%}
    (period.override_target is not null or {{ previous }}.hits_in_a_row >= {{ ratchet_after }})
{%- endset -%}
{%- set target -%}
    case
        when period.step = 1 then coalesce(period.override_target, period.baseline_target)
        when period.override_target is not null then period.override_target
        when {{ previous }}.hits_in_a_row >= {{ ratchet_after }}
            then {{ previous }}.target * (1 + {{ uplift }})
        else {{ previous }}.target
    end
{%- endset -%}
ladder_series as (
    select
        kpi_id,
        scope,
        scope_id,
        array_sort(collect_list(struct(
            step,
            period_start,
            cast(actual as double) as actual,
            is_complete,
            cast(baseline_target as double) as baseline_target,
            cast(override_target as double) as override_target
        ))) as periods
    from {{ periods }}
    group by kpi_id, scope, scope_id
),

ladder_rungs as (
    select
        kpi_id,
        scope,
        scope_id,
        aggregate(
            periods,
            cast(array() as array<struct<
                step: int, period_start: date, target: double, target_source: string,
                hits_in_a_row: int
            >>),
            (rungs, period) -> concat(rungs, array(struct(
                cast(period.step as int) as step,
                period.period_start as period_start,
                cast({{ target }} as double) as target,
                case when period.override_target is not null then 'override' else 'derived' end
                    as target_source,
                case
                    when period.is_complete and period.actual >= ({{ target }}) * (1 - 1e-9)
                        then case
                            when period.step = 1 or {{ is_restart }} then 1
                            else {{ previous }}.hits_in_a_row + 1
                        end
                    else 0
                end as hits_in_a_row
            )))
        ) as rungs
    from ladder_series
),

ladder as (
    select
        kpi_id,
        scope,
        scope_id,
        rung.step,
        rung.period_start,
        rung.target,
        rung.target_source,
        rung.hits_in_a_row
    from ladder_rungs
    lateral view explode(rungs) as rung
)
{%- endmacro %}
