-- Count and sum KPIs (the registry's `count` and `sum` computations) per period and scope
-- (definitions, "Series and zero-filling", "Facts and series" v1.1): a row, with 0, for every
-- period of every series of a scope the KPI is reported for.
--   rep:     the rep's facts inside the rep's series (a fact credited before it starts — a
--            won deal handed to a new hire — counts for the company only)
--   team:    the sum of its reps' values (their facts inside their series)
--   company: every fact; its series starts at the company's start (int_kpi__series) or, when
--            the KPI's first fact is earlier, at that fact's period, so no fact falls outside.
with registry as (
    select * from {{ ref('int_kpi__registry') }}
    where computation in ('count', 'sum')
),

series as (
    select * from {{ ref('int_kpi__series') }}
),

facts as (
    select * from {{ ref('int_kpi__facts') }}
),

as_of as (
    select * from {{ ref('int_kpi__as_of_periods') }}
),

kpis as (
    select distinct kpi_id, kpi_kind, grain, fact from registry
),

kpi_facts as (
    select
        kpis.kpi_id,
        kpis.grain,
        {{ period_of('facts.counted_at', 'kpis.grain') }} as period_start,
        facts.rep_id,
        facts.amount
    from facts
    inner join kpis on facts.fact = kpis.fact
),

first_fact as (
    select kpi_id, min(period_start) as period_start
    from kpi_facts
    group by kpi_id
),

rep_facts as (
    -- a rep's facts inside the rep's series, with the rep's current team
    select
        kpi_facts.kpi_id,
        kpi_facts.period_start,
        rep_series.scope_id as rep_id,
        rep_series.team,
        kpi_facts.amount
    from kpi_facts
    inner join series as rep_series
        on rep_series.scope = 'rep'
        and kpi_facts.rep_id = rep_series.scope_id
        and kpi_facts.grain = rep_series.grain
        and kpi_facts.period_start between rep_series.series_start and rep_series.series_end
),

rep_and_team_series as (
    select
        registry.kpi_id,
        registry.kpi_kind,
        registry.grain,
        series.scope,
        series.scope_id,
        series.series_start,
        series.series_end
    from registry
    inner join series
        on registry.grain = series.grain
        and registry.scope = series.scope
    where registry.scope in ('rep', 'team')
),

company_series as (
    select
        registry.kpi_id,
        registry.kpi_kind,
        registry.grain,
        registry.scope,
        'all' as scope_id,
        case
            when company.series_start is null then first_fact.period_start
            when first_fact.period_start < company.series_start then first_fact.period_start
            else company.series_start
        end as series_start,
        case registry.grain when 'week' then as_of.as_of_week else as_of.as_of_month end
            as series_end
    from registry
    cross join as_of
    left join series as company
        on company.scope = 'company'
        and registry.grain = company.grain
    left join first_fact on registry.kpi_id = first_fact.kpi_id
    where registry.scope = 'company'
        and coalesce(company.series_start, first_fact.period_start) is not null
),

kpi_series as (
    select * from rep_and_team_series
    union all
    select * from company_series
),

periods as (
    select
        kpi_series.kpi_id,
        kpi_series.kpi_kind,
        kpi_series.grain,
        kpi_series.scope,
        kpi_series.scope_id,
        cast(period.period_start as date) as period_start
    from kpi_series,
        {{ period_starts_between(
            'kpi_series.series_start', 'kpi_series.series_end', 'kpi_series.grain',
            'period', 'period_start'
        ) }}
),

credited as (
    select kpi_id, period_start, 'rep' as scope, rep_id as scope_id, sum(amount) as amount
    from rep_facts
    group by kpi_id, period_start, rep_id
    union all
    select kpi_id, period_start, 'team', team, sum(amount)
    from rep_facts
    group by kpi_id, period_start, team
    union all
    select kpi_id, period_start, 'company', 'all', sum(amount)
    from kpi_facts
    group by kpi_id, period_start
),

zero_filled as (
    select
        periods.*,
        coalesce(credited.amount, 0) as value
    from periods
    left join credited
        on periods.kpi_id = credited.kpi_id
        and periods.period_start = credited.period_start
        and periods.scope = credited.scope
        and periods.scope_id = credited.scope_id
)

select
    kpi_id,
    kpi_kind,
    grain,
    period_start,
    scope,
    scope_id,
    cast(value as double) as value,
    cast(value as double) as numerator,
    cast(null as double) as denominator
from zero_filled
