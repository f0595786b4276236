-- Users with whether they are a sales rep (current role in the sales_roles seed).
with users as (
    select * from {{ ref('stg_crm__users') }}
),

sales_roles as (
    select * from {{ ref('sales_roles') }}
),

joined as (
    select
        users.user_id,
        users.full_name,
        users.role,
        users.team,
        coalesce(sales_roles.is_sales_rep, false) as is_sales_rep,
        users.is_active
    from users
    left join sales_roles on users.role = sales_roles.role
)

select * from joined
