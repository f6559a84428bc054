"""Visit.early_reason: why a visit was recorded ahead of its window (attended before it
opened, or missed before it closed), confirmed by the person recording it. A completed
visit attended before its window opened must have one (check constraint); visits recorded
so before this migration get a reason saying so, which keeps them visible in the audit."""

from django.db import migrations, models
from django.db.models import F, Q

EARLIER = "Recorded before a reason was required for attendance ahead of the window."


def backfill(apps, schema_editor):
    Visit = apps.get_model("participants", "Visit")
    Visit.objects.filter(
        outcome="completed", attended_on__lt=F("window_start"), early_reason=""
    ).update(early_reason=EARLIER)


class Migration(migrations.Migration):
    dependencies = [("participants", "0007_participant_search_name")]

    operations = [
        migrations.AddField(
            model_name="historicalvisit",
            name="early_reason",
            field=models.CharField(
                blank=True, max_length=300, verbose_name="reason for recording ahead of the window"
            ),
        ),
        migrations.AddField(
            model_name="visit",
            name="early_reason",
            field=models.CharField(
                blank=True, max_length=300, verbose_name="reason for recording ahead of the window"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="visit",
            constraint=models.CheckConstraint(
                condition=Q(
                    Q(("outcome", "completed"), _negated=True),
                    ("attended_on__gte", F("window_start")),
                    Q(("early_reason", ""), _negated=True),
                    _connector="OR",
                ),
                name="visit_early_attendance_has_reason",
            ),
        ),
    ]
