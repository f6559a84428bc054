"""Participant.search_name: the name case-folded by Python (participants.search), so the
participant search folds non-ASCII letters the same way on SQLite and PostgreSQL. Existing
rows are filled here, in primary-key batches."""

import unicodedata

from django.db import migrations

import participants.models

BATCH = 1000


def _fold(text):
    # participants.search.fold as of this migration (repeated: a migration must not
    # depend on code that may change after it).
    once = unicodedata.normalize("NFKC", text or "").casefold()
    return unicodedata.normalize("NFKC", once)


def fill(apps, schema_editor):
    Participant = apps.get_model("participants", "Participant")
    after = 0
    while True:
        rows = list(
            Participant.objects.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", "full_name")[:BATCH]
        )
        if not rows:
            return
        after = rows[-1][0]
        for pk, name in rows:
            folded = _fold(name)
            if folded:
                Participant.objects.filter(pk=pk).update(search_name=folded)


class Migration(migrations.Migration):
    dependencies = [("participants", "0006_allocation_slots")]

    operations = [
        migrations.AddField(
            model_name="participant",
            name="search_name",
            field=participants.models.FoldedCopyField(source="full_name"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
