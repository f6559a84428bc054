from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class OutcomesConfig(AppConfig):
    name = "outcomes"
    verbose_name = "Outcomes"

    def ready(self) -> None:
        from outcomes import links
        from trial import same_trial

        # Before and after every migrate (trial.same_trial.connect says why).
        same_trial.connect(self, links.RULES, "0009_same_trial_links")

        # The weekly SMS configuration is cached per process (outcomes.tracking.sms_config);
        # any change to it clears the cache.
        from outcomes import tracking

        for name in ("SmsSchedule", "SmsLanguage", "SmsQuestion", "SmsQuestionText"):
            model = self.get_model(name)
            for signal in (post_save, post_delete):
                signal.connect(
                    tracking.clear_sms_config_cache,
                    sender=model,
                    dispatch_uid=f"sms_config_cache_{name}_{signal is post_save}",
                )
