-- The target ladder per action/result KPI and scope (definitions, "Baseline and targets").
-- Targets start in the first period after the baseline window (or in the period containing
-- kpi_program_start, when later) and run to the end of the series:
--   target = baseline × (1 + target_uplift); a baseline of 0 derives no target.
--   After ratchet_after consecutive complete periods with actual >= target (a miss resets the
--   count), the next period's target is the previous one × (1 + target_uplift), and the count
--   starts again. The ladder never lowers a target.
--   An override replaces the target of its period, restarts the count, and later periods
--   ladder from it (they are derived again).
-- "actual >= target" uses the scorecard's tolerance: actual >= target × (1 − 1e-9).
{% set program_start = var('kpi_program_start') %}
{% set uplift = var('target_uplift') %}
with recursive kpi_values as (
    select * from {{ ref('int_kpi__values') }}
    where kpi_kind in ('action', 'result')
),

baselines as (
    select * from {{ ref('int_kpi__baselines') }}
),

all_overrides as (
    select * from {{ ref('stg_targets__overrides') }}
),

overrides as (
    -- an override applies to a period of its scope's series; one outside it (before the
    -- series starts, or for a scope without a series) is reported by a test, not applied
    select all_overrides.*
    from all_overrides
    inner join kpi_values
        on all_overrides.kpi_id = kpi_values.kpi_id
        and all_overrides.scope = kpi_values.scope
        and all_overrides.scope_id = kpi_values.scope_id
        and all_overrides.period_start = kpi_values.period_start
),

derived_start as (
    select
        kpi_id,
        scope,
        scope_id,
        baseline_value * (1 + {{ uplift }}) as baseline_target,
        {% if program_start %}
        greatest(
            {{ next_period_start('baseline_to', 'grain') }},
            cast(date_trunc(grain, cast('{{ program_start }}' as date)) as date)
        )
        {% else %}
        {{ next_period_start('baseline_to', 'grain') }}
        {% endif %} as starts_at
    from baselines
    where baseline_value > 0
),

first_override as (
    select kpi_id, scope, scope_id, min(period_start) as starts_at
    from overrides
    group by kpi_id, scope, scope_id
),

ladder_start as (
    select
        coalesce(derived_start.kpi_id, first_override.kpi_id) as kpi_id,
        coalesce(derived_start.scope, first_override.scope) as scope,
        coalesce(derived_start.scope_id, first_override.scope_id) as scope_id,
        derived_start.baseline_target,
        least(
            coalesce(derived_start.starts_at, first_override.starts_at),
            coalesce(first_override.starts_at, derived_start.starts_at)
        ) as starts_at
    from derived_start
    full outer join first_override
        on derived_start.kpi_id = first_override.kpi_id
        and derived_start.scope = first_override.scope
        and derived_start.scope_id = first_override.scope_id
),

ladder_periods as (
    select
        kpi_values.kpi_id,
        kpi_values.scope,
        kpi_values.scope_id,
        kpi_values.period_start,
        kpi_values.value as actual,
        kpi_values.is_complete,
        ladder_start.baseline_target,
        overrides.target as override_target,
        row_number() over (
            partition by kpi_values.kpi_id, kpi_values.scope, kpi_values.scope_id
            order by kpi_values.period_start
        ) as step
    from kpi_values
    inner join ladder_start
        on kpi_values.kpi_id = ladder_start.kpi_id
        and kpi_values.scope = ladder_start.scope
        and kpi_values.scope_id = ladder_start.scope_id
        and kpi_values.period_start >= ladder_start.starts_at
    left join overrides
        on kpi_values.kpi_id = overrides.kpi_id
        and kpi_values.scope = overrides.scope
        and kpi_values.scope_id = overrides.scope_id
        and kpi_values.period_start = overrides.period_start
),

{{ target_ladder('ladder_periods', var('ratchet_after'), uplift) }}

select
    kpi_id,
    scope,
    scope_id,
    period_start,
    cast(target as double) as target,
    target_source,
    hits_in_a_row
from ladder
