"""Reversible status changes: StatusChange.reverses, and Visit.closed_by (the change that
made a visit "not required" or "missed"), filled for visits closed before this migration:
the participant's first such change recorded at or after the visit was closed (the service
closed the visits, then wrote the change, in one transaction)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

LOST_REASON = "Participant lost to follow-up"  # what the service wrote on the visits


def link_closed_visits(apps, schema_editor):
    Visit = apps.get_model("participants", "Visit")
    StatusChange = apps.get_model("participants", "StatusChange")
    changes = {}
    for change in (
        StatusChange.objects.filter(to_status__in=["deceased", "withdrawn", "lost"])
        .order_by("participant_id", "at", "pk")
        .values("pk", "participant_id", "to_status", "followup_allowed", "at")
    ):
        changes.setdefault(change["participant_id"], []).append(change)
    closed = Visit.objects.filter(closed_by__isnull=True, recorded_at__isnull=False).filter(
        models.Q(outcome="not_required") | models.Q(outcome="missed", missed_reason=LOST_REASON)
    )
    for visit in closed.values("pk", "participant_id", "outcome", "recorded_at").iterator():
        if visit["outcome"] == "not_required":
            closes = {"deceased", "withdrawn"}
        else:
            closes = {"lost"}
        match = next(
            (
                c
                for c in changes.get(visit["participant_id"], [])
                if c["to_status"] in closes
                and (c["to_status"] != "withdrawn" or c["followup_allowed"] is False)
                and c["at"] >= visit["recorded_at"]
            ),
            None,
        )
        if match is not None:
            Visit.objects.filter(pk=visit["pk"]).update(closed_by_id=match["pk"])


class Migration(migrations.Migration):

    dependencies = [
        ('participants', '0010_screening_form_token_and_void'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='statuschange',
            name='status_change_changes',
        ),
        migrations.AddField(
            model_name='historicalvisit',
            name='closed_by',
            field=models.ForeignKey(blank=True, db_constraint=False, editable=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='participants.statuschange'),
        ),
        migrations.AddField(
            model_name='statuschange',
            name='reverses',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='reversal', to='participants.statuschange'),
        ),
        migrations.AddField(
            model_name='visit',
            name='closed_by',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='closed_visits', to='participants.statuschange'),
        ),
        migrations.RunPython(link_closed_visits, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='statuschange',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('from_status', models.F('to_status')), _negated=True), models.Q(('followup_allowed', False), ('to_status', 'withdrawn')), models.Q(('reverses__isnull', False), ('to_status', 'withdrawn')), _connector='OR'), name='status_change_changes'),
        ),
    ]
