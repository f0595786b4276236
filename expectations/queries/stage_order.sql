-- Rule 2 (order): one row per contact with a sales_lead_at, and whether any order of the rule
-- is broken. The rule itself lives in dbt (int_leads__order_breaches → dim_leads.has_order_breach,
-- with order_breach naming the broken order); this query only picks the population the
-- max_order_breaches threshold is a share of.
select
    leads.contact_id,
    leads.has_order_breach
from marts.dim_leads as leads
where leads.sales_lead_at is not null
