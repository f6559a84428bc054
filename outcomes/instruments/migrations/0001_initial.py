"""The instruments models, moved from the flat outcomes app with their rows: this migration
only tells Django's state that the models (and their simple-history models) now belong
here; their tables keep their outcomes_ names (each model's Meta.db_table) and are not
touched. Outcomes migration 0011 removes them from the outcomes app's state and moves their
content types (and so the permissions and admin log entries that point at them)."""

import django.db.models.deletion
import django.db.models.functions.text
import django.db.models.lookups
import simple_history.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("outcomes", "0010_free_text_limits"),
        ("participants", "0012_free_text_limits"),
        ("trial", "0012_factor_level_site_same_trial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="EQ5DValueSet",
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
                        ("code", models.SlugField(max_length=40, unique=True)),
                        ("name", models.CharField(max_length=200)),
                        ("citation", models.TextField(max_length=1000)),
                        (
                            "coefficients",
                            models.JSONField(
                                help_text='{"constant": c, "n3": n, "decrements": {"MO": {"2": x, "3": y}, ...}}'
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "EQ-5D value set",
                        "db_table": "outcomes_eq5dvalueset",
                        "constraints": [
                            models.CheckConstraint(
                                condition=django.db.models.lookups.LessThanOrEqual(
                                    django.db.models.functions.text.Length("citation"), 1000
                                ),
                                name="eq5d_citation_length",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="HistoricalEQ5DValueSet",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("code", models.SlugField(max_length=40)),
                        ("name", models.CharField(max_length=200)),
                        ("citation", models.TextField(max_length=1000)),
                        (
                            "coefficients",
                            models.JSONField(
                                help_text='{"constant": c, "n3": n, "decrements": {"MO": {"2": x, "3": y}, ...}}'
                            ),
                        ),
                        ("history_id", models.AutoField(primary_key=True, serialize=False)),
                        ("history_date", models.DateTimeField(db_index=True)),
                        ("history_change_reason", models.TextField(null=True)),
                        (
                            "history_type",
                            models.CharField(
                                choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")],
                                max_length=1,
                            ),
                        ),
                        (
                            "history_user",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "historical EQ-5D value set",
                        "verbose_name_plural": "historical EQ-5D value sets",
                        "db_table": "outcomes_historicaleq5dvalueset",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="HistoricalInstrument",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("code", models.SlugField(max_length=30)),
                        ("name", models.CharField(max_length=200)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("pain_nrs", "Pain, 0–10 numeric rating scale"),
                                    ("rmdq", "Roland–Morris Disability Questionnaire (23 items)"),
                                    ("eq5d_3l", "EQ-5D-3L (5 dimensions + VAS)"),
                                    ("global_7", "Global assessment, 7-point transition"),
                                ],
                                max_length=12,
                            ),
                        ),
                        (
                            "primary",
                            models.BooleanField(
                                default=False, help_text="The trial's primary outcome."
                            ),
                        ),
                        ("order", models.PositiveSmallIntegerField(default=0)),
                        ("history_id", models.AutoField(primary_key=True, serialize=False)),
                        ("history_date", models.DateTimeField(db_index=True)),
                        ("history_change_reason", models.TextField(null=True)),
                        (
                            "history_type",
                            models.CharField(
                                choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")],
                                max_length=1,
                            ),
                        ),
                        (
                            "baseline_variable",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                help_text="The score entered at baseline (before randomization) is this baseline variable, e.g. baseline pain for a minimization factor. Pain and Roland–Morris only.",
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="trial.baselinevariable",
                            ),
                        ),
                        (
                            "history_user",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "trial",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="trial.trial",
                            ),
                        ),
                        (
                            "value_set",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                help_text="EQ-5D-3L only: the value set the index is computed from.",
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="instruments.eq5dvalueset",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "historical instrument",
                        "verbose_name_plural": "historical instruments",
                        "db_table": "outcomes_historicalinstrument",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="Instrument",
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
                        ("code", models.SlugField(max_length=30)),
                        ("name", models.CharField(max_length=200)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("pain_nrs", "Pain, 0–10 numeric rating scale"),
                                    ("rmdq", "Roland–Morris Disability Questionnaire (23 items)"),
                                    ("eq5d_3l", "EQ-5D-3L (5 dimensions + VAS)"),
                                    ("global_7", "Global assessment, 7-point transition"),
                                ],
                                max_length=12,
                            ),
                        ),
                        (
                            "primary",
                            models.BooleanField(
                                default=False, help_text="The trial's primary outcome."
                            ),
                        ),
                        ("order", models.PositiveSmallIntegerField(default=0)),
                        (
                            "baseline_variable",
                            models.OneToOneField(
                                blank=True,
                                help_text="The score entered at baseline (before randomization) is this baseline variable, e.g. baseline pain for a minimization factor. Pain and Roland–Morris only.",
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="source_instrument",
                                to="trial.baselinevariable",
                            ),
                        ),
                        (
                            "trial",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="instruments",
                                to="trial.trial",
                            ),
                        ),
                        (
                            "value_set",
                            models.ForeignKey(
                                blank=True,
                                help_text="EQ-5D-3L only: the value set the index is computed from.",
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                to="instruments.eq5dvalueset",
                            ),
                        ),
                        (
                            "visits",
                            models.ManyToManyField(
                                blank=True,
                                help_text="The visits at which this instrument is due.",
                                related_name="instruments",
                                to="trial.visitdefinition",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "outcomes_instrument",
                        "ordering": ["trial", "order", "pk"],
                    },
                ),
                migrations.CreateModel(
                    name="HistoricalOutcomeEntry",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("responses", models.JSONField(blank=True, default=dict)),
                        ("score", models.FloatField(blank=True, null=True)),
                        ("eq5d_profile", models.CharField(blank=True, max_length=5)),
                        ("eq5d_vas", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("improved", models.BooleanField(blank=True, null=True)),
                        (
                            "not_done",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("not_reached", "Not reached"),
                                    ("refused", "Refused"),
                                    ("too_ill", "Too ill"),
                                    ("other", "Other"),
                                ],
                                max_length=12,
                            ),
                        ),
                        ("not_done_note", models.CharField(blank=True, max_length=300)),
                        ("entered_at", models.DateTimeField(blank=True, editable=False)),
                        ("history_id", models.AutoField(primary_key=True, serialize=False)),
                        ("history_date", models.DateTimeField(db_index=True)),
                        ("history_change_reason", models.TextField(null=True)),
                        (
                            "history_type",
                            models.CharField(
                                choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")],
                                max_length=1,
                            ),
                        ),
                        (
                            "entered_by",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "history_user",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "participant",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="participants.participant",
                            ),
                        ),
                        (
                            "trial",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="trial.trial",
                            ),
                        ),
                        (
                            "visit",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="participants.visit",
                            ),
                        ),
                        (
                            "instrument",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="instruments.instrument",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "historical outcome entry",
                        "verbose_name_plural": "historical outcome entries",
                        "db_table": "outcomes_historicaloutcomeentry",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="HistoricalInstrument_visits",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("m2m_history_id", models.AutoField(primary_key=True, serialize=False)),
                        (
                            "history",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                to="instruments.historicalinstrument",
                            ),
                        ),
                        (
                            "visitdefinition",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                db_tablespace="",
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="trial.visitdefinition",
                            ),
                        ),
                        (
                            "instrument",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                db_tablespace="",
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="instruments.instrument",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "HistoricalInstrument_visits",
                        "db_table": "outcomes_historicalinstrument_visits",
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="OutcomeEntry",
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
                        ("responses", models.JSONField(blank=True, default=dict)),
                        ("score", models.FloatField(blank=True, null=True)),
                        ("eq5d_profile", models.CharField(blank=True, max_length=5)),
                        ("eq5d_vas", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("improved", models.BooleanField(blank=True, null=True)),
                        (
                            "not_done",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("not_reached", "Not reached"),
                                    ("refused", "Refused"),
                                    ("too_ill", "Too ill"),
                                    ("other", "Other"),
                                ],
                                max_length=12,
                            ),
                        ),
                        ("not_done_note", models.CharField(blank=True, max_length=300)),
                        ("entered_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "entered_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "instrument",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="entries",
                                to="instruments.instrument",
                            ),
                        ),
                        (
                            "participant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="outcome_entries",
                                to="participants.participant",
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
                        (
                            "visit",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="outcome_entries",
                                to="participants.visit",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "outcome entries",
                        "db_table": "outcomes_outcomeentry",
                        "ordering": ["visit", "instrument__order"],
                    },
                ),
                migrations.AddConstraint(
                    model_name="instrument",
                    constraint=models.UniqueConstraint(
                        fields=("trial", "code"), name="instrument_code_unique"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="instrument",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("baseline_variable__isnull", True),
                            ("kind__in", ["pain_nrs", "rmdq"]),
                            _connector="OR",
                        ),
                        name="instrument_baseline_variable_whole_score",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="instrument",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("kind", "eq5d_3l"), ("value_set__isnull", False)),
                            models.Q(
                                models.Q(("kind", "eq5d_3l"), _negated=True),
                                ("value_set__isnull", True),
                            ),
                            _connector="OR",
                        ),
                        name="instrument_value_set_only_for_eq5d",
                    ),
                ),
                migrations.AddIndex(
                    model_name="outcomeentry",
                    index=models.Index(
                        fields=["trial", "instrument"], name="outcomes_ou_trial_i_9cc74c_idx"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outcomeentry",
                    constraint=models.UniqueConstraint(
                        fields=("visit", "instrument"), name="one_entry_per_visit"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outcomeentry",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("visit__isnull", True)),
                        fields=("participant", "instrument"),
                        name="one_baseline_entry_before_randomization",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outcomeentry",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("not_done", ""),
                            models.Q(("score__isnull", True), ("eq5d_vas__isnull", True)),
                            _connector="OR",
                        ),
                        name="entry_done_or_not_done",
                    ),
                ),
            ],
            # The tables exist (created by the outcomes app's migrations) and are kept.
            database_operations=[],
        ),
    ]
