from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ParticipantsConfig(AppConfig):
    name = "participants"
    verbose_name = "Participants"

    def ready(self) -> None:
        from participants import append_only

        # After every migrate: a table rebuild on SQLite drops the append-only trigger.
        post_migrate.connect(
            append_only.post_migrate, sender=self, dispatch_uid="allocation-append-only"
        )
