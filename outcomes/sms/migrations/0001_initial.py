"""The sms models, moved from the flat outcomes app with their rows: this migration
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
                    name="HistoricalSmsLanguage",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("code", models.CharField(help_text='e.g. "da", "en"', max_length=8)),
                        ("name", models.CharField(max_length=50)),
                        (
                            "reminder",
                            models.CharField(help_text='e.g. "Reminder:"', max_length=160),
                        ),
                        ("thanks", models.CharField(max_length=300)),
                        ("clarification", models.CharField(max_length=300)),
                        ("opted_in", models.CharField(help_text="Reply to START.", max_length=300)),
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
                    ],
                    options={
                        "verbose_name": "historical SMS language",
                        "verbose_name_plural": "historical SMS languages",
                        "db_table": "outcomes_historicalsmslanguage",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="HistoricalSmsQuestion",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("code", models.SlugField(max_length=30)),
                        (
                            "label",
                            models.CharField(
                                help_text="Short label for screens and exports.", max_length=200
                            ),
                        ),
                        ("order", models.PositiveSmallIntegerField(default=0)),
                        ("min_value", models.SmallIntegerField(default=0)),
                        ("max_value", models.SmallIntegerField(default=7)),
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
                    ],
                    options={
                        "verbose_name": "historical SMS question",
                        "verbose_name_plural": "historical SMS questions",
                        "db_table": "outcomes_historicalsmsquestion",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="HistoricalSmsSchedule",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("enabled", models.BooleanField(default=True)),
                        (
                            "weekday",
                            models.PositiveSmallIntegerField(
                                choices=[
                                    (0, "Monday"),
                                    (1, "Tuesday"),
                                    (2, "Wednesday"),
                                    (3, "Thursday"),
                                    (4, "Friday"),
                                    (5, "Saturday"),
                                    (6, "Sunday"),
                                ]
                            ),
                        ),
                        (
                            "send_time",
                            models.TimeField(help_text="Local time in the trial's time zone."),
                        ),
                        (
                            "weeks",
                            models.PositiveSmallIntegerField(
                                help_text="How many weekly rounds each participant gets; week 1 is the first send day after the randomization date."
                            ),
                        ),
                        (
                            "reminder_after_hours",
                            models.PositiveSmallIntegerField(
                                default=24,
                                help_text="One reminder when a week's questions are unanswered this long.",
                            ),
                        ),
                        (
                            "max_clarifications",
                            models.PositiveSmallIntegerField(
                                default=3,
                                help_text="Clarifying replies per participant and week at most (guards against loops with auto-responders); further unreadable replies are only logged.",
                            ),
                        ),
                        (
                            "default_language",
                            models.CharField(
                                help_text="Language code used when a participant has none.",
                                max_length=8,
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
                    ],
                    options={
                        "verbose_name": "historical SMS schedule",
                        "verbose_name_plural": "historical SMS schedules",
                        "db_table": "outcomes_historicalsmsschedule",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="SmsLanguage",
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
                        ("code", models.CharField(help_text='e.g. "da", "en"', max_length=8)),
                        ("name", models.CharField(max_length=50)),
                        (
                            "reminder",
                            models.CharField(help_text='e.g. "Reminder:"', max_length=160),
                        ),
                        ("thanks", models.CharField(max_length=300)),
                        ("clarification", models.CharField(max_length=300)),
                        ("opted_in", models.CharField(help_text="Reply to START.", max_length=300)),
                        (
                            "trial",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="sms_languages",
                                to="trial.trial",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "SMS language",
                        "db_table": "outcomes_smslanguage",
                        "ordering": ["trial", "code"],
                    },
                ),
                migrations.CreateModel(
                    name="SmsQuestion",
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
                        (
                            "label",
                            models.CharField(
                                help_text="Short label for screens and exports.", max_length=200
                            ),
                        ),
                        ("order", models.PositiveSmallIntegerField(default=0)),
                        ("min_value", models.SmallIntegerField(default=0)),
                        ("max_value", models.SmallIntegerField(default=7)),
                        (
                            "trial",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="sms_questions",
                                to="trial.trial",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "SMS question",
                        "db_table": "outcomes_smsquestion",
                        "ordering": ["trial", "order", "pk"],
                    },
                ),
                migrations.CreateModel(
                    name="SmsParticipantTotal",
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
                        ("answers", models.PositiveIntegerField(default=0)),
                        ("total", models.BigIntegerField(default=0)),
                        (
                            "arm",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="trial.arm",
                            ),
                        ),
                        (
                            "participant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
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
                            "question",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="sms.smsquestion",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "outcomes_smsparticipanttotal",
                    },
                ),
                migrations.CreateModel(
                    name="OutboundMessage",
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
                        ("to", models.CharField(max_length=16, verbose_name="to (E.164)")),
                        ("body", models.TextField(max_length=1600)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("visit_reminder", "Visit reminder"),
                                    ("sms_question", "Weekly question"),
                                    ("sms_reminder", "Weekly reminder"),
                                    ("sms_thanks", "Thank-you"),
                                    ("sms_clarification", "Clarification"),
                                    ("sms_opt_in", "Opt-in confirmation"),
                                ],
                                max_length=30,
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("sent", "Sent"),
                                    ("failed", "Failed"),
                                    ("cancelled", "Cancelled"),
                                ],
                                default="queued",
                                max_length=10,
                            ),
                        ),
                        (
                            "attempts",
                            models.PositiveSmallIntegerField(
                                default=0, help_text="Calls made to the gateway for this message."
                            ),
                        ),
                        ("last_error", models.TextField(blank=True)),
                        ("gateway_message_id", models.CharField(blank=True, max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("last_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("delivery_status", models.CharField(blank=True, max_length=20)),
                        ("delivery_error_code", models.CharField(blank=True, max_length=20)),
                        ("delivery_updated_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "participant",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="outbound_messages",
                                to="participants.participant",
                            ),
                        ),
                        (
                            "trial",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="outbound_messages",
                                to="trial.trial",
                            ),
                        ),
                        (
                            "question",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="sms.smsquestion",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "outcomes_outboundmessage",
                        "ordering": ["-created_at", "-pk"],
                    },
                ),
                migrations.CreateModel(
                    name="InboundMessage",
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
                        ("gateway_message_id", models.CharField(max_length=64, unique=True)),
                        ("from_number", models.CharField(max_length=64)),
                        ("to_number", models.CharField(blank=True, max_length=64)),
                        ("body", models.TextField(blank=True)),
                        ("body_truncated", models.BooleanField(default=False)),
                        ("received_at", models.DateTimeField()),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("answer", "Answer"),
                                    ("invalid", "Not understood"),
                                    ("extra", "Extra (week already answered)"),
                                    ("no_question", "No question open"),
                                    ("opt_out", "Opt-out"),
                                    ("opt_in", "Opt-in"),
                                    ("unknown_number", "Unknown number"),
                                    (
                                        "not_tracked",
                                        "Participant not tracked (withdrawn, deceased, opted out)",
                                    ),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("value", models.SmallIntegerField(blank=True, null=True)),
                        (
                            "participant",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="inbound_messages",
                                to="participants.participant",
                            ),
                        ),
                        (
                            "trial",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="trial.trial",
                            ),
                        ),
                        (
                            "reply",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="sms.outboundmessage",
                            ),
                        ),
                        (
                            "question",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="sms.smsquestion",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "outcomes_inboundmessage",
                        "ordering": ["-received_at", "-pk"],
                    },
                ),
                migrations.CreateModel(
                    name="HistoricalSmsQuestionText",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("text", models.CharField(max_length=300)),
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
                        (
                            "language",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="sms.smslanguage",
                            ),
                        ),
                        (
                            "question",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="sms.smsquestion",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "historical SMS question text",
                        "verbose_name_plural": "historical SMS question texts",
                        "db_table": "outcomes_historicalsmsquestiontext",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="SmsQuestionText",
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
                        ("text", models.CharField(max_length=300)),
                        (
                            "language",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="texts",
                                to="sms.smslanguage",
                            ),
                        ),
                        (
                            "question",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="texts",
                                to="sms.smsquestion",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "SMS question text",
                        "db_table": "outcomes_smsquestiontext",
                    },
                ),
                migrations.CreateModel(
                    name="SmsQuestionWeekTotal",
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
                        ("week", models.PositiveSmallIntegerField()),
                        ("answers", models.PositiveIntegerField(default=0)),
                        ("total", models.BigIntegerField(default=0)),
                        (
                            "arm",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="trial.arm",
                            ),
                        ),
                        (
                            "question",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="sms.smsquestion",
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
                        "db_table": "outcomes_smsquestionweektotal",
                    },
                ),
                migrations.CreateModel(
                    name="SmsSchedule",
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
                        ("enabled", models.BooleanField(default=True)),
                        (
                            "weekday",
                            models.PositiveSmallIntegerField(
                                choices=[
                                    (0, "Monday"),
                                    (1, "Tuesday"),
                                    (2, "Wednesday"),
                                    (3, "Thursday"),
                                    (4, "Friday"),
                                    (5, "Saturday"),
                                    (6, "Sunday"),
                                ]
                            ),
                        ),
                        (
                            "send_time",
                            models.TimeField(help_text="Local time in the trial's time zone."),
                        ),
                        (
                            "weeks",
                            models.PositiveSmallIntegerField(
                                help_text="How many weekly rounds each participant gets; week 1 is the first send day after the randomization date."
                            ),
                        ),
                        (
                            "reminder_after_hours",
                            models.PositiveSmallIntegerField(
                                default=24,
                                help_text="One reminder when a week's questions are unanswered this long.",
                            ),
                        ),
                        (
                            "max_clarifications",
                            models.PositiveSmallIntegerField(
                                default=3,
                                help_text="Clarifying replies per participant and week at most (guards against loops with auto-responders); further unreadable replies are only logged.",
                            ),
                        ),
                        (
                            "default_language",
                            models.CharField(
                                help_text="Language code used when a participant has none.",
                                max_length=8,
                            ),
                        ),
                        (
                            "trial",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="sms_schedule",
                                to="trial.trial",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "SMS schedule",
                        "db_table": "outcomes_smsschedule",
                    },
                ),
                migrations.CreateModel(
                    name="SmsWeek",
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
                        ("week", models.PositiveSmallIntegerField()),
                        (
                            "send_date",
                            models.DateField(
                                help_text="The local date the week's first question went."
                            ),
                        ),
                        ("opened_at", models.DateTimeField()),
                        ("answered", models.PositiveSmallIntegerField(default=0)),
                        ("completed_at", models.DateTimeField(blank=True, null=True)),
                        ("reminder_sent_at", models.DateTimeField(blank=True, null=True)),
                        ("clarifications", models.PositiveSmallIntegerField(default=0)),
                        (
                            "current_question",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="sms.smsquestion",
                            ),
                        ),
                        (
                            "participant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="sms_weeks",
                                to="participants.participant",
                            ),
                        ),
                        (
                            "site",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="trial.site",
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
                        "verbose_name": "SMS week",
                        "db_table": "outcomes_smsweek",
                        "ordering": ["participant", "week"],
                    },
                ),
                migrations.CreateModel(
                    name="SmsAnswer",
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
                        ("value", models.SmallIntegerField()),
                        ("answered_at", models.DateTimeField()),
                        (
                            "message",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="answer",
                                to="sms.inboundmessage",
                            ),
                        ),
                        (
                            "participant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="sms_answers",
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
                            "question",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="answers",
                                to="sms.smsquestion",
                            ),
                        ),
                        (
                            "week",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="answers",
                                to="sms.smsweek",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "SMS answer",
                        "db_table": "outcomes_smsanswer",
                        "ordering": ["week", "question__order"],
                    },
                ),
                migrations.AddField(
                    model_name="outboundmessage",
                    name="week",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="messages",
                        to="sms.smsweek",
                    ),
                ),
                migrations.AddField(
                    model_name="inboundmessage",
                    name="week",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="inbound",
                        to="sms.smsweek",
                    ),
                ),
                migrations.CreateModel(
                    name="SmsWeekTotal",
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
                        ("week", models.PositiveSmallIntegerField()),
                        ("sent", models.PositiveIntegerField(default=0)),
                        ("answered", models.PositiveIntegerField(default=0)),
                        ("complete", models.PositiveIntegerField(default=0)),
                        (
                            "arm",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="trial.arm",
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
                        "db_table": "outcomes_smsweektotal",
                    },
                ),
                migrations.AddConstraint(
                    model_name="smslanguage",
                    constraint=models.UniqueConstraint(
                        fields=("trial", "code"), name="sms_language_unique"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsquestion",
                    constraint=models.UniqueConstraint(
                        fields=("trial", "code"), name="sms_question_unique"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsquestion",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("min_value__lte", models.F("max_value"))),
                        name="sms_question_range",
                    ),
                ),
                migrations.AddIndex(
                    model_name="smsparticipanttotal",
                    index=models.Index(fields=["trial", "question"], name="sms_p_total_trial"),
                ),
                migrations.AddConstraint(
                    model_name="smsparticipanttotal",
                    constraint=models.UniqueConstraint(
                        fields=("participant", "question"), name="sms_participant_total_once"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsquestiontext",
                    constraint=models.UniqueConstraint(
                        fields=("question", "language"), name="sms_question_text_unique"
                    ),
                ),
                migrations.AddIndex(
                    model_name="smsquestionweektotal",
                    index=models.Index(fields=["trial"], name="sms_qw_total_trial"),
                ),
                migrations.AddConstraint(
                    model_name="smsquestionweektotal",
                    constraint=models.UniqueConstraint(
                        fields=("question", "week", "arm"), name="sms_question_week_total_once"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsschedule",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("weekday__lte", 6)), name="sms_schedule_weekday"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsschedule",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("weeks__gte", 1)), name="sms_schedule_weeks"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsschedule",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("reminder_after_hours__gte", 1), ("reminder_after_hours__lte", 144)
                        ),
                        name="sms_schedule_reminder_delay",
                    ),
                ),
                migrations.AddIndex(
                    model_name="smsweek",
                    index=models.Index(fields=["trial", "send_date", "site"], name="sms_week_grid"),
                ),
                migrations.AddIndex(
                    model_name="smsweek",
                    index=models.Index(
                        condition=models.Q(
                            ("completed_at__isnull", True), ("reminder_sent_at__isnull", True)
                        ),
                        fields=["opened_at"],
                        name="sms_week_needs_reminder",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsweek",
                    constraint=models.UniqueConstraint(
                        fields=("participant", "week"), name="sms_week_once"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsweek",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("week__gte", 1)), name="sms_week_positive"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsweek",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("completed_at__isnull", True),
                            ("current_question__isnull", True),
                            _connector="OR",
                        ),
                        name="sms_week_complete_has_no_question",
                    ),
                ),
                migrations.AddIndex(
                    model_name="smsanswer",
                    index=models.Index(fields=["trial", "question"], name="sms_answer_trial"),
                ),
                migrations.AddConstraint(
                    model_name="smsanswer",
                    constraint=models.UniqueConstraint(
                        fields=("week", "question"), name="sms_answer_first_wins"
                    ),
                ),
                migrations.AddIndex(
                    model_name="outboundmessage",
                    index=models.Index(
                        fields=["status", "next_attempt_at"], name="outbound_status_next"
                    ),
                ),
                migrations.AddIndex(
                    model_name="outboundmessage",
                    index=models.Index(fields=["gateway_message_id"], name="outbound_gateway_id"),
                ),
                migrations.AddIndex(
                    model_name="outboundmessage",
                    index=models.Index(
                        fields=["participant", "-created_at"], name="outbound_participant"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outboundmessage",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("status", "sent"), _negated=True),
                            ("sent_at__isnull", False),
                            _connector="OR",
                        ),
                        name="outbound_sent_has_time",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outboundmessage",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("body", ""), _negated=True), name="outbound_has_body"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outboundmessage",
                    constraint=models.CheckConstraint(
                        condition=django.db.models.lookups.LessThanOrEqual(
                            django.db.models.functions.text.Length("body"), 1600
                        ),
                        name="outbound_body_length",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outboundmessage",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("kind", "sms_question")),
                        fields=("week", "question"),
                        name="outbound_one_question_per_week",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outboundmessage",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("kind", "sms_reminder")),
                        fields=("week",),
                        name="outbound_one_reminder",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outboundmessage",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("kind", "sms_thanks")),
                        fields=("week",),
                        name="outbound_one_thanks",
                    ),
                ),
                migrations.AddIndex(
                    model_name="inboundmessage",
                    index=models.Index(
                        fields=["participant", "-received_at"], name="inbound_participant"
                    ),
                ),
                migrations.AddIndex(
                    model_name="inboundmessage",
                    index=models.Index(
                        fields=["trial", "kind", "-received_at"], name="inbound_trial_kind"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsweektotal",
                    constraint=models.UniqueConstraint(
                        fields=("trial", "week", "arm"), name="sms_week_total_once"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="smsweektotal",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("answered__lte", models.F("sent")),
                            ("complete__lte", models.F("answered")),
                        ),
                        name="sms_week_total_consistent",
                    ),
                ),
            ],
            # The tables exist (created by the outcomes app's migrations) and are kept.
            database_operations=[],
        ),
    ]
