-- Revenue: every live won new_business or upsell deal with an amount has an EUR amount (an
-- fx rate of its month or an earlier one); EUR amounts are never negative. Any other deal
-- with an amount but no rate is a data issue that is listed (a warning).
select
    deal_id,
    amount_eur,
    not (
        is_won and deal_type in ('new_business', 'upsell') and amount is not null
        and amount_eur is null
    ) as has_eur_amount,
    coalesce(is_missing_fx_rate, false) as is_missing_fx_rate
from marts.fct_deals
