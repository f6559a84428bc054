"""The export's tables, read from the database in chunks and written through
outcomes.results.export.members: participants (wide), visits (long), SMS (long), screening log,
allocation log, and the codebook of them all.

No direct identifiers: names, phone numbers, screening initials, SMS numbers and message
bodies sent to participants are never read. Raw SMS replies are the participant's own text
(the answer as typed), as the issue asks.

Blinding: a blinded export shows arms only as their neutral codes (A, B, ...), everywhere,
including the arm codes inside the allocation log's JSON (counts, scores, probabilities,
settings). Unblinded: the arm code, labelled with the arm's name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.scoring import GLOBAL_CHOICES
from outcomes.results import analysis_data, participants_table
from outcomes.results.background import Background
from outcomes.results.export import deflate, sms_copy
from outcomes.results.export.codebook import (
    CODEBOOK_FIELDS,
    YES_NO,
    Variable,
    r_script,
    safe_name,
)
from outcomes.results.export.frames import frame_members
from outcomes.results.export.members import (
    TableMember,
    add_stat_members,
    csv_stat_files,
    csv_table_members,
)
from outcomes.results.export.shift import SHIFT_DAYS, Shifter
from outcomes.results.models import ExportJob
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsAnswer, SmsQuestion, SmsWeek
from participants.models import Allocation, Participant, ScreeningRecord, Visit
from trial import blinding
from trial.models import BaselineVariable, MinimizationFactor, Site, VisitDefinition

CHUNK = analysis_data.CHUNK
RAW_REPLY_STAT_BYTES = 40
# The tables in the codebook's order (whatever order they are built in).
TABLES = ("participants", "visits", "sms", "screening", "allocations")


class Builder:
    def __init__(self, job: ExportJob, zf: zipfile.ZipFile, progress: Callable[[int, str], None]):
        self.job = job
        self.trial = job.trial
        self.zf = zf
        self.progress = progress
        self.shifter = Shifter(job.shift_dates)
        self.codebook: list[Variable] = []
        self.zone = self.trial_zone()
        self._sms_stream: sms_copy.SmsStream | None = None  # sms_start's COPY
        self._sms_dir: tempfile.TemporaryDirectory | None = None
        # The arms as the job's reader may see them (trial.blinding.arm_view): the value
        # written for each arm code, and the value labels in the order shown.
        arms = blinding.arm_view(self.trial, blinded=job.blinded).arms
        self.arm_map = {arm.code: arm.value for arm in arms}
        self.arm_labels = {arm.value: arm.label for arm in arms}

    def trial_zone(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(getattr(self.trial, "time_zone", "") or settings.TIME_ZONE)

    def local(self, value: dt.datetime | None) -> dt.datetime | None:
        return timezone.localtime(value, self.zone).replace(tzinfo=None) if value else None

    # -- helpers
    def var(self, table: str, name: str, label: str, type_: str, **kwargs) -> Variable:
        variable = Variable(table, name, label, type_, **kwargs)
        self.codebook.append(variable)
        return variable

    def member(self, table: str) -> TableMember:
        """The table's CSV, .dta and .sav, written as rows arrive
        (outcomes.results.export.members)."""
        return TableMember(self.zf, table, [v for v in self.codebook if v.table == table])

    def write_rows(self, table: str, rows: Iterable) -> int:
        with self.member(table) as member:
            for row in rows:
                member.write(row)
        return member.count

    def write_frame(self, table: str, frame: pd.DataFrame) -> int:
        """A table built as a DataFrame (participants, visits), in the codebook's order."""
        variables = [v for v in self.codebook if v.table == table]
        return frame_members(self.zf, table, variables, frame)

    def arm_value(self, code):
        return self.arm_map.get(code) if code else None

    def arm_keys(self, value):
        """A {arm code: x} mapping with the codes as the export shows them."""
        if not isinstance(value, dict):
            return value
        return {self.arm_map.get(k, k): v for k, v in value.items()}

    def allocation_json(self, counts, scores, probabilities, used) -> list:
        """The allocation's JSON fields with arm codes as the export shows them, by their
        known shapes only (counts {factor: {arm: n}}, scores and probabilities {arm: x},
        settings {"arms": [arm, ...], "ratios": {arm: w}, ...}), so a factor or level code
        that happens to equal an arm code is left alone.

        The arm list keeps the configured order, which the draw walks (the allocation
        replays from the log), unless the export is blinded: then it is sorted, because the
        configured order would reveal which code is which arm, and the draw no longer
        replays (the codebook says so)."""
        if isinstance(counts, dict):
            counts = {factor: self.arm_keys(per_arm) for factor, per_arm in counts.items()}
        if isinstance(used, dict):
            used = dict(used)
            if isinstance(used.get("arms"), list):
                shown = [self.arm_map.get(a, a) for a in used["arms"]]
                used["arms"] = sorted(shown) if self.job.blinded else shown
            if isinstance(used.get("ratios"), dict):
                used["ratios"] = self.arm_keys(used["ratios"])
        return [counts, self.arm_keys(scores), self.arm_keys(probabilities), used]

    # -- tables
    def participants(self) -> None:
        """The participants table: its variables and columns decided in
        outcomes.results.participants_table from what is read here."""
        table = "participants"
        frame = analysis_data.analysis_frame(self.trial)
        for column in participants_table.columns(
            blinded=self.job.blinded, **self._participants_config()
        ):
            self.var(table, column.name, column.label, column.type, **column.options)
        extra = {}
        if len(frame):
            changed = dict(
                # The whole trial's randomized participants (= the frame's rows): a list of
                # ids in an IN clause would exceed SQLite's variable limit on a big trial.
                Participant.objects.filter(trial=self.trial, randomized_at__isnull=False)
                .values_list("pk", "status_changed_on")
                .iterator(chunk_size=CHUNK)
            )
            extra["status_changed_on"] = pd.Series(changed)
            extra.update(participants_table.visit_columns(analysis_data.visits_frame(self.trial)))
        names = [x.name for x in self.codebook if x.table == table]
        out, undescribed = participants_table.assemble(frame, names, extra)
        for name in undescribed:
            self.var(table, name, name, "string")
        # No astype(object) of the whole frame: at 100,000 participants its ~60 columns of
        # Python objects were the export's peak memory. Missing values stay NaN/NaT, which
        # the writers treat as missing (codebook.missing).
        out["arm"] = out["arm"].map(self.arm_value)
        for name in [c for c in out.columns if self._type(table, c) in {"date", "datetime"}]:
            out[name] = [
                self.shifter.shift(d, pid) for pid, d in zip(out.index, out[name], strict=True)
            ]
        out.columns = [safe_name(c) for c in out.columns]
        for variable in self.codebook:
            if variable.table == table:  # (sms_start registered the SMS table's already)
                variable.name = safe_name(variable.name)
        self.write_frame(table, out)

    def _participants_config(self) -> dict:
        """The trial's configuration as outcomes.results.participants_table.columns takes it."""
        pt = participants_table
        labels = pt.Labels(
            sites=dict(Site.objects.filter(trial=self.trial).values_list("code", "name")),
            arms=self.arm_labels,
            statuses=dict(Participant.Status.choices),
            visit_outcomes=dict(Visit.Outcome.choices),
            not_done=dict(OutcomeEntry.NotDone.choices),
            global_7={str(k): label for k, label in GLOBAL_CHOICES},
            yes_no=YES_NO,
        )
        factors = [
            pt.Factor(
                f.code,
                f.name,
                {lvl.code: lvl.label for lvl in f.levels.order_by("order", "pk")},
            )
            for f in MinimizationFactor.objects.filter(trial=self.trial).prefetch_related("levels")
        ]
        baselines = [
            pt.Baseline(b.code, b.label, b.unit, b.min_value, b.max_value)
            for b in BaselineVariable.objects.filter(trial=self.trial)
        ]
        visits = list(
            VisitDefinition.objects.filter(trial=self.trial)
            .order_by("order", "offset_days")
            .values_list("code", "label")
        )
        instruments = [
            pt.Instrument(i.code, i.name, i.kind)
            for i in Instrument.objects.filter(trial=self.trial).order_by("order", "pk")
        ]
        return {
            "labels": labels,
            "factors": factors,
            "baselines": baselines,
            "visits": visits,
            "instruments": instruments,
        }

    def _type(self, table: str, name: str) -> str:
        for variable in self.codebook:
            if variable.table == table and variable.name == name:
                return variable.type
        return "string"

    def visits(self) -> None:
        table = "visits"
        frame = analysis_data.visits_frame(self.trial)
        labels = dict(VisitDefinition.objects.filter(trial=self.trial).values_list("code", "label"))
        v = self.var
        v(table, "participant_id", "Participant id (database key)", "integer")
        v(table, "visit", "Planned visit", "category", value_labels=labels)
        v(table, "target_date", "Target date", "date")
        v(table, "window_start", "Window opens", "date")
        v(table, "window_end", "Window closes", "date")
        v(table, "outcome", "Visit outcome", "category", value_labels=dict(Visit.Outcome.choices))
        v(table, "attended_on", "Date attended", "date")
        v(table, "in_window", "Attended in window", "boolean", value_labels=YES_NO)
        v(table, "missed_reason", "Reason missed", "string")
        for name in ["target_date", "window_start", "window_end", "attended_on"]:
            frame[name] = [
                self.shifter.shift(d, pid)
                for pid, d in zip(frame["participant_id"], frame[name], strict=True)
            ]
        self.write_frame(table, frame)

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

    def screening(self) -> int:
        table = "screening"
        v = self.var
        sites = dict(Site.objects.filter(trial=self.trial).values_list("code", "name"))
        v(table, "screening_id", "Screening record id", "integer")
        v(table, "site", "Site", "category", value_labels=sites)
        v(table, "screened_on", "Date screened", "date")
        v(
            table,
            "outcome",
            "Screening outcome",
            "category",
            value_labels=dict(ScreeningRecord.Outcome.choices),
        )
        v(table, "ineligibility_reasons", "Reasons not eligible (JSON list)", "json")
        v(table, "declined_reason", "Reason for declining", "string")
        v(
            table,
            "participant_id",
            "Participant id if enrolled",
            "integer",
            missing="Empty = not enrolled",
        )
        # Voided records stay in the log, flagged: the CONSORT diagram leaves them out of
        # "assessed for eligibility" (entered in error: a duplicate, the wrong patient).
        v(
            table,
            "voided",
            gettext("Voided as entered in error (not counted as assessed in CONSORT)"),
            "boolean",
            value_labels=YES_NO,
        )
        v(table, "void_reason", gettext("Why the record was voided"), "string")
        rows = (
            ScreeningRecord.objects.filter(trial=self.trial)
            .order_by("pk")
            .values_list(
                "pk",
                "site__code",
                "screened_on",
                "outcome",
                "ineligibility_reasons",
                "declined_reason",
                "participant__id",
                "voided_at",
                "void_reason",
            )  # fmt: skip
            .iterator(chunk_size=CHUNK)
        )

        def out():
            for pk, site, screened_on, outcome, reasons, declined, pid, voided_at, why in rows:
                key = pid if pid is not None else f"s{pk}"
                yield [
                    pk, site, self.shifter.shift(screened_on, key), outcome,
                    json.dumps(reasons or [], ensure_ascii=False), declined, pid,
                    int(voided_at is not None), why,
                ]  # fmt: skip

        return self.write_rows(table, out())

    # long: the allocation log's codebook, one declaration per exported column with its
    # documented meaning, then its rows; the declarations are the codebook's text.
    def allocations(self) -> int:
        table = "allocations"
        v = self.var
        arm_note = " (blinded codes)" if self.job.blinded else ""
        per_slot = gettext(
            "Per arm: a number for an arm with allocation ratio 1, a list with one value per "
            "slot for an arm with ratio w > 1."
        )
        v(table, "sequence", "Allocation sequence number in the trial", "integer")
        v(table, "participant_id", "Participant id (database key)", "integer")
        v(
            table,
            "site",
            "Site",
            "category",
            value_labels=dict(Site.objects.filter(trial=self.trial).values_list("code", "name")),
        )
        v(table, "arm", "Arm allocated" + arm_note, "category", value_labels=self.arm_labels)
        v(
            table,
            "slot",
            gettext("Slot of the arm that the draw picked (1 to the arm's allocation ratio)"),
            "integer",
            notes=gettext(
                "Kuznetsova & Tymofyeyev (2012): an arm with allocation ratio w is w slots in "
                "minimization; counts, scores and probabilities are per slot. Always 1 with "
                "equal ratios."
            ),
        )
        v(table, "method", "Method (minimization or random)", "string")
        v(table, "factor_levels", "Factor levels used, {factor: level} (JSON)", "json")
        v(
            table,
            "counts_seen",
            "Counts before this allocation, by factor and arm (JSON)" + arm_note,
            "json",
            notes=per_slot,
        )
        v(table, "scores", "Imbalance score per arm (JSON)" + arm_note, "json", notes=per_slot)
        v(
            table,
            "probabilities",
            "Allocation probability per arm (JSON)" + arm_note,
            "json",
            notes=per_slot,
        )
        v(table, "draw", "Uniform [0, 1) draw that chose the arm", "number")
        v(
            table,
            "settings_used",
            "Minimization settings used (JSON)" + arm_note,
            "json",
            notes=self.replay_note(),
        )
        v(table, "algorithm_version", "Minimization algorithm version", "string")
        v(table, "allocated_at", "Allocated at (trial local time)", "datetime")
        rows = (
            Allocation.objects.filter(trial=self.trial)
            .order_by("sequence")
            .values_list(
                "sequence",
                "participant_id",
                "participant__site__code",
                "arm__code",
                "slot",
                "method",
                "factor_levels",
                "counts_seen",
                "scores",
                "probabilities",
                "draw",
                "settings_used",
                "algorithm_version",
                "allocated_at",
            )  # fmt: skip
            .iterator(chunk_size=CHUNK)
        )

        def dump(value):
            return json.dumps(value, ensure_ascii=False, sort_keys=True)

        def out():
            for (
                seq,
                pid,
                site,
                arm,
                slot,
                method,
                levels,
                counts,
                scores,
                probs,
                draw,
                used,
                ver,
                at,
            ) in rows:
                counts, scores, probs, used = self.allocation_json(counts, scores, probs, used)
                yield [
                    seq, pid, site, self.arm_value(arm), slot, method, dump(levels),
                    dump(counts), dump(scores), dump(probs), repr(draw), dump(used), ver,
                    self.shifter.shift(self.local(at), pid),
                ]  # fmt: skip

        return self.write_rows(table, out())

    def replay_note(self) -> str:
        """How an allocation replays from this log, or why it does not (blinded)."""
        how = gettext(
            "Settings: imbalance_measure, preferred_probability (p), "
            "initial_random_allocations, weights {factor: w}, arms (in the configured order, "
            "the order the draw walks), ratios {arm: allocation ratio} (absent in "
            "pocock-simon-1975/v1 rows: all 1). To replay a row: recount, from the earlier "
            "rows in sequence order, the participants with this row's level of each factor in "
            "each arm's slot; score each slot by the weighted imbalance after adding the "
            "participant to it; give the minimizing slots p and the others 1 - p in equal "
            "shares (every slot alike during the first initial_random_allocations, or when "
            "all tie); walk the draw over the slots in arm order, each arm's slots 1..ratio."
        )
        if self.job.blinded:
            blinded = gettext(
                "This export is blinded: the arms are listed in the order of their neutral "
                "codes, since the configured order would tell which code is which arm, so the "
                "draw cannot be replayed from it (counts and scores can)."
            )
            return f"{how} {blinded}"
        return how

    def codebook_members(self) -> None:
        # The tables' order, not the order they were built in (sms_start comes first).
        self.codebook.sort(key=lambda variable: TABLES.index(variable.table))
        rows = [x.row() for x in self.codebook]
        out = io.StringIO()
        writer = csv.DictWriter(out, CODEBOOK_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.zf.writestr("codebook.csv", out.getvalue())
        meta = {
            "trial": self.trial.code,
            "blinded": self.job.blinded,
            "dates_shifted": self.job.shift_dates,
            "date_shift": f"Each participant's dates moved by the same -{SHIFT_DAYS}..+"
            f"{SHIFT_DAYS} days"
            if self.job.shift_dates
            else "none",
            "allocation_replay": gettext(
                "The draw of a blinded export cannot be replayed: its arm order is that of "
                "the neutral codes, not the configured one (see allocations.settings_used)."
            )
            if self.job.blinded
            else gettext(
                "Every allocation replays from allocations.csv alone: see the notes on "
                "allocations.settings_used."
            ),
            "variables": rows,
        }
        self.zf.writestr("codebook.json", json.dumps(meta, ensure_ascii=False, indent=1))
        self.zf.writestr("read_data.R", r_script(self.codebook))
