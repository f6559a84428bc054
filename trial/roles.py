"""Who may do what in which trial.

Roles are held per trial, on the user's Membership of it: a user may hold several roles in
one trial and other roles, or none, in another (as REDCap keeps user rights per project).
The sites listed on the membership restrict what the user sees and does there (none listed:
every site). Superusers hold the trial manager's role in every trial.

Every check of access to a trial's data passes that trial. Asked without a trial, a helper
answers "in at least one trial": that is for deciding which navigation to offer, never for
letting someone at a trial's records.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

CLINICIAN = "Clinician"
COORDINATOR = "Coordinator"
STATISTICIAN = "Statistician"
TRIAL_MANAGER = "Trial manager"
ALL_ROLES = (CLINICIAN, COORDINATOR, STATISTICIAN, TRIAL_MANAGER)

# The Membership field that holds each role.
ROLE_FIELDS = {
    CLINICIAN: "clinician",
    COORDINATOR: "coordinator",
    STATISTICIAN: "statistician",
    TRIAL_MANAGER: "trial_manager",
}
ROLE_LABELS = {
    CLINICIAN: _("Clinician"),
    COORDINATOR: _("Coordinator"),
    STATISTICIAN: _("Statistician"),
    TRIAL_MANAGER: _("Trial manager"),
}

# Roles whose work is in the admin: trial configuration (managers) and the results pages
# (statisticians). The admin site opens for them without the account's staff flag.
ADMIN_ROLES = (STATISTICIAN, TRIAL_MANAGER)


@dataclass(frozen=True)
class Place:
    """A user's roles and listed sites in one trial."""

    code: str
    roles: frozenset[str]
    site_ids: frozenset[int]  # empty: every site


def roles_of(membership) -> frozenset[str]:
    """The role names a Membership (or a historical row of one) holds."""
    return frozenset(role for role, field in ROLE_FIELDS.items() if getattr(membership, field))


def places(user: User | AnonymousUser) -> dict[int, Place]:
    """{trial id: the user's place there}, for every trial the user has a membership of.

    One query per user object, that is per request, however many checks a page makes.
    """
    if not user.is_authenticated:
        return {}
    cached = user.__dict__.get("_trial_places")
    if cached is None:
        from trial.models import Membership

        fields = list(ROLE_FIELDS.values())
        found: dict[int, tuple[str, frozenset[str], set[int]]] = {}
        rows = Membership.objects.filter(user=user).values_list(
            "trial_id", "trial__code", "sites", *fields
        )
        for trial_id, code, site_id, *flags in rows:  # one row per listed site, or one None
            held = frozenset(role for role, on in zip(ROLE_FIELDS, flags, strict=True) if on)
            entry = found.setdefault(trial_id, (code, held, set()))
            if site_id is not None:
                entry[2].add(site_id)
        cached = {
            trial_id: Place(code, held, frozenset(sites))
            for trial_id, (code, held, sites) in found.items()
        }
        user.__dict__["_trial_places"] = cached
    return cached


def holders(trial, role: str) -> QuerySet[User]:
    """The active users who hold `role` in `trial` (for whom to send a trial's mail)."""
    return User.objects.filter(
        is_active=True,
        trial_memberships__trial=trial,
        **{f"trial_memberships__{ROLE_FIELDS[role]}": True},
    )


def forget(user) -> None:
    """Drop what this user object remembers of its roles (after changing them)."""
    user.__dict__.pop("_trial_places", None)


def _trial_id(trial) -> int:
    return trial if isinstance(trial, int) else trial.pk


def role_names(user: User | AnonymousUser, trial=None) -> frozenset[str]:
    """The user's roles in `trial` (a Trial or its id); without one, in any trial."""
    if not user.is_authenticated:
        return frozenset()
    held = places(user)
    if trial is None:
        names = frozenset().union(*(place.roles for place in held.values()))
    else:
        place = held.get(_trial_id(trial))
        names = place.roles if place else frozenset()
    if user.is_superuser:
        names |= {TRIAL_MANAGER}
    return names


def role_labels(user, trial) -> list[str]:
    """The labels of the user's roles in `trial`, for pages that list them."""
    held = role_names(user, trial)
    return [ROLE_LABELS[role] for role in ALL_ROLES if role in held]


def has_role(user, *roles: str, trial=None) -> bool:
    return bool(role_names(user, trial) & set(roles))


def is_trial_manager(user, trial=None) -> bool:
    return has_role(user, TRIAL_MANAGER, trial=trial)


def can_enroll(user, trial=None) -> bool:
    """Screen, consent, record baseline and randomize."""
    return has_role(user, CLINICIAN, TRIAL_MANAGER, trial=trial)


def can_view_participants(user, trial=None) -> bool:
    return has_role(user, CLINICIAN, COORDINATOR, TRIAL_MANAGER, trial=trial)


def can_view_balance(user, trial=None) -> bool:
    """Arm totals and balance per factor level. Never clinicians: knowing the running
    balance lets whoever enrolls predict the next allocation (allocation concealment)."""
    return has_role(user, STATISTICIAN, TRIAL_MANAGER, trial=trial)


def can_follow_up(user, trial=None) -> bool:
    """Worklist, contact attempts, attendance and status changes (own sites)."""
    return has_role(user, COORDINATOR, CLINICIAN, TRIAL_MANAGER, trial=trial)


def can_view_followup_summary(user, trial=None) -> bool:
    """Counts of visits by status; no names or phone numbers."""
    return has_role(user, COORDINATOR, STATISTICIAN, TRIAL_MANAGER, trial=trial)


def may_use_admin(user) -> bool:
    """May open the admin site: account staff (set by a superuser), or whoever holds a role
    whose work is there in some trial. What each sees there is decided per trial."""
    return bool(
        user.is_authenticated and user.is_active and (user.is_staff or has_role(user, *ADMIN_ROLES))
    )


def trials_for(user, allowed=None) -> QuerySet:
    """The trials the user holds a role in (every trial for superusers); with `allowed`
    (one of the helpers above), only those where `allowed(user, trial)` is true."""
    from trial.models import Trial

    if user.is_superuser:
        ids = list(Trial.objects.values_list("pk", flat=True))
    else:
        ids = [trial_id for trial_id, place in places(user).items() if place.roles]
    if allowed is not None:
        ids = [trial_id for trial_id in ids if allowed(user, trial_id)]
    return Trial.objects.filter(pk__in=ids)


def managed_trial_ids(user) -> frozenset[int]:
    """The ids of the trials this user manages (not used for superusers, who manage all)."""
    return frozenset(
        trial_id for trial_id, place in places(user).items() if TRIAL_MANAGER in place.roles
    )


def trial_id_for_code(user, code: str) -> int | None:
    """The id of the trial with this code if the user holds a role in it (any trial for
    superusers), else None."""
    for trial_id, place in places(user).items():
        if place.code == code and place.roles:
            return trial_id
    if user.is_superuser:
        from trial.models import Trial

        return Trial.objects.filter(code=code).values_list("pk", flat=True).first()
    return None


def membership_site_ids(user, trial) -> frozenset[int] | None:
    """The sites listed on the user's membership of `trial`: None without a role there, an
    empty set for "all sites"."""
    place = places(user).get(_trial_id(trial))
    if place is None or not place.roles:
        return None
    return place.site_ids


def belongs_to(user, trial) -> bool:
    """Does the user hold a role in `trial` (superusers hold one in every trial)?"""
    return bool(role_names(user, trial))


def works_at(user, trial, site_id: int) -> bool:
    """May the user see and act on records of `site_id`, a site of `trial`? The same rule
    as sites_for, answered without a query once the user's places are known."""
    if is_trial_manager(user, trial):
        return True
    site_ids = membership_site_ids(user, trial)
    return site_ids is not None and (not site_ids or site_id in site_ids)


def sites_for(user, trial) -> QuerySet:
    """The sites of `trial` this user works at (all of them for its trial managers)."""
    from trial.models import Site

    all_sites = Site.objects.filter(trial=trial)
    if is_trial_manager(user, trial):
        return all_sites
    site_ids = membership_site_ids(user, trial)
    if site_ids is None:
        return Site.objects.none()
    return all_sites.filter(pk__in=site_ids) if site_ids else all_sites
