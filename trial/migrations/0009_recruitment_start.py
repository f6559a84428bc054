"""Trial.recruitment_start: the lower bound of screening dates.

Existing trials get the earlier of their first screening date and the local date they were
set up here, so no screening already recorded falls before it; their history rows get the
same value (they predate the field).
"""

from django.db import migrations, models
from django.db.models import Min


def fill_recruitment_start(apps, schema_editor):
    import zoneinfo

    Trial = apps.get_model("trial", "Trial")
    HistoricalTrial = apps.get_model("trial", "HistoricalTrial")
    ScreeningRecord = apps.get_model("participants", "ScreeningRecord")
    first_screening = dict(
        ScreeningRecord.objects.values("trial_id")
        .annotate(first=Min("screened_on"))
        .values_list("trial_id", "first")
    )
    for trial in Trial.objects.all():
        set_up = trial.created_at.astimezone(zoneinfo.ZoneInfo(trial.time_zone)).date()
        screened = first_screening.get(trial.pk)
        start = min(set_up, screened) if screened else set_up
        Trial.objects.filter(pk=trial.pk).update(recruitment_start=start)
        HistoricalTrial.objects.filter(id=trial.pk).update(recruitment_start=start)
    # History of trials since deleted: their own set-up date.
    for row in HistoricalTrial.objects.filter(recruitment_start__isnull=True):
        HistoricalTrial.objects.filter(pk=row.pk).update(recruitment_start=row.created_at.date())


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0008_same_trial_links"),
        ("participants", "0005_sms_tracking"),
    ]

    operations = [
        migrations.AddField(
            model_name="historicaltrial",
            name="recruitment_start",
            field=models.DateField(null=True, verbose_name="recruitment start"),
        ),
        migrations.AddField(
            model_name="trial",
            name="recruitment_start",
            field=models.DateField(null=True, verbose_name="recruitment start"),
        ),
        migrations.RunPython(fill_recruitment_start, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="historicaltrial",
            name="recruitment_start",
            field=models.DateField(
                help_text="The first day patients could be screened for this trial (it may "
                "precede the day the trial was set up here). Screening dates before it are "
                "refused.",
                verbose_name="recruitment start",
            ),
        ),
        migrations.AlterField(
            model_name="trial",
            name="recruitment_start",
            field=models.DateField(
                help_text="The first day patients could be screened for this trial (it may "
                "precede the day the trial was set up here). Screening dates before it are "
                "refused.",
                verbose_name="recruitment start",
            ),
        ),
    ]
