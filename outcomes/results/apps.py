from django.apps import AppConfig


class ResultsConfig(AppConfig):
    """Analysis frames, ITT, CONSORT, plots, the results dashboard and the export."""

    name = "outcomes.results"
    label = "results"
    verbose_name = "Results"

    def ready(self) -> None:
        from outcomes.results import services, tasks

        # Exports are handed to this task (outcomes.results.services says why).
        services.connect_run_task(tasks.export_run)
