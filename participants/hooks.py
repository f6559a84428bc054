"""Where the outcomes apps, a layer above, add to what participants do (docs/DESIGN.md
"Layers"). Participants never import outcomes; each outcomes app connects its part here from
its AppConfig.ready(), and tests/participants/test_hooks.py fails if a connection is missing.

1. Randomized: statements run in the randomization's own transaction and batch, right after
   the visits are planned (outcomes.instruments links the baseline entries to the baseline
   visit). Plain statements (trial.batch), not a signal: they must share the transaction
   and the single round trip that keeps the trial lock short (participants/services/
   randomization.py, step 3).
2. Digest opt-outs: the participants who opted out of the weekly SMS in a period, for the
   coordinator digest (outcomes.sms). Exactly one source; none connected is an error rather
   than a digest silently without its opt-outs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

from participants.models import Participant
from trial.batch import Statement
from trial.models import Site, Trial, VisitDefinition


class RandomizedStatements(Protocol):
    def __call__(
        self,
        *,
        participant: Participant,
        definitions: Sequence[VisitDefinition],
        by: User,
        now: dt.datetime,
    ) -> list[Statement]:
        """The statements to run for a participant being randomized now, whose visits
        (planned from `definitions`) are inserted just before them."""


class DigestOptOuts(Protocol):
    def __call__(
        self,
        trial: Trial,
        sites: QuerySet[Site],
        *,
        start: dt.datetime,
        end: dt.datetime,
        limit: int,
    ) -> tuple[list[Participant], int]:
        """The first `limit` participants of `sites` who opted out in [start, end), most
        recent first (each with its site), and how many did in all."""


_randomized: list[RandomizedStatements] = []
_digest_opt_outs: DigestOptOuts | None = None


def connect_randomized(builder: RandomizedStatements) -> None:
    """Add `builder` to the statements run at randomization (once, however often called)."""
    if builder not in _randomized:
        _randomized.append(builder)


def randomized_builders() -> tuple[RandomizedStatements, ...]:
    return tuple(_randomized)


def randomized_statements(
    *,
    participant: Participant,
    definitions: Sequence[VisitDefinition],
    by: User,
    now: dt.datetime,
) -> list[Statement]:
    """Every connected builder's statements, in the order they were connected."""
    return [
        statement
        for builder in _randomized
        for statement in builder(participant=participant, definitions=definitions, by=by, now=now)
    ]


def connect_digest_opt_outs(source: DigestOptOuts) -> None:
    """Make `source` the one the coordinator digest asks for SMS opt-outs."""
    global _digest_opt_outs
    _digest_opt_outs = source


def digest_opt_outs_source() -> DigestOptOuts:
    if _digest_opt_outs is None:
        raise ImproperlyConfigured(
            "No source of SMS opt-outs for the coordinator digest: outcomes.sms connects it "
            "in its AppConfig.ready() (participants.hooks.connect_digest_opt_outs)."
        )
    return _digest_opt_outs
