from django.apps import AppConfig


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
