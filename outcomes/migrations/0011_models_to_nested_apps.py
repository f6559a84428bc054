"""The instruments, SMS and export models leave the flat outcomes app for the nested apps
instruments, sms and results (their 0001_initial migrations): removed from this app's state
only, the tables staying as they are; their content types are moved to the new labels."""

from django.db import migrations


# Model names (lower case, as content types store them) of each new app, the historical
# models with them.
MOVED = {
    "instruments": (
        "eq5dvalueset",
        "historicaleq5dvalueset",
        "instrument",
        "historicalinstrument",
        "historicalinstrument_visits",
        "outcomeentry",
        "historicaloutcomeentry",
    ),
    "sms": (
        "outboundmessage",
        "smsschedule",
        "historicalsmsschedule",
        "smslanguage",
        "historicalsmslanguage",
        "smsquestion",
        "historicalsmsquestion",
        "smsquestiontext",
        "historicalsmsquestiontext",
        "smsweek",
        "inboundmessage",
        "smsanswer",
        "smsquestionweektotal",
        "smsparticipanttotal",
        "smsweektotal",
    ),
    "results": ("exportjob",),
}


def _relabel(apps, old, new_of):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for label, models in MOVED.items():
        moving = ContentType.objects.filter(app_label=old(label), model__in=models)
        # After this migration was reversed, `migrate` may have created content types under
        # the other label too (its post_migrate step sees the state of the last migration
        # it unapplied), with permissions of their own that only a grant made in between
        # could point at.
        # The content types that move keep the ids every grant and log entry points at;
        # such duplicates go.
        ContentType.objects.filter(
            app_label=new_of(label), model__in=moving.values("model")
        ).delete()
        moving.update(app_label=new_of(label))


def move_content_types(apps, schema_editor):
    _relabel(apps, old=lambda label: "outcomes", new_of=lambda label: label)


def move_content_types_back(apps, schema_editor):
    _relabel(apps, old=lambda label: label, new_of=lambda label: "outcomes")


class Migration(migrations.Migration):
    dependencies = [
        ("instruments", "0001_initial"),
        ("sms", "0001_initial"),
        ("results", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("outcomes", "0010_free_text_limits"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="instrument",
                    name="value_set",
                ),
                migrations.RemoveField(
                    model_name="historicalinstrument",
                    name="value_set",
                ),
                migrations.RemoveField(
                    model_name="exportjob",
                    name="requested_by",
                ),
                migrations.RemoveField(
                    model_name="exportjob",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="historicaleq5dvalueset",
                    name="history_user",
                ),
                migrations.RemoveField(
                    model_name="historicalinstrument",
                    name="baseline_variable",
                ),
                migrations.RemoveField(
                    model_name="historicalinstrument",
                    name="history_user",
                ),
                migrations.RemoveField(
                    model_name="historicalinstrument",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="historicalinstrument_visits",
                    name="history",
                ),
                migrations.RemoveField(
                    model_name="historicalinstrument_visits",
                    name="instrument",
                ),
                migrations.RemoveField(
                    model_name="historicalinstrument_visits",
                    name="visitdefinition",
                ),
                migrations.RemoveField(
                    model_name="historicaloutcomeentry",
                    name="entered_by",
                ),
                migrations.RemoveField(
                    model_name="historicaloutcomeentry",
                    name="history_user",
                ),
                migrations.RemoveField(
                    model_name="historicaloutcomeentry",
                    name="instrument",
                ),
                migrations.RemoveField(
                    model_name="historicaloutcomeentry",
                    name="participant",
                ),
                migrations.RemoveField(
                    model_name="historicaloutcomeentry",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="historicaloutcomeentry",
                    name="visit",
                ),
                migrations.RemoveField(
                    model_name="historicalsmslanguage",
                    name="history_user",
                ),
                migrations.RemoveField(
                    model_name="historicalsmslanguage",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="historicalsmsquestion",
                    name="history_user",
                ),
                migrations.RemoveField(
                    model_name="historicalsmsquestion",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="historicalsmsquestiontext",
                    name="history_user",
                ),
                migrations.RemoveField(
                    model_name="historicalsmsquestiontext",
                    name="language",
                ),
                migrations.RemoveField(
                    model_name="historicalsmsquestiontext",
                    name="question",
                ),
                migrations.RemoveField(
                    model_name="historicalsmsschedule",
                    name="history_user",
                ),
                migrations.RemoveField(
                    model_name="historicalsmsschedule",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="inboundmessage",
                    name="participant",
                ),
                migrations.RemoveField(
                    model_name="inboundmessage",
                    name="question",
                ),
                migrations.RemoveField(
                    model_name="inboundmessage",
                    name="reply",
                ),
                migrations.RemoveField(
                    model_name="inboundmessage",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="inboundmessage",
                    name="week",
                ),
                migrations.RemoveField(
                    model_name="smsanswer",
                    name="message",
                ),
                migrations.RemoveField(
                    model_name="instrument",
                    name="baseline_variable",
                ),
                migrations.RemoveField(
                    model_name="instrument",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="instrument",
                    name="visits",
                ),
                migrations.RemoveField(
                    model_name="outcomeentry",
                    name="instrument",
                ),
                migrations.RemoveField(
                    model_name="outboundmessage",
                    name="participant",
                ),
                migrations.RemoveField(
                    model_name="outboundmessage",
                    name="question",
                ),
                migrations.RemoveField(
                    model_name="outboundmessage",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="outboundmessage",
                    name="week",
                ),
                migrations.RemoveField(
                    model_name="outcomeentry",
                    name="entered_by",
                ),
                migrations.RemoveField(
                    model_name="outcomeentry",
                    name="participant",
                ),
                migrations.RemoveField(
                    model_name="outcomeentry",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="outcomeentry",
                    name="visit",
                ),
                migrations.RemoveField(
                    model_name="smsanswer",
                    name="participant",
                ),
                migrations.RemoveField(
                    model_name="smsanswer",
                    name="question",
                ),
                migrations.RemoveField(
                    model_name="smsanswer",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="smsanswer",
                    name="week",
                ),
                migrations.RemoveField(
                    model_name="smslanguage",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="smsquestiontext",
                    name="language",
                ),
                migrations.RemoveField(
                    model_name="smsparticipanttotal",
                    name="arm",
                ),
                migrations.RemoveField(
                    model_name="smsparticipanttotal",
                    name="participant",
                ),
                migrations.RemoveField(
                    model_name="smsparticipanttotal",
                    name="question",
                ),
                migrations.RemoveField(
                    model_name="smsparticipanttotal",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="smsquestion",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="smsquestionweektotal",
                    name="question",
                ),
                migrations.RemoveField(
                    model_name="smsquestiontext",
                    name="question",
                ),
                migrations.RemoveField(
                    model_name="smsweek",
                    name="current_question",
                ),
                migrations.RemoveField(
                    model_name="smsquestionweektotal",
                    name="arm",
                ),
                migrations.RemoveField(
                    model_name="smsquestionweektotal",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="smsschedule",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="smsweek",
                    name="participant",
                ),
                migrations.RemoveField(
                    model_name="smsweek",
                    name="site",
                ),
                migrations.RemoveField(
                    model_name="smsweek",
                    name="trial",
                ),
                migrations.RemoveField(
                    model_name="smsweektotal",
                    name="arm",
                ),
                migrations.RemoveField(
                    model_name="smsweektotal",
                    name="trial",
                ),
                migrations.DeleteModel(
                    name="EQ5DValueSet",
                ),
                migrations.DeleteModel(
                    name="ExportJob",
                ),
                migrations.DeleteModel(
                    name="HistoricalEQ5DValueSet",
                ),
                migrations.DeleteModel(
                    name="HistoricalInstrument",
                ),
                migrations.DeleteModel(
                    name="HistoricalInstrument_visits",
                ),
                migrations.DeleteModel(
                    name="HistoricalOutcomeEntry",
                ),
                migrations.DeleteModel(
                    name="HistoricalSmsLanguage",
                ),
                migrations.DeleteModel(
                    name="HistoricalSmsQuestion",
                ),
                migrations.DeleteModel(
                    name="HistoricalSmsQuestionText",
                ),
                migrations.DeleteModel(
                    name="HistoricalSmsSchedule",
                ),
                migrations.DeleteModel(
                    name="InboundMessage",
                ),
                migrations.DeleteModel(
                    name="Instrument",
                ),
                migrations.DeleteModel(
                    name="OutboundMessage",
                ),
                migrations.DeleteModel(
                    name="OutcomeEntry",
                ),
                migrations.DeleteModel(
                    name="SmsAnswer",
                ),
                migrations.DeleteModel(
                    name="SmsLanguage",
                ),
                migrations.DeleteModel(
                    name="SmsParticipantTotal",
                ),
                migrations.DeleteModel(
                    name="SmsQuestionText",
                ),
                migrations.DeleteModel(
                    name="SmsQuestion",
                ),
                migrations.DeleteModel(
                    name="SmsQuestionWeekTotal",
                ),
                migrations.DeleteModel(
                    name="SmsSchedule",
                ),
                migrations.DeleteModel(
                    name="SmsWeek",
                ),
                migrations.DeleteModel(
                    name="SmsWeekTotal",
                ),
            ],
            # The tables exist (created by the outcomes app's migrations) and are kept.
            database_operations=[],
        ),
        # The content types follow the models, keeping their ids: the permissions groups and
        # users hold and the admin's log entries point at the right model under its new label,
        # and no second content type is created for it.
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
