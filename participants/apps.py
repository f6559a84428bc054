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

        # Before and after every migrate (trial.same_trial.connect says why).
        same_trial.connect(self, links.RULES, LINKS_MIGRATION)
