"""Participants' links to their trial's configuration, guarded by the database
(trial.same_trial): a participant's site, consent document and screening, and a
screening's site, are the trial's own. The services check the same before writing."""

from __future__ import annotations

from trial.same_trial import SameTrial, trial_of

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
