-- A lead's team (definitions, "Lead stages"): the current team of the contact's owner when
-- that owner is a sales rep, else `Unassigned`. The one home of this rule: dim_leads, the
-- funnel and the conversion KPIs read it here.
with stages as (
    select * from {{ ref('int_leads__stages') }}
),

users as (
    select * from {{ ref('int_users__roles') }}
),

final as (
    select
        stages.contact_id,
        stages.owner_user_id,
        case when users.is_sales_rep then users.team else 'Unassigned' end as team
    from stages
    left join users on stages.owner_user_id = users.user_id
)

select * from final
