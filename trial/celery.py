"""The Celery application.

Without CELERY_BROKER_URL the settings make every task run eagerly, in process, so
development and the test suite need no broker; production points it at Redis.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")

app = Celery("trial")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
