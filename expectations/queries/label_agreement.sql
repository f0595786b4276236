-- Rule 4: per labeller, the share of inconsistent labels stays <= max_label_disagreement
-- once they labelled >= min_labels_judged contacts. A warning: the team discusses it.
select labeller, labels_judged, inconsistent, inconsistency_rate, exceeds_threshold
from marts.label_consistency
