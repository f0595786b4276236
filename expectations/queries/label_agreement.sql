-- Rule 4: per labeller, the share of inconsistent labels stays <= max_label_disagreement
-- once they labelled >= min_labels_judged contacts. A warning: the team discusses it.
-- The labeller's name is there for the reader of the Data Docs.
select
    consistency.labeller,
    reps.full_name as labeller_name,
    consistency.labels_judged,
    consistency.inconsistent,
    consistency.inconsistency_rate,
    consistency.exceeds_threshold
from marts.label_consistency as consistency
left join marts.dim_reps as reps on consistency.labeller = reps.user_id
