from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = "Trial configuration"

    def ready(self) -> None:
        from trial import (
            blinding,
            checks,  # noqa: F401 - registers the deploy checks
            signals,
        )

        signals.connect()
        blinding.connect()

        from trial import same_trial

        # Before and after every migrate (trial.same_trial.connect says why).
        same_trial.connect(self, same_trial.RULES, "0008_same_trial_links")


class TrialdeskAdminConfig(AdminConfig):
    """django.contrib.admin with our site (trial.admin_site), which opens for trial roles."""

    default_site = "trial.admin_site.TrialdeskAdminSite"
