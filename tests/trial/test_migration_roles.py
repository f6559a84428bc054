"""Migration 0006: the global role groups become roles on each membership, so the demo and
existing installs keep working, and the groups (with the trial manager's rights over
accounts) are gone."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("trial", "0005_config_version")]
AFTER = [("trial", "0006_membership_roles")]


def _migrate(targets=None):
    """Migrate to `targets` (default: every app's latest) and return that state's models,
    with the signals `manage.py migrate` sends around the run (on SQLite the same-trial
    triggers are dropped before it and made again after it: trial.same_trial.connect)."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    plan = executor.migration_plan(targets)
    emit_pre_migrate_signal(0, False, connection.alias, plan=plan)
    state = executor.migrate(targets, plan=plan)
    emit_post_migrate_signal(0, False, connection.alias, apps=state.apps, plan=plan)
    return executor.loader.project_state(targets).apps


def _old_install() -> None:
    """The schema before 0006, with data as the group-based roles left it."""
    apps = _migrate(BEFORE)
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("auth", "User")
    Trial = apps.get_model("trial", "Trial")
    Site = apps.get_model("trial", "Site")
    Membership = apps.get_model("trial", "Membership")
    Permission = apps.get_model("auth", "Permission")

    groups = {name: Group.objects.get_or_create(name=name)[0] for name in
              ("Clinician", "Coordinator", "Statistician", "Trial manager")}  # fmt: skip
    groups["Trial manager"].permissions.add(*Permission.objects.filter(codename="change_user"))
    mod = Trial.objects.create(code="MOD", name="Modic", target_sample_size=10)
    knee = Trial.objects.create(code="KNEE", name="Knee", target_sample_size=10)
    site = Site.objects.create(trial=mod, code="01", name="One")

    def user(name, *roles, trials=()):
        u = User.objects.create(username=name)
        u.groups.add(*(groups[r] for r in roles))
        for trial in trials:
            m = Membership.objects.create(user=u, trial=trial)
            if name == "clin":
                m.sites.add(site)
        return u

    user("clin", "Clinician", trials=[mod])
    user("two-hats", "Coordinator", "Statistician", trials=[mod, knee])
    user("mgr", "Trial manager", trials=[mod])
    user("roaming-mgr", "Trial manager")  # managed every trial without a membership
    user("nobody")


@pytest.fixture(scope="module")
def migrated_once(django_db_setup, django_db_blocker):
    """The old install migrated through 0006, once for the module: going back to 0005 and
    forward again takes about a minute each way, and the tests only read the result (the
    reversal test puts it back). Afterwards the latest schema, emptied as a transactional
    test leaves it (flush), for the tests that follow."""
    with django_db_blocker.unblock():
        _old_install()
        apps = _migrate(AFTER)
    try:
        yield apps
    finally:
        with django_db_blocker.unblock():
            _migrate()
            call_command("flush", verbosity=0, interactive=False)


@pytest.fixture
def migrated(migrated_once, django_db_blocker):
    with django_db_blocker.unblock():
        yield migrated_once


def _roles(apps, username):
    Membership = apps.get_model("trial", "Membership")
    fields = ("clinician", "coordinator", "statistician", "trial_manager")
    return {
        m.trial.code: {f for f in fields if getattr(m, f)}
        for m in Membership.objects.filter(user__username=username).select_related("trial")
    }


def test_group_roles_move_onto_every_membership_the_user_has(migrated):
    apps = migrated
    assert _roles(apps, "clin") == {"MOD": {"clinician"}}
    assert _roles(apps, "two-hats") == {
        "MOD": {"coordinator", "statistician"},
        "KNEE": {"coordinator", "statistician"},
    }
    # A trial manager managed every trial: still so, with a membership made where missing.
    assert _roles(apps, "mgr") == {"MOD": {"trial_manager"}, "KNEE": {"trial_manager"}}
    assert _roles(apps, "nobody") == {}
    # Sites are kept.
    Membership = apps.get_model("trial", "Membership")
    clin = Membership.objects.get(user__username="clin")
    assert list(clin.sites.values_list("code", flat=True)) == ["01"]


def test_a_manager_without_a_membership_keeps_managing_every_trial(migrated):
    assert _roles(migrated, "roaming-mgr") == {"MOD": {"trial_manager"}, "KNEE": {"trial_manager"}}


def test_the_role_groups_and_their_rights_over_accounts_are_gone(migrated):
    Group = migrated.get_model("auth", "Group")
    User = migrated.get_model("auth", "User")
    assert not Group.objects.exists()
    assert not User.user_permissions.through.objects.exists()
    assert not User.groups.through.objects.exists()


def test_each_moved_membership_has_a_history_row_saying_so(migrated):
    History = migrated.get_model("trial", "HistoricalMembership")
    SitesHistory = migrated.get_model("trial", "HistoricalMembership_sites")
    rows = History.objects.filter(history_change_reason__contains="migration 0006")
    assert rows.count() == 7  # clin 1, two-hats 2, mgr 2, roaming-mgr 2
    clin = rows.get(user__username="clin")
    assert clin.clinician and clin.history_type == "~"
    assert SitesHistory.objects.filter(history=clin).count() == 1
    assert set(
        rows.filter(user__username="roaming-mgr").values_list("history_type", flat=True)
    ) == {"+"}


def test_the_migration_reverses_to_the_groups(migrated):
    apps = _migrate(BEFORE)
    Group = apps.get_model("auth", "Group")
    members = {
        g.name: sorted(g.user_set.values_list("username", flat=True)) for g in Group.objects.all()
    }
    assert members == {
        "Clinician": ["clin"],
        "Coordinator": ["two-hats"],
        "Statistician": ["two-hats"],
        "Trial manager": ["mgr", "roaming-mgr"],
    }
    assert _migrate(AFTER).get_model("auth", "Group").objects.count() == 0  # as the others read it
