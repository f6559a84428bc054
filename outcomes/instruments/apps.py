from django.apps import AppConfig


class InstrumentsConfig(AppConfig):
    """Instruments (configuration, EQ-5D value sets), outcome entry and scoring."""

    name = "outcomes.instruments"
    label = "instruments"
    verbose_name = "Instruments"
