from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ParticipantsConfig(AppConfig):
    name = "participants"
    verbose_name = "Participants"

    def ready(self) -> None:
        from trial.roles import ensure_role_groups

        # After this app's migrations, the trial and participants permissions exist.
        post_migrate.connect(ensure_role_groups, sender=self, dispatch_uid="ensure_role_groups")
