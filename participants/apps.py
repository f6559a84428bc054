from django.apps import AppConfig
from django.db.models.signals import post_migrate

# The migration that creates participants.links' triggers.
LINKS_MIGRATION = "0009_same_trial_links"


class ParticipantsConfig(AppConfig):
    name = "participants"
    verbose_name = "Participants"

    def ready(self) -> None:
        from participants import append_only, minimization
        from trial import models as trial_models

        # The trial's validation checks p against the engine's bound (one rule, one place).
        trial_models.use_preferred_probability_bound(minimization.preferred_probability_bound)

        # After every migrate: a table rebuild on SQLite drops the append-only trigger.
        post_migrate.connect(
            append_only.post_migrate, sender=self, dispatch_uid="allocation-append-only"
        )

        from participants import links
        from trial import same_trial

        # After every migrate: a table rebuild on SQLite drops the same-trial triggers.
        post_migrate.connect(
            same_trial.post_migrate_ensurer(links.RULES, "participants", LINKS_MIGRATION),
            sender=self,
            dispatch_uid="participants-same-trial-links",
            weak=False,
        )
