"""Reads for the trial's team page: who holds which roles and sites, and every change."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import User

from trial import roles
from trial.models import Membership, Site, Trial


@dataclass(frozen=True)
class Member:
    membership: Membership
    roles: tuple[str, ...]  # labels, in roles.ALL_ROLES order
    sites: tuple[str, ...]  # site codes; empty: every site


@dataclass(frozen=True)
class TeamChangeRow:
    """One recorded change of one person's roles or sites in the trial."""

    at: dt.datetime
    by: User | None
    user: User | None
    granted: tuple[str, ...]
    revoked: tuple[str, ...]
    sites_before: tuple[str, ...] | None  # None: the person was not on the team before
    sites_after: tuple[str, ...]
    reason: str

    @property
    def sites_changed(self) -> bool:
        return self.sites_before != self.sites_after


def _labels(names) -> tuple[str, ...]:
    """The roles' labels, in roles.ALL_ROLES order."""
    return tuple(roles.ROLE_LABELS[role] for role in roles.ALL_ROLES if role in names)


def team_members(trial: Trial) -> list[Member]:
    """The trial's memberships, those with a role first, by username. Two queries."""
    memberships = (
        Membership.objects.filter(trial=trial)
        .select_related("user")
        .prefetch_related("sites")
        .order_by("user__username")
    )
    members = [
        Member(m, _labels(roles.roles_of(m)), tuple(s.code for s in m.sites.all()))
        for m in memberships
    ]
    return sorted(members, key=lambda member: not member.roles)


def team_history(trial: Trial, *, membership: Membership | None = None) -> list[TeamChangeRow]:
    """Every recorded change of the trial's team (or of one membership), newest first: who
    made it, when, the roles granted and revoked, and the sites before and after. Three
    queries, whatever the length of the history."""
    History = Membership.history.model
    rows = History.objects.filter(trial=trial)
    if membership is not None:
        rows = rows.filter(id=membership.pk)
    rows = list(
        rows.select_related("user", "history_user")
        .prefetch_related("historicalmembership_sites_set")
        .order_by("history_date", "history_id")
    )
    site_codes = dict(Site.objects.filter(trial=trial).values_list("pk", "code"))
    previous: dict[int, tuple[frozenset[str], tuple[str, ...]]] = {}
    changes = []
    for row in rows:
        removed = row.history_type == "-"  # deleted (by a superuser, or with the account)
        held = frozenset() if removed else roles.roles_of(row)
        sites = (
            ()
            if removed
            else tuple(
                sorted(
                    site_codes.get(s.site_id, "?") for s in row.historicalmembership_sites_set.all()
                )
            )
        )
        before = previous.get(row.id)
        held_before = before[0] if before else frozenset()
        changes.append(
            TeamChangeRow(
                at=row.history_date,
                by=row.history_user,
                user=row.user,
                granted=_labels(held - held_before),
                revoked=_labels(held_before - held),
                sites_before=before[1] if before else None,
                sites_after=sites,
                reason=row.history_change_reason or "",
            )
        )
        previous[row.id] = (held, sites)
    changes.reverse()
    return changes
