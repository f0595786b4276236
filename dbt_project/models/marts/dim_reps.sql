with users as (
    select * from {{ ref('int_users__roles') }}
)

select
    user_id,
    full_name,
    role,
    team,
    is_sales_rep,
    is_active
from users
