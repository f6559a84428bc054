from django.apps import AppConfig


class InstrumentsConfig(AppConfig):
    """Instruments (configuration, EQ-5D value sets), outcome entry and scoring."""

    name = "outcomes.instruments"
    label = "instruments"
    verbose_name = "Instruments"

    def ready(self) -> None:
        from outcomes.instruments import baseline_links
        from participants import hooks

        # Randomization links the baseline entries to the baseline visit, in its own batch.
        hooks.connect_randomized(baseline_links.baseline_links)
