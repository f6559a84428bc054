"""The SMS table (long, one row per participant, SMS week and question): written by the
PostgreSQL server (outcomes.results.export.sms_copy) or, on SQLite, read here in chunks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.db import connection

from outcomes.results.background import Background
from outcomes.results.export import deflate, sms_copy
from outcomes.results.export.codebook import YES_NO
from outcomes.results.export.members import add_stat_members, csv_stat_files, csv_table_members
from outcomes.results.export.tables.base import CHUNK, TableBuilder
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsAnswer, SmsQuestion, SmsWeek

RAW_REPLY_STAT_BYTES = 40


class SmsTable(TableBuilder):
    """The SMS table (Builder), started first and finished last."""

    def sms_start(self) -> None:
        """The SMS table's variables; and on PostgreSQL, when not inside a transaction (the
        export task), start the server writing the table's CSV now, on a connection of its
        own (sms_copy.SmsStream), so that its ~50 s at 100,000 participants
        (docs/PERFORMANCE.md) run on the database's core while this process builds the
        other tables and then the SMS table's Stata and SPSS files from the CSV as it
        grows. Inside a transaction (the tests) a second connection would not see the
        uncommitted rows, so sms() writes it then. The CSV is as of its own start, as each
        table is as of its own read (the export is not one snapshot)."""
        self._sms_questions = list(
            SmsQuestion.objects.filter(trial=self.trial)
            .order_by("order", "pk")
            .values_list("pk", "code", "label", "min_value", "max_value")
        )
        self.sms_variables(self._sms_questions)
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            return
        self._sms_dir = tempfile.TemporaryDirectory(dir=Path(self.zf.filename).parent)
        header = [v.name for v in self.codebook if v.table == "sms"]
        self._sms_stream = sms_copy.SmsStream(
            self.trial, self.shifter, header, Path(self._sms_dir.name) / "sms.csv"
        )

    def sms(self, first: int = 0, last: int = 100) -> int:
        """The SMS table (after sms_start); progress moves from `first` to `last` percent."""
        if self._sms_stream is not None:
            return self._sms_streamed(first, last)
        if connection.vendor == "postgresql":
            return self._sms_postgres("sms", first, last)
        return self.write_rows("sms", self._sms_rows(self._sms_questions, first, last))

    def _sms_streamed(self, first: int, last: int) -> int:
        """The stat files from the COPY's CSV as it grows, while a thread deflates the CSV
        into its ZIP member, also as it grows (the ZIP is free: the other tables are done);
        then the stat files' members."""
        stream = self._sms_stream
        variables = [v for v in self.codebook if v.table == "sms"]
        folder = Path(self._sms_dir.name)
        self.progress(first + (last - first) // 3, "Weekly SMS: Stata and SPSS files")
        compressing = Background(lambda: self._sms_csv_member(stream), name="export-sms-compress")
        try:
            width = stream.reply_width()
            if width is None:  # not measured in the COPY's snapshot: measure the CSV itself
                stream.join()
                stat_paths = csv_stat_files(folder, "sms", variables, stream.path)
            else:
                with stream.reader() as growing:
                    # raw_reply is the table's one text column (a new one would need its
                    # width queried too: csv_stat_files raises KeyError without it).
                    stat_paths = csv_stat_files(
                        folder, "sms", variables, growing, {"raw_reply": width}
                    )
        except BaseException:
            compressing.wait()  # its member is open: the ZIP could not even be closed
            stream.join()  # the COPY's failure, if it failed, is the cause: raise it
            raise
        compressing.wait()  # the ZIP takes one member at a time, and this one is open
        stream.join()  # it ended: did it end well?
        compressing.join()
        self._sms_stream = None
        add_stat_members(self.zf, "sms", stat_paths)
        return stream.count

    def _sms_csv_member(self, stream: sms_copy.SmsStream) -> None:
        with stream.reader() as growing:
            deflate.add_stream(self.zf, growing, "sms.csv")

    def close(self) -> None:
        """Wait for a COPY still running (a step failed: its result no longer matters) and
        remove its files."""
        stream, self._sms_stream = self._sms_stream, None
        try:
            if stream is not None:
                stream.wait()
        finally:
            if self._sms_dir is not None:
                self._sms_dir.cleanup()
                self._sms_dir = None

    def sms_variables(self, questions) -> None:
        table = "sms"
        v = self.var
        v(table, "participant_id", "Participant id (database key)", "integer")
        v(table, "week", "SMS week (1 = first week after randomization)", "integer")
        v(table, "send_date", "Date the week's first question was sent", "date")
        v(
            table,
            "question",
            "Question",
            "category",
            value_labels={code: label for _, code, label, *_ in questions},
        )
        v(table, "sent", "Question sent", "boolean", value_labels=YES_NO)
        v(table, "sent_at", "Sent at (trial local time)", "datetime")
        v(table, "answered", "Valid answer received", "boolean", value_labels=YES_NO)
        v(
            table,
            "value",
            "Answer",
            "integer",
            allowed="; ".join(f"{c}: {lo}..{hi}" for _, c, _, lo, hi in questions),
        )
        v(table, "answered_at", "Answered at (trial local time)", "datetime")
        # Stata stores text at a fixed width on every row: with ~12 million SMS rows, one
        # long reply would make the .dta several GB. A reply to a 0-7 question longer than
        # this is free text; it is cut in the .dta/.sav (counted in the codebook's notes)
        # and whole in sms.csv.
        v(
            table,
            "raw_reply",
            "First reply received for the question, as typed",
            "string",
            stat_width=RAW_REPLY_STAT_BYTES,
        )
        v(
            table,
            "reply_kind",
            "How the first reply was read",
            "category",
            value_labels=dict(InboundMessage.Kind.choices),
        )

    def _sms_postgres(self, table: str, first: int, last: int) -> int:
        """The server writes the CSV (sms_copy); the stat files are made from it."""
        variables = [v for v in self.codebook if v.table == table]
        with tempfile.TemporaryDirectory(dir=Path(self.zf.filename).parent) as tmp:
            path = Path(tmp) / f"{table}.csv"
            count = sms_copy.sms_csv(self.trial, self.shifter, [v.name for v in variables], path)
            self.progress(first + (last - first) // 3, "Weekly SMS: Stata and SPSS files")
            csv_table_members(self.zf, table, variables, path)
        return count

    def _sms_rows(self, questions, first: int, last: int):
        weeks = SmsWeek.objects.filter(trial=self.trial)
        total = max(weeks.count(), 1)
        rows = (
            weeks.order_by("participant_id", "week")
            .values_list("pk", "participant_id", "week", "send_date")
            .iterator(chunk_size=CHUNK)
        )
        batch = []
        done = 0
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                yield from self._sms_batch(batch, questions)
                done += len(batch)
                batch = []
                if done % (20 * CHUNK) == 0:
                    self.progress(
                        first + (last - first) * done // total, f"Weekly SMS: {done:,} weeks"
                    )
        if batch:
            yield from self._sms_batch(batch, questions)

    def _sms_batch(self, batch, questions):
        ids = [row[0] for row in batch]
        answers = {
            (w, q): (value, at)
            for w, q, value, at in SmsAnswer.objects.filter(week_id__in=ids).values_list(
                "week_id", "question_id", "value", "answered_at"
            )
        }
        sent = {}
        for w, q, at in (
            OutboundMessage.objects.filter(week_id__in=ids, kind=OutboundMessage.Kind.SMS_QUESTION)
            .order_by("created_at")
            .values_list("week_id", "question_id", "sent_at")
        ):
            sent.setdefault((w, q), at)
        replies = {}
        for w, q, body, kind in (
            InboundMessage.objects.filter(week_id__in=ids, question__isnull=False)
            .order_by("received_at", "pk")
            .values_list("week_id", "question_id", "body", "kind")
        ):
            replies.setdefault((w, q), (body[:160], kind))
        shift = self.shifter.shift
        for week_id, pid, week, send_date in batch:
            for qid, code, *_ in questions:
                key = (week_id, qid)
                value, answered_at = answers.get(key, (None, None))
                reply, kind = replies.get(key, (None, None))
                sent_at = sent.get(key)
                yield [
                    pid, week, shift(send_date, pid), code,
                    int(key in sent and sent_at is not None), shift(self.local(sent_at), pid),
                    int(key in answers), value, shift(self.local(answered_at), pid),
                    reply, kind,
                ]  # fmt: skip
