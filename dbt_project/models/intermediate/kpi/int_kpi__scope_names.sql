-- A readable name beside every KPI scope id, for BI tools and dashboards: a rep's full name
-- and current team, a team's name, `Company` for the company (scope_id `all`).
with scopes as (
    select distinct scope, scope_id from {{ ref('int_kpi__values') }}
),

users as (
    select * from {{ ref('int_users__roles') }}
),

final as (
    select
        scopes.scope,
        scopes.scope_id,
        case scopes.scope
            when 'rep' then coalesce(users.full_name, scopes.scope_id)
            when 'team' then scopes.scope_id
            else 'Company'
        end as scope_name,
        case scopes.scope
            when 'rep' then users.team
            when 'team' then scopes.scope_id
        end as team
    from scopes
    left join users on scopes.scope = 'rep' and scopes.scope_id = users.user_id
)

select * from final
