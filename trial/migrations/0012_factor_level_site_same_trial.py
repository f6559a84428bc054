"""The database refuses a site factor's level that stands for another trial's site
(trial.same_trial): the rule is repeated here, as in 0008, so this migration creates the
trigger it was written with."""

from django.db import migrations

from trial.same_trial import SameTrial, migration_operations, trial_of

RULES = (
    SameTrial(
        name="trial_factorlevel_site_same_trial",
        table="trial_factorlevel",
        left=trial_of("trial_minimizationfactor", "factor_id"),
        right=trial_of("trial_site", "site_id"),
        columns=("factor_id", "site_id"),
        message="A site factor's level cannot stand for a site of another trial.",
    ),
)

forwards, backwards = migration_operations(RULES)


class Migration(migrations.Migration):
    dependencies = [("trial", "0011_blind_codes_assigned")]
    operations = [migrations.RunPython(forwards, backwards)]
