"""The admin's model permissions that come from trial roles (an authentication backend).

A user who manages at least one trial gets the permissions the admin's pages for trial
configuration and for reading clinical records need; the ModelAdmins then list and change
only the objects of the trials that user manages (trial.admin_scope), so managing KNEE lets
nobody near MOD. Account administration (users, passwords, the superuser and staff flags,
groups) is never among them: it is for superusers only (trial.admin).

Statisticians get no model permission: the admin opens for them for the results pages only
(trial.admin_site). Superusers keep every permission through Django's ModelBackend.
"""

from __future__ import annotations

import functools

from django.apps import apps
from django.contrib.auth.backends import BaseBackend

from trial import roles

ALL = ("add", "change", "delete", "view")
VIEW = ("view",)
# The outcomes models that are a trial's configuration (each belongs to one trial). EQ-5D
# value sets are not among them: they are shared by every trial, and changing one would
# change other trials' scores, so only superusers change them.
OUTCOMES_CONFIGURATION = {
    "instrument",
    "smsschedule",
    "smslanguage",
    "smsquestion",
    "smsquestiontext",
}


def _actions(app_label: str, model_name: str) -> tuple[str, ...]:
    """What a trial manager may do with a model in the admin."""
    if app_label == "trial":
        if model_name == "membership":
            return ()  # on the trial's team page only, where its rules are checked
        return VIEW if model_name == "blindinglog" else ALL
    if app_label in ("instruments", "sms") and model_name in OUTCOMES_CONFIGURATION:
        return ALL
    return VIEW  # clinical records and SMS traffic: written by services only


@functools.cache
def manager_permissions() -> frozenset[str]:
    """The permissions ("app_label.codename") a trial manager holds in the admin."""
    perms = set()
    for app_label in ("trial", "participants", "instruments", "sms", "results"):
        for model in apps.get_app_config(app_label).get_models():
            if getattr(model, "instance_type", None) is not None:
                continue  # simple-history's historical models: shown by their model's admin
            name = model._meta.model_name
            perms.update(f"{app_label}.{action}_{name}" for action in _actions(app_label, name))
    return frozenset(perms)


class TrialRoleBackend(BaseBackend):
    """Model permissions from trial roles (authenticates nobody: ModelBackend does that)."""

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if obj is not None or not user_obj.is_active or user_obj.is_anonymous:
            return set()
        if not roles.is_trial_manager(user_obj):
            return set()
        return set(manager_permissions())

    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        return perm in self.get_all_permissions(user_obj, obj)

    def has_module_perms(self, user_obj, app_label: str) -> bool:
        return any(p.startswith(f"{app_label}.") for p in self.get_all_permissions(user_obj))
