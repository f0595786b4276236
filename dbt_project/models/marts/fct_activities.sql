with activities as (
    select * from {{ ref('int_activities__flagged') }}
)

select
    activity_id,
    activity_type,
    direction,
    outcome,
    occurred_at,
    {{ local_week('occurred_at') }} as activity_week,
    {{ local_month('occurred_at') }} as activity_month,
    duration_seconds,
    owner_user_id,
    team,
    is_owned_by_sales_rep,
    contact_id,
    deal_id,
    is_sales_conversation,
    is_cold_email,
    is_cold_call
from activities
