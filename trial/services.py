"""Changes to who works on a trial: roles and sites, per trial (trial.roles).

Trial managers grant and revoke roles and sites for EXISTING accounts of their own trials
only. Accounts themselves (creating them, passwords, the staff and superuser flags, groups)
are administered by superusers in the admin and are never touched here.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from trial import roles, team
from trial.models import Membership, Site, Trial

REFUSALS = {
    team.UNKNOWN_ROLE: ("roles", lambda trial: _("Choose among the roles offered.")),
    team.FOREIGN_SITE: (
        "sites",
        lambda trial: _("Choose among the sites of %(trial)s.") % {"trial": trial.code},
    ),
    team.LAST_MANAGER: (
        "roles",
        lambda trial: (
            _(
                "%(trial)s must keep at least one trial manager: give the role to someone else "
                "first."
            )
            % {"trial": trial.code}
        ),
    ),
}


def _save_with_one_history_row(membership: Membership, *, by: User, sites, reason: str) -> None:
    """Write the membership and its sites, then one history row of the result (simple-history
    would write one for the save and one more for each change of the sites, the first of
    them showing a state that never was)."""
    membership.skip_history_when_saving = True
    try:
        membership.save()
        membership.sites.set(sites)
    finally:
        del membership.skip_history_when_saving
    membership._history_user = by
    membership._change_reason = reason
    membership.save()


@transaction.atomic
def membership_change(
    *, trial: Trial, user: User, roles_after: Iterable[str], sites: Iterable[Site], by: User
) -> Membership | None:
    """Set `user`'s roles and sites in `trial` (granting, changing or revoking), as `by`.

    Only a trial manager of `trial` (or a superuser) may. One history row records each
    change: who, when, and the roles and sites after it (the row before holds the before).
    Returns the membership (None if there is none and nothing to grant).
    """
    if not roles.is_trial_manager(by, trial):
        raise PermissionDenied(_("Only a trial manager of %(trial)s can change its team.")
                               % {"trial": trial.code})  # fmt: skip
    # Lock the trial's memberships: two managers removing each other's manager role at the
    # same moment must not both count the other as the one who remains.
    locked = {m.user_id: m for m in Membership.objects.select_for_update().filter(trial=trial)}
    current = locked.get(user.pk)
    site_ids = frozenset(site.pk for site in sites)
    decision = team.decide_team_change(
        roles_before=roles.roles_of(current) if current else frozenset(),
        roles_after=frozenset(roles_after),
        sites_before=frozenset(current.sites.values_list("pk", flat=True))
        if current
        else frozenset(),
        sites_after=site_ids,
        known_roles=frozenset(roles.ALL_ROLES),
        manager_role=roles.TRIAL_MANAGER,
        trial_site_ids=frozenset(Site.objects.filter(trial=trial).values_list("pk", flat=True)),
        other_managers=sum(1 for uid, m in locked.items() if uid != user.pk and m.trial_manager),
    )
    if decision.refusals:
        errors: dict[str, list[str]] = {}
        for code in decision.refusals:
            field, message = REFUSALS[code]
            errors.setdefault(field, []).append(message(trial))
        raise ValidationError(errors)
    if not decision.changed:
        return current
    membership = current or Membership(user=user, trial=trial)
    for role, field in roles.ROLE_FIELDS.items():
        setattr(membership, field, role in decision.roles_after)
    reason = "" if current else "Added to the team"
    _save_with_one_history_row(membership, by=by, sites=sorted(site_ids), reason=reason)
    roles.forget(user)
    if by.pk == user.pk:
        roles.forget(by)
    return membership


@transaction.atomic
def membership_add_trial_creator(*, trial: Trial, by: User) -> Membership | None:
    """Make the trial manager who created `trial` its first trial manager (a superuser
    manages every trial and needs no membership)."""
    if by.is_superuser:
        return None
    membership = Membership(user=by, trial=trial, trial_manager=True)
    _save_with_one_history_row(membership, by=by, sites=[], reason="Created the trial")
    roles.forget(by)
    return membership
