-- The series of every scope (definitions, "Series and zero-filling"), per grain:
--   rep:     from the period of its first live activity (any type) — or, with none, its first
--            live deal's created_at — to the period of as_of; an inactive rep's ends at the
--            period of its last live activity or deal event (capped at as_of).
--   team:    from the earliest start of its current reps' series to the period of as_of
--            (Unassigned included); a team without current reps has no series (v1.1: a
--            team's value is the sum of its reps').
--   company: from the period of the first live activity or deal created_at to that of as_of.
--            (A count or sum KPI whose first fact is earlier starts its company series at that
--            fact's period: int_kpi__count_values, v1.1.)
with reps as (
    select * from {{ ref('int_users__roles') }}
    where is_sales_rep
),

activities as (
    select * from {{ ref('int_activities__flagged') }}
),

deals as (
    select * from {{ ref('int_deals__credited') }}
),

as_of as (
    select * from {{ ref('int_kpi__as_of_periods') }}
),

grains as (
    -- the grains of the active KPIs (registry): every scope has one series per grain
    select distinct grain from {{ ref('int_kpi__registry') }}
),

rep_activity as (
    select owner_user_id, min(occurred_at) as first_at, max(occurred_at) as last_at
    from activities
    group by owner_user_id
),

rep_deal_events as (
    -- a deal's events are its creation and, when closed, its close: the later of the two
    -- is the deal's last (a deal closed before it was created, a CRM anomaly, ends at its
    -- creation)
    select
        owner_user_id,
        min(created_at) as first_created_at,
        max(created_at) as last_created_at,
        max(closed_at) as last_closed_at
    from deals
    group by owner_user_id
),

rep_deals as (
    select
        owner_user_id,
        first_created_at,
        greatest(last_created_at, coalesce(last_closed_at, last_created_at)) as last_event_at
    from rep_deal_events
),

rep_bounds as (
    select
        reps.user_id,
        reps.team,
        coalesce(rep_activity.first_at, rep_deals.first_created_at) as started_at,
        case
            when reps.is_active then as_of.as_of
            else least(
                as_of.as_of,
                greatest(
                    coalesce(rep_activity.last_at, rep_deals.last_event_at),
                    coalesce(rep_deals.last_event_at, rep_activity.last_at)
                )
            )
        end as ended_at
    from reps
    cross join as_of
    left join rep_activity on reps.user_id = rep_activity.owner_user_id
    left join rep_deals on reps.user_id = rep_deals.owner_user_id
),

rep_series as (
    select
        'rep' as scope,
        rep_bounds.user_id as scope_id,
        rep_bounds.team,
        grains.grain,
        {{ period_of('rep_bounds.started_at', 'grains.grain') }} as series_start,
        {{ period_of('rep_bounds.ended_at', 'grains.grain') }} as series_end
    from rep_bounds
    cross join grains
    where rep_bounds.started_at is not null
),

team_series as (
    select 'team' as scope, team as scope_id, team, grain, min(series_start) as series_start
    from rep_series
    group by team, grain
),

company_start as (
    select min(started_at) as started_at
    from (
        select occurred_at as started_at from activities
        union all
        select created_at from deals
    ) as starts
),

company_series as (
    select
        'company' as scope,
        'all' as scope_id,
        cast(null as {{ dbt.type_string() }}) as team,
        grains.grain,
        {{ period_of('company_start.started_at', 'grains.grain') }} as series_start
    from company_start
    cross join grains
    where company_start.started_at is not null
),

ended_at_as_of as (
    select
        series.*,
        case series.grain when 'week' then as_of.as_of_week else as_of.as_of_month end as series_end
    from (
        select * from team_series
        union all
        select * from company_series
    ) as series
    cross join as_of
)

select scope, scope_id, team, grain, series_start, series_end from rep_series
union all
select scope, scope_id, team, grain, series_start, series_end from ended_at_as_of
