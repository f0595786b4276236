-- Rule 2 (order): every contact with a sales_lead_at — the population the max_order_breaches
-- threshold is a share of — and every contact with a breach (a quote sent before its own deal
-- was created breaches without a sales lead too: an upsell deal's contact, say), whether any
-- order of the rule is broken and, on a breaching contact's row, the share that stops
-- publishing: contacts with at least one breach over contacts with a sales_lead_at (all of
-- them when there is no sales lead). The rule itself lives in dbt (int_leads__order_breaches
-- → dim_leads.has_order_breach, with order_breach naming the broken order); this query only
-- counts.
with leads as (
    select contact_id, sales_lead_at, has_order_breach
    from marts.dim_leads
),

counts as (
    select
        count(case when has_order_breach then 1 end) as breaching_contacts,
        count(sales_lead_at) as sales_leads
    from leads
)

select
    leads.contact_id,
    leads.has_order_breach,
    case
        when leads.has_order_breach then
            case
                when counts.sales_leads = 0 then cast(1 as double)
                else cast(counts.breaching_contacts as double) / counts.sales_leads
            end
    end as breach_share
from leads
cross join counts
where leads.sales_lead_at is not null or leads.has_order_breach
