-- Label agreement per labeller (definitions, consistency rule 4): each live, labelled
-- contact's latest CRM label is judged against its computed stage at the label's changed_at.
-- A labeller is judged once they labelled >= min_labels_judged contacts; their share of
-- inconsistent labels must stay <= max_label_disagreement (exactly the threshold does not
-- exceed it). A warning for the team to discuss, not a reason to stop publishing.
with leads as (
    select * from {{ ref('dim_leads') }}
    where crm_label is not null
),

per_labeller as (
    select
        crm_label_set_by as labeller,
        count(*) as labels_judged,
        count(*) filter (where not crm_label_consistent) as inconsistent
    from leads
    group by crm_label_set_by
)

select
    labeller,
    cast(labels_judged as bigint) as labels_judged,
    cast(inconsistent as bigint) as inconsistent,
    cast(inconsistent as double) / labels_judged as inconsistency_rate,
    labels_judged >= {{ var('min_labels_judged') }} as is_judged,
    labels_judged >= {{ var('min_labels_judged') }}
        and cast(inconsistent as double) / labels_judged > {{ var('max_label_disagreement') }}
        as exceeds_threshold
from per_labeller
