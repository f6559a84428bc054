"""Maintained totals of the weekly SMS, for the results dashboard.

Three tables (outcomes.sms.models): SmsQuestionWeekTotal (question, week number, arm: answers
and their sum), SmsParticipantTotal (participant, question: answers and their sum) and
SmsWeekTotal (week number, arm: weeks opened, answered, complete). The dashboard reads
them instead of summarising every answer — ten million at 100,000 participants, 14 s of
GROUP BY on every cold view (docs/PERFORMANCE.md).

They are kept exact the way FactorLevelCount is for allocation: changed in the transaction
that stores the answer (answer_recorded, from tracking.sms_receive) or opens the weeks
(weeks_opened, from tracking.sms_weekly_send). Answers and weeks are never deleted
(PROTECT everywhere, read-only admin), so the totals only grow. Bulk loads (the demo, the
benchmark builder) and the migration that added the tables call rebuild(); recount()
gives what they must equal, and `manage.py sms_totals_check` compares (and can repair).

Raw SQL, portable between PostgreSQL and SQLite (3.24+): the ORM has no upsert that adds to
the stored value (bulk_create's update_conflicts overwrites it), and an increment must be
one statement so concurrent answers cannot lose each other's counts. Each statement takes
the participant's arm from the allocation in the same statement (no extra round trip).

Locks: an answer locks one row of each table, always in the order question-week,
participant, week; the weekly job's upsert locks its (week, arm) rows in sorted order.
No two writers take rows in opposite orders, so they queue rather than deadlock. The
statements come last in their transactions, so the rows stay locked only until commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, transaction

from outcomes.sms.models import (
    SmsAnswer,
    SmsParticipantTotal,
    SmsQuestionWeekTotal,
    SmsWeek,
    SmsWeekTotal,
)
from participants.models import Allocation
from trial import batch

QW = SmsQuestionWeekTotal._meta.db_table
PT = SmsParticipantTotal._meta.db_table
WT = SmsWeekTotal._meta.db_table
ANSWER = SmsAnswer._meta.db_table
WEEK = SmsWeek._meta.db_table
ALLOCATION = Allocation._meta.db_table
# The participant's arm, as the row source of each statement: a participant without an
# allocation (never randomized, so never sent a question — but should one answer anyway)
# adds no row, as in the recount's inner join, and the answer itself is still stored.
# (The WHERE also keeps SQLite's parser from reading ON CONFLICT as part of a join.)
ARM_OF = f"FROM {ALLOCATION} WHERE participant_id = %s"


def answer_recorded(
    *,
    trial_id: int,
    participant_id: int,
    question_id: int,
    week: int,
    value: int,
    first_of_week: bool,
    completes_week: bool,
) -> None:
    """Add one stored answer to the totals. Call inside the answer's transaction."""
    statements = [
        (
            f"INSERT INTO {QW} (trial_id, question_id, week, arm_id, answers, total) "
            f"SELECT %s, %s, %s, arm_id, 1, %s {ARM_OF} "
            f"ON CONFLICT (question_id, week, arm_id) DO UPDATE "
            f"SET answers = {QW}.answers + 1, total = {QW}.total + excluded.total",
            [trial_id, question_id, week, value, participant_id],
        ),
        (
            f"INSERT INTO {PT} (trial_id, participant_id, question_id, arm_id, answers, total) "
            f"SELECT %s, %s, %s, arm_id, 1, %s {ARM_OF} "
            f"ON CONFLICT (participant_id, question_id) DO UPDATE "
            f"SET answers = {PT}.answers + 1, total = {PT}.total + excluded.total",
            [trial_id, participant_id, question_id, value, participant_id],
        ),
    ]
    if first_of_week or completes_week:
        # The row exists: weeks_opened added it when this week was opened.
        statements.append(
            (
                f"UPDATE {WT} SET answered = answered + %s, complete = complete + %s "
                f"WHERE trial_id = %s AND week = %s AND arm_id = (SELECT arm_id {ARM_OF})",
                [int(first_of_week), int(completes_week), trial_id, week, participant_id],
            )
        )
    # One round trip on PostgreSQL (a reply's time is mostly round trips: the webhook
    # benchmark); the server runs them in order, so the lock order holds.
    batch.execute(statements)


def weeks_opened(week_ids: Sequence[int]) -> None:
    """Count newly opened SMS weeks as sent. Call inside the transaction that created them."""
    if not week_ids:
        return
    marks = ", ".join(["%s"] * len(week_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {WT} (trial_id, week, arm_id, sent, answered, complete) "
            f"SELECT w.trial_id, w.week, a.arm_id, COUNT(*), 0, 0 "
            f"FROM {WEEK} w JOIN {ALLOCATION} a ON a.participant_id = w.participant_id "
            f"WHERE w.id IN ({marks}) "
            f"GROUP BY w.trial_id, w.week, a.arm_id ORDER BY w.trial_id, w.week, a.arm_id "
            f"ON CONFLICT (trial_id, week, arm_id) DO UPDATE SET sent = {WT}.sent + excluded.sent",
            list(week_ids),
        )


# What the totals must equal, from the raw rows (rebuild, recount).
RECOUNT = {
    QW: (
        "trial_id, question_id, week, arm_id, answers, total",
        f"SELECT s.trial_id, s.question_id, w.week, a.arm_id, COUNT(*), SUM(s.value) "
        f"FROM {ANSWER} s JOIN {WEEK} w ON w.id = s.week_id "
        f"JOIN {ALLOCATION} a ON a.participant_id = s.participant_id "
        f"WHERE s.trial_id = %s GROUP BY s.trial_id, s.question_id, w.week, a.arm_id",
    ),
    PT: (
        "trial_id, participant_id, question_id, arm_id, answers, total",
        f"SELECT s.trial_id, s.participant_id, s.question_id, a.arm_id, COUNT(*), SUM(s.value) "
        f"FROM {ANSWER} s JOIN {ALLOCATION} a ON a.participant_id = s.participant_id "
        f"WHERE s.trial_id = %s GROUP BY s.trial_id, s.participant_id, s.question_id, a.arm_id",
    ),
    WT: (
        "trial_id, week, arm_id, sent, answered, complete",
        f"SELECT w.trial_id, w.week, a.arm_id, COUNT(*), "
        f"SUM(CASE WHEN w.answered > 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN w.completed_at IS NOT NULL THEN 1 ELSE 0 END) "
        f"FROM {WEEK} w JOIN {ALLOCATION} a ON a.participant_id = w.participant_id "
        f"WHERE w.trial_id = %s GROUP BY w.trial_id, w.week, a.arm_id",
    ),
}


def _lock_sources(cursor) -> None:
    # No answer or week may be stored between the recount and the write: on PostgreSQL
    # SHARE mode lets reads go on and makes writers wait; on SQLite the DELETE that comes
    # first already holds the database's single write lock.
    if connection.vendor == "postgresql":
        cursor.execute(f"LOCK TABLE {ANSWER}, {WEEK} IN SHARE MODE")


def rebuild(trial_ids: Iterable[int]) -> None:
    """Replace the trials' totals by a recount of their answers and weeks (bulk loads, the
    migration, repair). Set-based: one INSERT … SELECT per table."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_sources(cursor)
        for trial_id in trial_ids:
            for table, (columns, select) in RECOUNT.items():
                cursor.execute(f"DELETE FROM {table} WHERE trial_id = %s", [trial_id])
                cursor.execute(f"INSERT INTO {table} ({columns}) {select}", [trial_id])


def recount(trial_id: int) -> dict[str, dict[tuple, tuple]]:
    """{table: {key: values}} as a recount gives them, and as stored (compare())."""
    return _rows(trial_id, {table: select for table, (_, select) in RECOUNT.items()})


def stored(trial_id: int) -> dict[str, dict[tuple, tuple]]:
    return _rows(
        trial_id,
        {
            table: f"SELECT {columns} FROM {table} WHERE trial_id = %s"
            for table, (columns, _) in RECOUNT.items()
        },
    )


# Key width per table: the leading columns that identify a row.
KEYS = {QW: 4, PT: 4, WT: 3}


def _rows(trial_id: int, queries: dict[str, str]) -> dict[str, dict[tuple, tuple]]:
    out: dict[str, dict[tuple, tuple]] = {}
    with connection.cursor() as cursor:
        for table, sql in queries.items():
            cursor.execute(sql, [trial_id])
            k = KEYS[table]
            out[table] = {
                tuple(row[:k]): tuple(int(v) for v in row[k:]) for row in cursor.fetchall()
            }
    return out


def compare(trial_id: int) -> list[str]:
    """Differences between the stored totals and a recount, as readable lines ([] when
    exact). Rows whose counts are all zero are the same as no row."""
    want, have = recount(trial_id), stored(trial_id)
    problems = []
    for table in RECOUNT:
        a = {k: v for k, v in want[table].items() if any(v)}
        b = {k: v for k, v in have[table].items() if any(v)}
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                problems.append(f"{table} {key}: stored {b.get(key)}, recount {a.get(key)}")
    return problems
