from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = "Trial configuration"

    def ready(self) -> None:
        from trial import (
            checks,  # noqa: F401 - registers the deploy checks
            signals,
        )

        signals.connect()


class TrialdeskAdminConfig(AdminConfig):
    """django.contrib.admin with our site (trial.admin_site), which opens for trial roles."""

    default_site = "trial.admin_site.TrialdeskAdminSite"
