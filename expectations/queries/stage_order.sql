-- Rule 2: marketing_lead_at <= sales_lead_at <= customer_at, sales_lead_at <= quote_at, and
-- no quote sent before its own deal was created. One row per contact with a sales_lead_at.
with quote_before_deal as (
    select distinct deals.contact_id
    from staging.stg_crm__quotes as quotes
    inner join marts.fct_deals as deals on quotes.deal_id = deals.deal_id
    where quotes.status <> 'draft' and quotes.sent_at < deals.created_at
)

select
    leads.contact_id,
    coalesce(leads.marketing_lead_at > leads.sales_lead_at, false)
        or coalesce(leads.sales_lead_at > leads.customer_at, false)
        or coalesce(leads.sales_lead_at > leads.quote_at, false)
        or quote_before_deal.contact_id is not null as has_order_breach
from marts.dim_leads as leads
left join quote_before_deal on leads.contact_id = quote_before_deal.contact_id
where leads.sales_lead_at is not null
