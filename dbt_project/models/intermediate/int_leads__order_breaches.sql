-- Consistency rule 2 (definitions, "Order"), per live contact: marketing_lead_at ≤
-- sales_lead_at ≤ customer_at and sales_lead_at ≤ quote_at where present, and no non-draft
-- quote sent before its own deal was created. This is the rule's one home: the stage_order
-- check (expectations/queries/stage_order.sql) and `sales-kpi explain` read these columns.
-- Facts after as_of have not happened yet: only deals created and quotes sent by then count.
with stages as (
    select * from {{ ref('int_leads__stages') }}
),

deals as (
    select * from {{ ref('int_deals__as_of') }}
),

quotes as (
    select * from {{ ref('stg_crm__quotes') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

quotes_before_their_deal as (
    select
        deals.contact_id,
        {{ ordered_string_agg(
            "'quote ' || quotes.quote_id || ' sent before its deal ' || deals.deal_id
            || ' was created'",
            "'; '", 'quotes.sent_at, quotes.quote_id'
        ) }} as breach
    from quotes
    inner join deals on quotes.deal_id = deals.deal_id
    cross join as_of
    where quotes.status <> 'draft'
      and quotes.sent_at <= as_of.as_of
      and quotes.sent_at < deals.created_at
    group by deals.contact_id
),

breaches as (
    -- concat_ws skips the orders that hold (NULL): what is left names every broken one
    select
        stages.contact_id,
        nullif(
            concat_ws(
                '; ',
                case when stages.marketing_lead_at > stages.sales_lead_at
                    then 'marketing_lead_at after sales_lead_at' end,
                case when stages.sales_lead_at > stages.customer_at
                    then 'sales_lead_at after customer_at' end,
                case when stages.sales_lead_at > stages.quote_at
                    then 'sales_lead_at after quote_at' end,
                quotes_before_their_deal.breach
            ),
            ''
        ) as order_breach
    from stages
    left join quotes_before_their_deal on stages.contact_id = quotes_before_their_deal.contact_id
),

final as (
    select
        contact_id,
        order_breach is not null as has_order_breach,
        order_breach
    from breaches
)

select * from final
