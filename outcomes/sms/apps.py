from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class SmsConfig(AppConfig):
    """The weekly SMS: rules, schedule, outbox, gateways, webhooks, totals, opt-out."""

    name = "outcomes.sms"
    label = "sms"
    verbose_name = "Weekly SMS"

    def ready(self) -> None:
        from outcomes.sms import selectors, services, tasks
        from participants import hooks

        # The outbox hands queued messages to this task (outcomes.sms.services says why).
        services.connect_send_task(tasks.sms_send)

        # The coordinator digest (participants) lists the day's opt-outs.
        hooks.connect_digest_opt_outs(selectors.sms_opt_outs_between)

        # The weekly SMS configuration is cached per process (outcomes.sms.tracking.sms_config);
        # any change to it clears the cache.
        from outcomes.sms import tracking

        for name in ("SmsSchedule", "SmsLanguage", "SmsQuestion", "SmsQuestionText"):
            model = self.get_model(name)
            for signal in (post_save, post_delete):
                signal.connect(
                    tracking.clear_sms_config_cache,
                    sender=model,
                    dispatch_uid=f"sms_config_cache_{name}_{signal is post_save}",
                )
