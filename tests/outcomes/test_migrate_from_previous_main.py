"""Outcomes migration 0011 and the nested apps' 0001_initial: a database built before
outcomes became the nested apps instruments, sms and results migrates forward (and back)
without losing a row, a foreign key, a permission or an admin log entry."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor

from tests.fuzz_world import build_world

# The outcomes app's leaf on main before the split; the nested apps did not exist.
OUTCOMES_BEFORE = ("outcomes", "0010_free_text_limits")
NEW_APPS = ("instruments", "sms", "results")
# Every table the moved models (and their histories) own: unchanged names.
MOVED_TABLES = (
    "outcomes_eq5dvalueset",
    "outcomes_historicaleq5dvalueset",
    "outcomes_instrument",
    "outcomes_instrument_visits",
    "outcomes_historicalinstrument",
    "outcomes_historicalinstrument_visits",
    "outcomes_outcomeentry",
    "outcomes_historicaloutcomeentry",
    "outcomes_outboundmessage",
    "outcomes_inboundmessage",
    "outcomes_smsschedule",
    "outcomes_historicalsmsschedule",
    "outcomes_smslanguage",
    "outcomes_historicalsmslanguage",
    "outcomes_smsquestion",
    "outcomes_historicalsmsquestion",
    "outcomes_smsquestiontext",
    "outcomes_historicalsmsquestiontext",
    "outcomes_smsweek",
    "outcomes_smsanswer",
    "outcomes_smsquestionweektotal",
    "outcomes_smsparticipanttotal",
    "outcomes_smsweektotal",
    "outcomes_exportjob",
)


def _migrate(*, before: bool = False):
    """Migrate every app to its latest migration, or with `before` to the previous main's
    state (outcomes at 0010, the nested apps unapplied), with the signals `manage.py
    migrate` sends around the run; return that state's models."""
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    if before:
        state_nodes = [n for n in leaves if n[0] not in ("outcomes", *NEW_APPS)]
        state_nodes.append(OUTCOMES_BEFORE)
        targets = [*state_nodes, *((label, None) for label in NEW_APPS)]
    else:
        state_nodes = targets = leaves
    plan = executor.migration_plan(targets)
    emit_pre_migrate_signal(0, False, connection.alias, plan=plan)
    state = executor.migrate(targets, plan=plan)
    emit_post_migrate_signal(0, False, connection.alias, apps=state.apps, plan=plan)
    ContentType.objects.clear_cache()
    return executor.loader.project_state(state_nodes).apps


def _rows() -> dict[str, list[tuple]]:
    """Every row of every moved table, sorted by all its values: a history table's first
    column (the recorded row's id) repeats, and PostgreSQL returns rows that tie on an ORDER
    BY in whatever order its storage holds them, which a migration rewriting the table changes."""
    with connection.cursor() as cursor:
        rows = {}
        for table in MOVED_TABLES:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows[table] = sorted(tuple(map(str, row)) for row in cursor.fetchall())
    return rows


def _content_type_ids(labels) -> dict[str, int]:
    """The moved models' content type ids under `labels`, by model name."""
    return dict(ContentType.objects.filter(app_label__in=labels).values_list("model", "id"))


@pytest.fixture
def previous_main(modic, site1, site2, clinician, clinician_site2, coordinator, statistician,
                  manager, transactional_db):  # fmt: skip
    """A database at main's migration state before the split, with a row in every moved
    table, a group holding a permission on a moved model, a user holding one directly and
    an admin log entry about a moved model's row."""
    users = {
        "clinician": clinician,
        "clinician_site2": clinician_site2,
        "coordinator": coordinator,
        "statistician": statistician,
        "manager": manager,
    }
    build_world(modic, site1=site1, site2=site2, users=users)
    old = _migrate(before=True)
    OldContentType = old.get_model("contenttypes", "ContentType")
    OldPermission = old.get_model("auth", "Permission")
    Group = old.get_model("auth", "Group")
    User = old.get_model("auth", "User")
    OldLogEntry = old.get_model("admin", "LogEntry")

    week_type = OldContentType.objects.get(app_label="outcomes", model="smsweek")
    group = Group.objects.create(name="SMS editors")
    group.permissions.add(
        OldPermission.objects.get(content_type=week_type, codename="change_smsweek")
    )
    user = User.objects.get(pk=statistician.pk)
    user.groups.add(group)
    user.user_permissions.add(
        OldPermission.objects.get(content_type__app_label="outcomes", codename="change_exportjob")
    )
    instrument = modic.instruments.first()
    OldLogEntry.objects.create(
        user_id=manager.pk,
        content_type=OldContentType.objects.get(app_label="outcomes", model="instrument"),
        object_id=str(instrument.pk),
        object_repr="Pain",
        action_flag=2,
    )
    yield {
        "statistician": statistician,
        "instrument": instrument,
        "rows": _rows(),
        "content_types": _content_type_ids(["outcomes"]),
    }
    _migrate()  # back to the latest schema for the tests that follow


# Four migrate runs over every app's history (back, forward, back, forward) and the world's
# build: minutes on a loaded machine, past the suite's default timeout.
@pytest.mark.timeout(1500)
def test_a_database_of_the_previous_main_migrates_forward_and_back_keeping_every_row(
    previous_main,
):
    empty = [table for table, rows in previous_main["rows"].items() if not rows]
    assert not empty, f"the world leaves these tables empty: {empty}"
    assert len(previous_main["content_types"]) == 23

    new = _migrate()

    assert _rows() == previous_main["rows"]
    # Each moved model's foreign keys reach their rows through the new apps' models.
    for label in NEW_APPS:
        for model in new.get_app_config(label).get_models():
            if model.__name__.startswith("Historical"):
                continue  # history rows may name rows deleted since; no constraint there
            for field in model._meta.concrete_fields:
                if isinstance(field, models.ForeignKey):
                    linked = model.objects.exclude(**{field.attname: None})
                    targets = field.related_model.objects.values("pk")
                    missing = linked.exclude(**{f"{field.attname}__in": targets})
                    assert not missing.exists(), (model, field.name)
    # The content types moved: the same rows (ids), so no second one for any model.
    assert _content_type_ids(NEW_APPS) == previous_main["content_types"]
    assert not ContentType.objects.filter(app_label="outcomes").exists()
    # Permissions held by a group and directly, and the admin's log, follow the models.
    User = type(previous_main["statistician"])
    statistician = User.objects.get(pk=previous_main["statistician"].pk)
    assert statistician.has_perm("sms.change_smsweek")
    assert statistician.has_perm("results.change_exportjob")
    assert not Permission.objects.filter(content_type__app_label="outcomes").exists()
    entry = LogEntry.objects.get(object_repr="Pain")
    assert entry.get_edited_object() == previous_main["instrument"]

    # And back again.
    _migrate(before=True)

    assert _rows() == previous_main["rows"]
    assert _content_type_ids(["outcomes"]) == previous_main["content_types"]
    group_perms = Permission.objects.filter(group__name="SMS editors")
    assert list(group_perms.values_list("content_type__app_label", "codename")) == [
        ("outcomes", "change_smsweek")
    ]
    assert LogEntry.objects.get(object_repr="Pain").content_type.app_label == "outcomes"

    # And forward once more: content types `migrate` created under the new labels after
    # going back (Django's post_migrate sees the state of the last migration it unapplied)
    # give way to the ones every grant points at.
    _migrate()

    assert _rows() == previous_main["rows"]
    assert _content_type_ids(NEW_APPS) == previous_main["content_types"]
    assert User.objects.get(pk=statistician.pk).has_perm("sms.change_smsweek")
