with deals as (
    select * from {{ ref('int_deals__credited') }}
)

select
    deal_id,
    deal_type,
    stage,
    owner_user_id,
    team,
    is_owned_by_sales_rep,
    contact_id,
    company_id,
    created_at,
    closed_at,
    {{ local_month('closed_at') }} as closed_month,
    is_won,
    amount,
    currency,
    amount_month,
    rate_to_eur,
    amount_eur,
    is_missing_fx_rate,
    first_quote_sent_at,
    lost_reason
from deals
