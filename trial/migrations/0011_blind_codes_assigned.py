"""Existing trials get their arms' neutral codes here, instead of on the first blinded read
(trial.blinding: codes are assigned when arms are created or change, never while a page is
read). Codes already assigned are kept — blinded pages or exports may have shown them — and
missing ones get unused letters at random, as trial.blind_codes decides for a trial whose
arms are frozen (repeated here, so the migration does what it did when it was written)."""

import random

from django.db import migrations

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def decide_blind_codes(arm_ids, current, rng):
    """Keep the codes stored; give the arms without one unused letters in random order."""
    ids = sorted(arm_ids)
    kept = {pk: current[pk] for pk in ids if current.get(pk)}
    missing = [pk for pk in ids if pk not in kept]
    unused = [c for c in LETTERS if c not in set(kept.values())][: len(missing)]
    rng.shuffle(unused)
    return {**kept, **dict(zip(missing, unused, strict=True))}


def assign_missing_blind_codes(apps, schema_editor):
    Arm = apps.get_model("trial", "Arm")
    rng = random.SystemRandom()
    trial_ids = Arm.objects.filter(blind_code="").values_list("trial_id", flat=True).distinct()
    for trial_id in sorted(set(trial_ids)):
        current = dict(Arm.objects.filter(trial_id=trial_id).values_list("pk", "blind_code"))
        decided = decide_blind_codes(list(current), current, rng)
        for pk, code in decided.items():
            if current[pk] != code:
                Arm.objects.filter(pk=pk).update(blind_code=code)


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0010_free_text_limits"),
    ]

    operations = [
        # Backwards: the codes stay; the previous code would have assigned the same way.
        migrations.RunPython(assign_missing_blind_codes, migrations.RunPython.noop),
    ]
