"""The SMS table on PostgreSQL: one set-based query, written by the server as CSV (COPY TO).

At 100,000 participants the table has ~12 million rows (62 weeks × 2 questions each). Read
through Python, each row would cost a tuple, a dozen conversions and a CSV write — minutes.
Here the server joins weeks × questions with the question sent, the answer and the first
reply, formats dates and local times, applies the per-participant date shift (offsets
loaded into a temporary table; they are HMACs of the participant id, computed in Python as
for every other table) and streams CSV to a file. The result is the same table the generic
path (tables.Builder._sms_rows, used on SQLite) writes, value for value; the tests compare
them.
"""

from __future__ import annotations

import io
from pathlib import Path

from django.db import connection

from outcomes.export.shift import Shifter
from outcomes.models import InboundMessage, OutboundMessage, SmsAnswer, SmsQuestion, SmsWeek
from participants.models import Participant
from trial.models import Trial

SHIFT_TABLE = "export_sms_shift"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _local(column: str) -> str:
    """A timestamptz column as the trial's local time, shifted, as ISO text to the second."""
    return (
        f"to_char(({column} AT TIME ZONE %(zone)s) + make_interval(days => COALESCE(s.days, 0)), "
        "'YYYY-MM-DD\"T\"HH24:MI:SS')"
    )


def sms_csv(trial: Trial, shifter: Shifter, header: list[str], path: Path) -> int:
    """Write the SMS table as CSV (with `header`) to `path`; returns the number of rows."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SHIFT_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {SHIFT_TABLE} (participant_id bigint PRIMARY KEY, "
            "days integer NOT NULL)"
        )
        try:
            _load_shifts(cursor, trial, shifter)
            query = cursor.mogrify(
                _QUERY.format(**_names()), {"trial": trial.pk, "zone": trial.time_zone}
            )
            with open(path, "w", encoding="utf-8", newline="") as out:
                out.write(",".join(header) + "\n")
                cursor.copy_expert(f"COPY ({query.decode()}) TO STDOUT WITH (FORMAT csv)", out)
            rows = cursor.rowcount  # COPY reports the rows it wrote: no second scan to count
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {SHIFT_TABLE}")
    return rows


def _load_shifts(cursor, trial: Trial, shifter: Shifter) -> None:
    ids = Participant.objects.filter(trial=trial, randomized_at__isnull=False).values_list(
        "pk", flat=True
    )
    rows = "".join(f"{pk}\t{shifter.offset(pk)}\n" for pk in ids.iterator(chunk_size=20_000))
    cursor.copy_expert(f"COPY {SHIFT_TABLE} (participant_id, days) FROM STDIN", io.StringIO(rows))
    cursor.execute(f"ANALYZE {SHIFT_TABLE}")


def _names() -> dict[str, str]:
    return {
        "shift": SHIFT_TABLE,
        "week": _table(SmsWeek),
        "question": _table(SmsQuestion),
        "answer": _table(SmsAnswer),
        "outbound": _table(OutboundMessage),
        "inbound": _table(InboundMessage),
        "sent_at": _local("o.sent_at"),
        "answered_at": _local("a.answered_at"),
    }


# Weeks × the trial's questions, in (participant, week, question order). The question sent
# is unique per week and question (a partial unique constraint); the reply shown is the first
# received for it, as in the generic path.
_QUERY = """
SELECT w.participant_id, w.week, to_char(w.send_date + COALESCE(s.days, 0), 'YYYY-MM-DD'), q.code,
       (o.sent_at IS NOT NULL)::int, {sent_at},
       (a.id IS NOT NULL)::int, a.value, {answered_at},
       NULLIF(left(i.body, 160), ''), i.kind
FROM {week} w
JOIN {question} q ON q.trial_id = w.trial_id
LEFT JOIN {shift} s ON s.participant_id = w.participant_id
LEFT JOIN {outbound} o ON o.week_id = w.id AND o.question_id = q.id AND o.kind = 'sms_question'
LEFT JOIN {answer} a ON a.week_id = w.id AND a.question_id = q.id
LEFT JOIN (
    SELECT DISTINCT ON (week_id, question_id) week_id, question_id, body, kind
    FROM {inbound}
    WHERE trial_id = %(trial)s AND question_id IS NOT NULL
    ORDER BY week_id, question_id, received_at, id
) i ON i.week_id = w.id AND i.question_id = q.id
WHERE w.trial_id = %(trial)s
ORDER BY w.participant_id, w.week, q."order", q.id
"""
