-- The CRM label of each live contact (its latest live lifecycle change at or before as_of:
-- latest changed_at, then largest change_id), judged against the contact's computed stage at
-- the label's changed_at (the furthest stage entered at or before it).
with labels as (
    select * from {{ ref('stg_crm__lifecycle_changes') }}
),

stages as (
    select * from {{ ref('int_leads__stages') }}
),

label_stages as (
    select * from {{ ref('lifecycle_label_stages') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

latest_label as (
    select labels.*
    from labels
    cross join as_of
    where labels.changed_at <= as_of.as_of
    qualify row_number() over (
        partition by labels.contact_id
        order by labels.changed_at desc, labels.change_id desc
    ) = 1
),

stage_at_label as (
    select
        latest_label.contact_id,
        latest_label.change_id as crm_label_change_id,
        latest_label.crm_label,
        latest_label.changed_at as crm_label_changed_at,
        coalesce(latest_label.changed_by_user_id, 'automation') as crm_label_set_by,
        case
            when stages.customer_at <= latest_label.changed_at then 'customer'
            when stages.quote_at <= latest_label.changed_at then 'quote'
            when stages.sales_lead_at <= latest_label.changed_at then 'sales_lead'
            when stages.marketing_lead_at <= latest_label.changed_at then 'marketing_lead'
            else 'none'
        end as stage_at_label
    from latest_label
    inner join stages on latest_label.contact_id = stages.contact_id
),

final as (
    select
        stage_at_label.*,
        exists (
            select 1 from label_stages
            where label_stages.crm_label = stage_at_label.crm_label
              and label_stages.agreed_stage = stage_at_label.stage_at_label
        ) as crm_label_consistent
    from stage_at_label
)

select * from final
