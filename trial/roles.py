"""Roles are Django groups; this module names them and answers "may this user ...?".

Sites come from the user's Membership in the trial; no sites listed means all sites.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

CLINICIAN = "Clinician"
COORDINATOR = "Coordinator"
STATISTICIAN = "Statistician"
TRIAL_MANAGER = "Trial manager"
ALL_ROLES = (CLINICIAN, COORDINATOR, STATISTICIAN, TRIAL_MANAGER)


def role_names(user: User | AnonymousUser) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached |= {TRIAL_MANAGER}
        user._role_names = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(role_names(user) & set(roles))


def is_trial_manager(user) -> bool:
    return has_role(user, TRIAL_MANAGER)


def can_enroll(user) -> bool:
    """Screen, consent, record baseline and randomize."""
    return has_role(user, CLINICIAN, TRIAL_MANAGER)


def can_view_participants(user) -> bool:
    return has_role(user, CLINICIAN, COORDINATOR, TRIAL_MANAGER)


def can_view_balance(user) -> bool:
    """Arm totals and balance per factor level. Never clinicians: knowing the running
    balance lets whoever enrolls predict the next allocation (allocation concealment)."""
    return has_role(user, STATISTICIAN, TRIAL_MANAGER)


def can_follow_up(user) -> bool:
    """Worklist, contact attempts, attendance and status changes (own sites)."""
    return has_role(user, COORDINATOR, CLINICIAN, TRIAL_MANAGER)


def can_view_followup_summary(user) -> bool:
    """Counts of visits by status; no names or phone numbers."""
    return has_role(user, COORDINATOR, STATISTICIAN, TRIAL_MANAGER)


def trials_for(user) -> QuerySet:
    from trial.models import Trial

    if is_trial_manager(user):
        return Trial.objects.all()
    return Trial.objects.filter(memberships__user=user)


def membership_site_ids(user, trial) -> frozenset[int] | None:
    """The sites listed on the user's membership of `trial`: None without a membership, an
    empty set for "all sites". One query per user object (that is, per request), however
    many times a page asks: every participant page checks membership and site."""
    from trial.models import Membership

    cache = user.__dict__.setdefault("_site_ids_by_trial", {})
    if trial.pk not in cache:
        rows = Membership.objects.filter(user=user, trial=trial).values_list("sites", flat=True)
        rows = list(rows)  # one row per listed site, or one None: the LEFT JOIN's empty side
        cache[trial.pk] = None if not rows else frozenset(r for r in rows if r is not None)
    return cache[trial.pk]


def belongs_to(user, trial) -> bool:
    """Does the user take part in `trial` (trial managers take part in every trial)?"""
    return is_trial_manager(user) or membership_site_ids(user, trial) is not None


def works_at(user, trial, site_id: int) -> bool:
    """May the user see and act on records of `site_id`, a site of `trial`? The same rule
    as sites_for, answered without a query once membership_site_ids is known."""
    if is_trial_manager(user):
        return True
    site_ids = membership_site_ids(user, trial)
    return site_ids is not None and (not site_ids or site_id in site_ids)


def sites_for(user, trial) -> QuerySet:
    """The sites of `trial` this user works at (all of them for trial managers)."""
    from trial.models import Site

    all_sites = Site.objects.filter(trial=trial)
    if is_trial_manager(user):
        return all_sites
    site_ids = membership_site_ids(user, trial)
    if site_ids is None:
        return Site.objects.none()
    return all_sites.filter(pk__in=site_ids) if site_ids else all_sites


def ensure_role_groups(**kwargs) -> None:
    """Create the role groups and the trial manager's admin permissions (idempotent).

    Connected to post_migrate, which also fires after a test-database flush, so the groups
    always exist; permissions themselves are created by django.contrib.auth just before.
    """
    from django.contrib.auth.models import Group, Permission
    from django.db.models import Q

    for name in ALL_ROLES:
        Group.objects.get_or_create(name=name)
    manager = Group.objects.get(name=TRIAL_MANAGER)
    manager.permissions.add(
        *Permission.objects.filter(
            Q(content_type__app_label="trial")
            | Q(content_type__app_label="participants", codename__startswith="view_")
            | Q(content_type__app_label="outcomes", codename__startswith="view_")
            | Q(
                content_type__app_label="outcomes",
                content_type__model__in=[
                    "instrument",
                    "eq5dvalueset",
                    "smsschedule",
                    "smslanguage",
                    "smsquestion",
                    "smsquestiontext",
                ],
            )
            | Q(
                content_type__app_label="auth",
                codename__in=["view_user", "add_user", "change_user", "view_group"],
            )
        )
    )
