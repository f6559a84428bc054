"""At randomization, the baseline instruments' entries join the baseline visit: connected to
participants' randomization (participants.hooks, "randomized") by InstrumentsConfig.ready()."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.contrib.auth.models import User

from outcomes.instruments.models import Instrument, OutcomeEntry
from participants.models import Participant, Visit
from trial import batch
from trial.models import VisitDefinition


def baseline_links(
    *,
    participant: Participant,
    definitions: Sequence[VisitDefinition],
    by: User,
    now: dt.datetime,
) -> list[batch.Statement]:
    """Give the participant's visit-less outcome entries (the baseline instruments, entered
    at enrollment) the visit done at randomization at which each instrument is due (the
    first such visit, in schedule order), with history rows. Without such a visit in the
    schedule they stay visit-less. One UPDATE per such visit and one INSERT of history rows,
    whatever the number of instruments. The entries need no locking read: every service
    that changes them locks the participant first, as randomization has."""
    q = batch.quote
    due = Instrument._meta.get_field("visits")
    entries, visits = q(OutcomeEntry._meta.db_table), q(Visit._meta.db_table)
    statements = [
        (
            f"UPDATE {entries} SET visit_id = (SELECT id FROM {visits} "
            "WHERE participant_id = %s AND definition_id = %s) "
            "WHERE participant_id = %s AND visit_id IS NULL AND instrument_id IN ("
            f"SELECT {q(due.m2m_column_name())} FROM {q(due.m2m_db_table())} "
            f"WHERE {q(due.m2m_reverse_name())} = %s)",
            [participant.pk, definition.pk, participant.pk, definition.pk],
        )
        for definition in definitions
        if definition.at_randomization
    ]
    if statements:
        # Entries on this participant's visits are the ones just linked: the visits are
        # created in the same batch, before these statements.
        statements.append(
            batch.history_copy(
                OutcomeEntry,
                where=f"participant_id = %s AND visit_id IN "
                f"(SELECT id FROM {visits} WHERE participant_id = %s)",
                params=[participant.pk, participant.pk],
                history_type="~",
                user_id=by.pk,
                when=now,
                reason="Linked to the baseline visit at randomization",
            )
        )
    return statements
