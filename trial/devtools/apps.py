from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    name = "trial.devtools"
    label = "devtools"
    verbose_name = "Development tools (demo data, benchmarks)"
