-- What each CRM lifecycle label means in the agreed stages (seed lifecycle_label_stages, the
-- one home of the mapping; "Consistency rules" 4): one row per label, its stages listed from
-- the earliest to the furthest, e.g. `sales_lead or quote`.
with label_stages as (
    select * from {{ ref('lifecycle_label_stages') }}
),

final as (
    select
        crm_label,
        {{ ordered_string_agg(
            'agreed_stage', "' or '",
            position_in_list(
                ['none', 'marketing_lead', 'sales_lead', 'quote', 'customer'], 'agreed_stage'
            )
        ) }} as crm_label_means
    from label_stages
    group by crm_label
)

select * from final
