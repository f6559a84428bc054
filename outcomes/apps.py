from django.apps import AppConfig


class OutcomesConfig(AppConfig):
    """The top of the outcomes layers: the pages that join instruments and SMS (outcomes.views)
    and the migration history of the tables the nested apps (instruments, sms, results) own,
    which were created here before the apps were split and keep their outcomes_ names; with
    it the database triggers of outcomes.links, created by migration 0009."""

    name = "outcomes"
    verbose_name = "Outcomes"

    def ready(self) -> None:
        from outcomes import links
        from trial import same_trial

        # Before and after every migrate (trial.same_trial.connect says why).
        same_trial.connect(self, links.RULES, "0009_same_trial_links")
