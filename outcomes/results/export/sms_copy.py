"""The SMS table on PostgreSQL: one set-based query, written by the server as CSV (COPY TO).

At 100,000 participants the table has ~12 million rows (62 weeks × 2 questions each). Read
through Python, each row would cost a tuple, a dozen conversions and a CSV write — minutes.
Here the server joins weeks × questions with the question sent, the answer and the first
reply, formats dates and local times, applies the per-participant date shift (offsets
loaded into a temporary table; they are HMACs of the participant id, computed in Python as
for every other table) and streams CSV to a file. The result is the same table the generic
path (tables.Builder._sms_rows, used on SQLite) writes, value for value; the tests compare
them.

SmsStream runs that COPY on a connection of its own while the export builds the other
tables, and lets the CSV be read while it is being written, so that the Stata and SPSS
files are made as the rows arrive (docs/PERFORMANCE.md, "Fifth round").
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

from django.db import DatabaseError, connection, transaction

from outcomes.results.background import Background
from outcomes.results.export.shift import Shifter
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsAnswer, SmsQuestion, SmsWeek
from participants.models import Participant
from trial.models import Trial

SHIFT_TABLE = "export_sms_shift"
# The CSV file's write buffer: the COPY hands over one row at a time.
WRITE_BUFFER = 1 << 20
# How long a reader of the growing CSV waits before looking for more rows.
POLL_SECONDS = 0.05

log = logging.getLogger(__name__)


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
            # Binary: psycopg2 then writes each row's bytes as the server sent them (UTF-8,
            # the connection's client encoding), where a text file would decode and
            # re-encode them.
            with open(path, "wb", buffering=WRITE_BUFFER) as out:
                out.write((",".join(header) + "\n").encode())
                # copy_expert's errors come as psycopg2's own: made django.db ones.
                with connection.wrap_database_errors:
                    cursor.copy_expert(f"COPY ({query.decode()}) TO STDOUT WITH (FORMAT csv)", out)
            rows = cursor.rowcount  # COPY reports the rows it wrote: no second scan to count
        except BaseException:
            # Not dropped here: a failed statement has aborted the transaction (both callers
            # run inside one), whose rollback removes the table created in it, and a DROP
            # would only replace the real error with "current transaction is aborted".
            raise
        cursor.execute(f"DROP TABLE IF EXISTS {SHIFT_TABLE}")
    return rows


def _load_shifts(cursor, trial: Trial, shifter: Shifter) -> None:
    ids = Participant.objects.filter(trial=trial, randomized_at__isnull=False).values_list(
        "pk", flat=True
    )
    rows = "".join(f"{pk}\t{shifter.offset(pk)}\n" for pk in ids.iterator(chunk_size=20_000))
    with connection.wrap_database_errors:
        cursor.copy_expert(
            f"COPY {SHIFT_TABLE} (participant_id, days) FROM STDIN", io.StringIO(rows)
        )
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


# The raw reply's widest value in UTF-8 bytes (the CSV's encoding, whatever the database's),
# as the query above writes it (the first reply to each question sent), for the Stata and
# SPSS files, which need it before the first row.
_REPLY_WIDTH = """
SELECT COALESCE(max(octet_length(convert_to(NULLIF(left(body, 160), ''), 'UTF8'))), 0) FROM (
    SELECT DISTINCT ON (week_id, question_id) body
    FROM {inbound}
    WHERE trial_id = %(trial)s AND question_id IS NOT NULL AND week_id IS NOT NULL
    ORDER BY week_id, question_id, received_at, id
) first_replies
"""


class SmsStream:
    """The SMS table's COPY (sms_csv) running on a connection of its own, into `path`,
    which can be read while it is written (`reader()`), and the raw reply's width in the
    same data (`reply_width()`), known within seconds of the start.

    The COPY runs in a REPEATABLE READ transaction whose snapshot it exports; the width is
    queried on a third connection that imports that snapshot (SET TRANSACTION SNAPSHOT), so
    it is the width of exactly the rows the COPY writes — a reply arriving meanwhile is in
    neither — while the COPY starts at once. (Queried first on the COPY's own connection,
    the width would delay the export's longest step by ~3 s at 100,000 participants.) The
    COPY's transaction stays open until the width query has ended: a snapshot can be
    imported only while its exporter's transaction is open. If the width query fails for
    any database reason (no connection to be had, the snapshot refused), the export
    measures the finished CSV instead: the width only lets the files be made sooner.

    Only outside a transaction, on PostgreSQL (Builder.sms_start decides): another
    connection does not see a transaction's own rows."""

    def __init__(self, trial, shifter: Shifter, header: list[str], path: Path):
        self.trial, self.shifter, self.header, self.path = trial, shifter, header, path
        self.count = 0
        path.touch()  # a reader may open it before the COPY has written its first byte
        self._finished = threading.Event()
        self._width_known = threading.Event()
        self._width: int | None = None
        self._width_error: BaseException | None = None
        self._copy = Background(self._run, name="export-sms-copy")

    def _run(self) -> None:
        measuring = None
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # The first statement of the transaction, as PostgreSQL requires.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot = cursor.fetchone()[0]
                measuring = Background(lambda: self._measure(snapshot), name="export-sms-width")
                try:
                    self.count = sms_csv(self.trial, self.shifter, self.header, self.path)
                finally:
                    measuring.wait()  # the import needs this transaction open
        finally:
            if measuring is None:  # the snapshot was never exported: no width to wait for
                self._width_known.set()
            self._finished.set()

    def _measure(self, snapshot: str) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
                cursor.execute(_REPLY_WIDTH.format(**_names()), {"trial": self.trial.pk})
                self._width = int(cursor.fetchone()[0])
        except DatabaseError as error:
            # No connection to be had (max_connections, a pooler's limit), the snapshot
            # refused: the export then measures the finished CSV instead (Builder.sms).
            log.warning("SMS export: the reply width query failed (%s); measuring the CSV", error)
        except BaseException as exc:
            self._width_error = exc
            raise
        finally:
            self._width_known.set()

    def reply_width(self) -> int | None:
        """The raw reply's widest value in bytes (0: no reply), waiting for the query; None
        when it could not be run (then measure the CSV once it is complete). Raises what
        the query raised otherwise."""
        self._width_known.wait()
        if self._width_error is not None:
            raise self._width_error
        return self._width

    def reader(self) -> io.BufferedReader:
        """The CSV from its first byte; reading waits for rows not yet written, and ends
        where the COPY ended. Whether it ended well, join() tells."""
        return io.BufferedReader(_Growing(self.path, self._finished), WRITE_BUFFER)

    def join(self) -> int:
        """Wait for the COPY; re-raise what it raised; the number of rows."""
        self._copy.join()
        return self.count

    def wait(self) -> None:
        self._copy.wait()


class _Growing(io.RawIOBase):
    """A file another thread is still writing: at its end, a read waits for more bytes
    until `finished` is set, then reads what is left."""

    def __init__(self, path: Path, finished: threading.Event):
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 (closed in close())
        self._finished = finished

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            finished = self._finished.is_set()  # before reading: then nothing comes after
            count = self._file.readinto(buffer)
            if count or finished:
                return count
            self._finished.wait(POLL_SECONDS)

    def close(self) -> None:
        self._file.close()
        super().close()
