"""Database triggers that refuse links between two trials' rows (trial.same_trial): a
minimization factor's baseline variable and a membership's sites must be the trial's own.

The rules are repeated here rather than imported from trial.same_trial.RULES: this
migration must create the triggers it was written with, whatever that module says later.
"""

from django.db import migrations

from trial.same_trial import SameTrial, migration_operations, trial_of

RULES = (
    SameTrial(
        name="trial_factor_variable_same_trial",
        table="trial_minimizationfactor",
        left="NEW.trial_id",
        right=trial_of("trial_baselinevariable", "variable_id"),
        columns=("trial_id", "variable_id"),
        message="A minimization factor cannot use a baseline variable of another trial.",
    ),
    SameTrial(
        name="trial_membership_site_same_trial",
        table="trial_membership_sites",
        left=trial_of("trial_membership", "membership_id"),
        right=trial_of("trial_site", "site_id"),
        columns=("membership_id", "site_id"),
        message="A membership cannot include a site of another trial.",
    ),
)

forwards, backwards = migration_operations(RULES)


class Migration(migrations.Migration):
    dependencies = [("trial", "0007_allocation_ratio_site_factor")]
    operations = [migrations.RunPython(forwards, backwards)]
