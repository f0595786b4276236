with stages as (
    select * from {{ ref('int_leads__stages') }}
),

labels as (
    select * from {{ ref('int_leads__labels') }}
),

teams as (
    select * from {{ ref('int_leads__teams') }}
),

inputs as (
    select * from {{ ref('int_leads__inputs') }}
),

label_meanings as (
    select * from {{ ref('int_crm_labels__meanings') }}
),

order_breaches as (
    select * from {{ ref('int_leads__order_breaches') }}
),

final as (
    select
        stages.contact_id,
        stages.company_id,
        stages.owner_user_id,
        teams.team,
        stages.stage,
        stages.lead_origin,
        stages.marketing_lead_at,
        stages.sales_lead_at,
        stages.quote_at,
        stages.customer_at,
        stages.qualifying_event_id,
        stages.qualifying_event_type,
        stages.is_fit,
        stages.email_domain,
        stages.is_free_mail,
        stages.has_live_company,
        stages.no_marketing_lead_reason,
        stages.sales_lead_deal_id,
        stages.sales_lead_deal_owner_user_id,
        labels.crm_label,
        labels.crm_label_changed_at,
        labels.crm_label_set_by,
        labels.stage_at_label as crm_label_judged_stage,
        labels.crm_label_consistent,
        label_meanings.crm_label_means,
        order_breaches.has_order_breach,
        order_breaches.order_breach,
        {{ definitions_version() }} as definitions_version,
        inputs.inputs_fingerprint
    from stages
    left join labels on stages.contact_id = labels.contact_id
    left join teams on stages.contact_id = teams.contact_id
    left join inputs on stages.contact_id = inputs.contact_id
    left join label_meanings on labels.crm_label = label_meanings.crm_label
    left join order_breaches on stages.contact_id = order_breaches.contact_id
)

select * from final
