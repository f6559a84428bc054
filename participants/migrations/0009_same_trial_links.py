"""Database triggers that refuse links between two trials' rows (trial.same_trial): a
participant's site, consent document and screening, and a screening's site.

The rules are repeated here rather than imported from participants.links: this migration
must create the triggers it was written with, whatever that module says later. On SQLite
it creates none: they exist only between migrate runs (trial.same_trial.connect).
"""

from django.db import migrations

from trial.same_trial import SameTrial, migration_operations, trial_of

RULES = (
    SameTrial(
        name="participants_screening_site_same_trial",
        table="participants_screeningrecord",
        left="NEW.trial_id",
        right=trial_of("trial_site", "site_id"),
        columns=("trial_id", "site_id"),
        message="A screening cannot be at a site of another trial.",
    ),
    SameTrial(
        name="participants_participant_site_same_trial",
        table="participants_participant",
        left="NEW.trial_id",
        right=trial_of("trial_site", "site_id"),
        columns=("trial_id", "site_id"),
        message="A participant cannot be at a site of another trial.",
    ),
    SameTrial(
        name="participants_participant_consent_same_trial",
        table="participants_participant",
        left="NEW.trial_id",
        right=trial_of("trial_consentdocument", "consent_document_id"),
        columns=("trial_id", "consent_document_id"),
        message="A participant cannot consent on another trial's consent document.",
    ),
    SameTrial(
        name="participants_participant_screening_same_trial",
        table="participants_participant",
        left="NEW.trial_id",
        right=trial_of("participants_screeningrecord", "screening_id"),
        columns=("trial_id", "screening_id"),
        message="A participant cannot come from another trial's screening.",
    ),
)

forwards, backwards = migration_operations(RULES)


class Migration(migrations.Migration):
    dependencies = [("participants", "0008_visit_early_reason"), ("trial", "0008_same_trial_links")]
    operations = [migrations.RunPython(forwards, backwards)]
