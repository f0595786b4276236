-- Live deals as they stood at as_of, converted to EUR.
-- A deal created after as_of has not happened yet; one closed after it is still open. The
-- stage of a deal open at as_of is its latest open stage change at or before as_of (ties:
-- the further stage), else its CRM stage while open, else qualification.
-- EUR: amount × the rate of the month the amount is attributed to (local month of closed_at
-- for a closed deal, of created_at while open), else the latest earlier month's rate.
with deals as (
    select * from {{ ref('stg_crm__deals') }}
),

stage_changes as (
    select * from {{ ref('stg_crm__deal_stage_changes') }}
),

fx_rates as (
    select * from {{ ref('stg_crm__fx_rates') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

fx_rate_spans as (
    -- a month's rate holds until the currency's next rate month: the rate of a month is its
    -- own, else the latest earlier month's (an equi-join with a range, on every engine)
    select
        currency,
        rate_month,
        rate_to_eur,
        lead(rate_month) over (partition by currency order by rate_month) as next_rate_month
    from fx_rates
),

known_deals as (
    select deals.*
    from deals
    cross join as_of
    where deals.created_at <= as_of.as_of
),

open_stage_at_as_of as (
    -- ties on changed_at go to the further stage
    select
        stage_changes.deal_id,
        {{ value_at_max('stage_changes.stage', [
            'stage_changes.changed_at',
            position_in_list(
                ['qualification', 'discovery', 'proposal', 'negotiation'], 'stage_changes.stage'
            ),
        ]) }} as open_stage
    from stage_changes
    cross join as_of
    where stage_changes.changed_at <= as_of.as_of
      and stage_changes.stage not in ('closed_won', 'closed_lost')
    group by stage_changes.deal_id
),

at_as_of as (
    select
        known_deals.deal_id,
        known_deals.contact_id,
        known_deals.company_id,
        known_deals.owner_user_id,
        known_deals.deal_type,
        case
            -- closed at as_of: the CRM's (closed) stage
            when known_deals.closed_at <= as_of.as_of then known_deals.stage
            -- open at as_of: its latest open stage change at or before as_of …
            when open_stage_at_as_of.open_stage is not null then open_stage_at_as_of.open_stage
            -- … else, without history, the CRM stage while open
            when known_deals.stage not in ('closed_won', 'closed_lost') then known_deals.stage
            else 'qualification'
        end as stage,
        case when known_deals.closed_at <= as_of.as_of then known_deals.closed_at end as closed_at,
        known_deals.created_at,
        known_deals.amount,
        known_deals.currency,
        known_deals.lost_reason
    from known_deals
    cross join as_of
    left join open_stage_at_as_of on known_deals.deal_id = open_stage_at_as_of.deal_id
),

attributed as (
    select
        *,
        {{ local_month('coalesce(closed_at, created_at)') }} as amount_month
    from at_as_of
),

with_rate as (
    select
        attributed.*,
        case
            when attributed.currency = 'EUR' then 1.0
            else fx_rates.rate_to_eur
        end as rate_to_eur,
        fx_rates.rate_month
    from attributed
    left join fx_rate_spans as fx_rates
        on attributed.currency = fx_rates.currency
        and attributed.amount_month >= fx_rates.rate_month
        and (fx_rates.next_rate_month is null or attributed.amount_month < fx_rates.next_rate_month)
),

final as (
    select
        deal_id,
        contact_id,
        company_id,
        owner_user_id,
        deal_type,
        stage,
        stage = 'closed_won' as is_won,
        created_at,
        closed_at,
        amount,
        currency,
        amount_month,
        rate_to_eur,
        rate_month as rate_month_used,
        cast(amount as double) * rate_to_eur as amount_eur,
        amount is not null and rate_to_eur is null as is_missing_fx_rate,
        lost_reason
    from with_rate
)

select * from final
