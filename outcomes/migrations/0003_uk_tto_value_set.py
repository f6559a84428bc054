"""Load the default EQ-5D-3L value set: UK time trade-off, Dolan 1997 (N3 model)."""

from django.db import migrations

# The published coefficients, written out here so this migration never changes with the code.
EQ5D_UK_TTO_DOLAN_1997 = {
    "constant": 0.081,
    "n3": 0.269,
    "decrements": {
        "MO": {"2": 0.069, "3": 0.314},
        "SC": {"2": 0.104, "3": 0.214},
        "UA": {"2": 0.036, "3": 0.094},
        "PD": {"2": 0.123, "3": 0.386},
        "AD": {"2": 0.071, "3": 0.236},
    },
}

CITATION = (
    "Dolan P. Modeling valuations for EuroQol health states. Med Care 1997;35(11):1095-1108. "
    "UK general population, time trade-off, N3 model."
)


def load(apps, schema_editor):
    apps.get_model("outcomes", "EQ5DValueSet").objects.update_or_create(
        code="uk-tto-dolan-1997",
        defaults={
            "name": "UK TTO (Dolan 1997)",
            "citation": CITATION,
            "coefficients": EQ5D_UK_TTO_DOLAN_1997,
        },
    )


def unload(apps, schema_editor):
    apps.get_model("outcomes", "EQ5DValueSet").objects.filter(code="uk-tto-dolan-1997").delete()


class Migration(migrations.Migration):
    dependencies = [("outcomes", "0002_instruments")]
    operations = [migrations.RunPython(load, unload)]
