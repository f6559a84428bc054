"""Database triggers that refuse links between two trials' rows (trial.same_trial): an
instrument's visits and baseline variable, an SMS question text's question and language, an
outcome entry's instrument.

The rules are repeated here rather than imported from outcomes.links: this migration must
create the triggers it was written with, whatever that module says later.
"""

from django.db import migrations

from trial.same_trial import SameTrial, migration_operations, trial_of

RULES = (
    SameTrial(
        name="outcomes_instrument_visit_same_trial",
        table="outcomes_instrument_visits",
        left=trial_of("outcomes_instrument", "instrument_id"),
        right=trial_of("trial_visitdefinition", "visitdefinition_id"),
        columns=("instrument_id", "visitdefinition_id"),
        message="An instrument cannot be due at a visit of another trial.",
    ),
    SameTrial(
        name="outcomes_instrument_variable_same_trial",
        table="outcomes_instrument",
        left="NEW.trial_id",
        right=trial_of("trial_baselinevariable", "baseline_variable_id"),
        columns=("trial_id", "baseline_variable_id"),
        message="An instrument cannot give the baseline variable of another trial.",
    ),
    SameTrial(
        name="outcomes_sms_text_same_trial",
        table="outcomes_smsquestiontext",
        left=trial_of("outcomes_smsquestion", "question_id"),
        right=trial_of("outcomes_smslanguage", "language_id"),
        columns=("question_id", "language_id"),
        message="An SMS question text cannot join a question and a language of two trials.",
    ),
    SameTrial(
        name="outcomes_entry_instrument_same_trial",
        table="outcomes_outcomeentry",
        left="NEW.trial_id",
        right=trial_of("outcomes_instrument", "instrument_id"),
        columns=("trial_id", "instrument_id"),
        message="An outcome entry cannot record an instrument of another trial.",
    ),
)

forwards, backwards = migration_operations(RULES)


class Migration(migrations.Migration):
    dependencies = [("outcomes", "0008_sms_totals"), ("trial", "0008_same_trial_links")]
    operations = [migrations.RunPython(forwards, backwards)]
