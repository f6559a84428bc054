"""The results models, moved from the flat outcomes app with their rows: this migration
only tells Django's state that the models (and their simple-history models) now belong
here; their tables keep their outcomes_ names (each model's Meta.db_table) and are not
touched. Outcomes migration 0011 removes them from the outcomes app's state and moves their
content types (and so the permissions and admin log entries that point at them)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("outcomes", "0010_free_text_limits"),
        ("trial", "0012_factor_level_site_same_trial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ExportJob",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "blinded",
                            models.BooleanField(
                                help_text="Arms as neutral codes (A, B, ...) only."
                            ),
                        ),
                        (
                            "shift_dates",
                            models.BooleanField(
                                default=False,
                                help_text="Dates shifted by a random offset per participant.",
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("running", "Running"),
                                    ("done", "Ready"),
                                    ("failed", "Failed"),
                                ],
                                default="queued",
                                max_length=8,
                            ),
                        ),
                        ("progress", models.PositiveSmallIntegerField(default=0)),
                        ("step", models.CharField(blank=True, max_length=200)),
                        ("file_name", models.CharField(blank=True, max_length=200)),
                        ("file_path", models.CharField(blank=True, max_length=500)),
                        ("size", models.PositiveBigIntegerField(blank=True, null=True)),
                        ("error", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("expires_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "requested_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "trial",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="trial.trial",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "outcomes_exportjob",
                        "ordering": ["-created_at"],
                        "indexes": [
                            models.Index(
                                fields=["trial", "-created_at"], name="export_trial_recent"
                            )
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("progress__lte", 100)),
                                name="export_progress_range",
                            )
                        ],
                    },
                ),
            ],
            # The tables exist (created by the outcomes app's migrations) and are kept.
            database_operations=[],
        ),
    ]
