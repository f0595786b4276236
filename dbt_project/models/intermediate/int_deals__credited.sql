-- Every live deal (as of as_of) with who it is credited to: its current owner and that
-- owner's current team, whether the owner is a sales rep (only then does it count on a rep's
-- and team's rows), and its first non-draft quote sent at or before as_of.
with deals as (
    select * from {{ ref('int_deals__as_of') }}
),

users as (
    select * from {{ ref('int_users__roles') }}
),

quotes as (
    select * from {{ ref('stg_crm__quotes') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

first_quote as (
    select quotes.deal_id, min(quotes.sent_at) as first_quote_sent_at
    from quotes
    cross join as_of
    where quotes.status <> 'draft' and quotes.sent_at <= as_of.as_of
    group by quotes.deal_id
),

final as (
    select
        deals.deal_id,
        deals.deal_type,
        deals.stage,
        deals.owner_user_id,
        users.team,
        coalesce(users.is_sales_rep, false) as is_owned_by_sales_rep,
        deals.contact_id,
        deals.company_id,
        deals.created_at,
        deals.closed_at,
        deals.is_won,
        deals.amount,
        deals.currency,
        deals.amount_month,
        deals.rate_to_eur,
        deals.amount_eur,
        deals.is_missing_fx_rate,
        first_quote.first_quote_sent_at,
        deals.lost_reason
    from deals
    left join users on deals.owner_user_id = users.user_id
    left join first_quote on deals.deal_id = first_quote.deal_id
)

select * from final
