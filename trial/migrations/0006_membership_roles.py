"""Roles per trial: the four role flags on Membership, and today's roles moved onto them.

Until now a role was a global Django group (Clinician, Coordinator, Statistician, Trial
manager), so a role held for one trial held in every trial, and the trial manager group
carried the admin permissions to add and change users. Each member of a role group now
holds that role on every membership they have. A trial manager managed every trial, with a
membership or without: they get a membership in every trial they lacked one in, so nobody
loses a trial they managed and no trial is left without a manager (its managers narrow
that on the team page). Each membership changed gets one history row saying so. The four groups are then
deleted, with their permissions.

Reversible: going back recreates the groups and puts each user in the groups of the roles
they hold in any trial (the earlier code gives the groups their permissions again after its
migrate); memberships added here stay.
"""

from collections import defaultdict

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

# The role groups' names and the field holding each role (a frozen copy of trial.roles).
ROLE_FIELDS = {
    "Clinician": "clinician",
    "Coordinator": "coordinator",
    "Statistician": "statistician",
    "Trial manager": "trial_manager",
}
REASON = "Roles moved from the global role groups (migration 0006)"


def groups_to_memberships(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Membership = apps.get_model("trial", "Membership")
    History = apps.get_model("trial", "HistoricalMembership")
    SitesHistory = apps.get_model("trial", "HistoricalMembership_sites")
    Trial = apps.get_model("trial", "Trial")

    held = defaultdict(set)  # user id -> role fields
    in_groups = User.groups.through.objects.filter(group__name__in=ROLE_FIELDS)
    for user_id, name in in_groups.values_list("user_id", "group__name"):
        held[user_id].add(ROLE_FIELDS[name])

    created = set()
    has = set(Membership.objects.values_list("user_id", "trial_id"))
    trial_ids = list(Trial.objects.values_list("pk", flat=True))
    for user_id in sorted(held):
        if "trial_manager" not in held[user_id]:
            continue
        for trial_id in trial_ids:
            if (user_id, trial_id) not in has:
                created.add(Membership.objects.create(user_id=user_id, trial_id=trial_id).pk)

    now = timezone.now()
    for membership in Membership.objects.filter(user_id__in=held).order_by("pk"):
        for field in held[membership.user_id]:
            setattr(membership, field, True)
        membership.save(update_fields=sorted(held[membership.user_id]))
        row = History.objects.create(
            id=membership.pk,
            user_id=membership.user_id,
            trial_id=membership.trial_id,
            **{field: getattr(membership, field) for field in ROLE_FIELDS.values()},
            history_date=now,
            history_type="+" if membership.pk in created else "~",
            history_user=None,
            history_change_reason=REASON,
        )
        through = Membership.sites.through.objects.filter(membership_id=membership.pk)
        SitesHistory.objects.bulk_create(
            SitesHistory(id=pk, history=row, membership_id=membership.pk, site_id=site_id)
            for pk, site_id in through.values_list("pk", "site_id")
        )

    # The groups go, and with them their permissions (the trial manager's included adding
    # and changing users: any manager could make any account a superuser).
    Group.objects.filter(name__in=ROLE_FIELDS).delete()


def memberships_to_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Membership = apps.get_model("trial", "Membership")
    for name, field in ROLE_FIELDS.items():
        group, _ = Group.objects.get_or_create(name=name)
        users = Membership.objects.filter(**{field: True}).values_list("user_id", flat=True)
        group.user_set.add(*set(users))


def role_field(verbose_name, help_text):
    return models.BooleanField(default=False, help_text=help_text, verbose_name=verbose_name)


FIELDS = (
    ("clinician", "clinician",
     "Screens, consents, records baseline and randomizes at the listed sites."),
    ("coordinator", "coordinator",
     "Follow-up at the listed sites: worklist, outcomes, weekly SMS."),
    ("statistician", "statistician",
     "Results, balance and follow-up counts (blinded until unblinding)."),
    ("trial_manager", "trial manager",
     "Everything in this trial: its configuration, its team and unblinding."),
)


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("trial", "0005_config_version"),
    ]

    operations = [
        *(
            migrations.AddField(
                model_name=model, name=name, field=role_field(verbose_name, help_text)
            )
            for model in ("historicalmembership", "membership")
            for name, verbose_name, help_text in FIELDS
        ),
        migrations.RunPython(groups_to_memberships, memberships_to_groups),
    ]
