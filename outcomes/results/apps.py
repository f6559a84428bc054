from django.apps import AppConfig


class ResultsConfig(AppConfig):
    """Analysis frames, ITT, CONSORT, plots, the results dashboard and the export."""

    name = "outcomes.results"
    label = "results"
    verbose_name = "Results"
