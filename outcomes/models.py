"""The outcomes app owns no model since its models moved to the nested apps instruments,
sms and results (outcomes migration 0011); their tables keep the outcomes_ names.

This module stays so that Django sends the outcomes app its pre_migrate and post_migrate
signals (it sends them only to apps with a models module): they keep the same-trial triggers
of outcomes.links, which the outcomes migrations create, across every migrate
(trial.same_trial.connect)."""
