from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = "Trial configuration"

    def ready(self) -> None:
        from trial import (
            checks,  # noqa: F401 - registers the deploy checks
            signals,
        )

        signals.connect()

        from trial import same_trial

        # After every migrate: a table rebuild on SQLite drops the same-trial triggers.
        post_migrate.connect(
            same_trial.post_migrate_ensurer(same_trial.RULES, "trial", "0008_same_trial_links"),
            sender=self,
            dispatch_uid="trial-same-trial-links",
            weak=False,
        )


class TrialdeskAdminConfig(AdminConfig):
    """django.contrib.admin with our site (trial.admin_site), which opens for trial roles."""

    default_site = "trial.admin_site.TrialdeskAdminSite"
