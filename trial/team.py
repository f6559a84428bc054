"""Changing who holds which role in a trial, decided on plain values (no Django).

trial.services.membership_change locks the trial's memberships, asks `decide_team_change`
and writes what it returns. The rules, so they can be read and tested alone:

1. Only the known roles, and only sites of this trial, can be given.
2. A trial keeps at least one trial manager. Nobody, not even its last manager about
   themselves, can leave it without one: its team, configuration and unblinding would then
   be left to superusers alone, and one unticked box is too easy a way to get there.
"""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN_ROLE = "unknown_role"
FOREIGN_SITE = "foreign_site"
LAST_MANAGER = "last_manager"


@dataclass(frozen=True)
class TeamChange:
    roles_before: frozenset[str]
    roles_after: frozenset[str]
    sites_before: frozenset[int]  # empty: every site
    sites_after: frozenset[int]
    refusals: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return (self.roles_before, self.sites_before) != (self.roles_after, self.sites_after)

    @property
    def granted(self) -> frozenset[str]:
        return self.roles_after - self.roles_before

    @property
    def revoked(self) -> frozenset[str]:
        return self.roles_before - self.roles_after


def decide_team_change(
    *,
    roles_before: frozenset[str],
    roles_after: frozenset[str],
    sites_before: frozenset[int],
    sites_after: frozenset[int],
    known_roles: frozenset[str],
    manager_role: str,
    trial_site_ids: frozenset[int],
    other_managers: int,
) -> TeamChange:
    """What changes for one member, or why it may not (`refusals`, nothing to write).

    `other_managers` counts the trial's members other than this one who hold
    `manager_role` (superusers manage every trial without a membership and do not count).
    """
    refusals = []
    if not roles_after <= known_roles:
        refusals.append(UNKNOWN_ROLE)
    if not sites_after <= trial_site_ids:
        refusals.append(FOREIGN_SITE)
    if manager_role in roles_before and manager_role not in roles_after and other_managers == 0:
        refusals.append(LAST_MANAGER)
    return TeamChange(
        roles_before=roles_before,
        roles_after=roles_after,
        sites_before=sites_before,
        sites_after=sites_after,
        refusals=tuple(refusals),
    )
