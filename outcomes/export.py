"""The statistician's export bundle: one ZIP with the trial's data as CSV, Stata (.dta) and
SPSS (.sav), a codebook (CSV and JSON) and an R script that reads the CSVs with labels.

Members:
    participants.csv/.dta/.sav  wide, one row per randomized participant
    visits.csv/.dta/.sav        long, one row per participant and planned visit
    sms.csv                     long, one row per participant, SMS week and question
    screening.csv               the screening log
    allocations.csv             every allocation's inputs, counts, scores, probabilities, draw
    codebook.csv, codebook.json every variable of every table
    read_data.R                 base R: the CSVs with factor levels and variable labels

No direct identifiers: names, phone numbers, screening initials, SMS numbers and message
bodies sent to participants are never read. Raw SMS replies are the participant's own text
(the answer as typed), as the issue asks.

Blinding: a blinded export shows arms only as their neutral codes (A, B, ...), everywhere,
including the arm codes inside the allocation log's JSON (counts, scores, probabilities,
settings), whose arm lists are sorted so their order reveals nothing. Unblinded: the arm code,
labelled with the arm's name.

Date shift (optional): each participant's dates (and date-times) move by the same number of
days, -180..+180, taken from an HMAC of the participant id under a random salt made for this
export and never stored: intervals within a participant are kept, calendar dates are hidden,
and two exports shift differently (so they cannot be differenced to recover the offset).
Screenings that led to no participant are shifted by their own offset.

Memory: the long tables that grow with follow-up (SMS, screening, allocations) are streamed:
read in chunks with iterator() and written row by row into the ZIP member. The participants
and visits tables are built as DataFrames (pyreadstat writes whole frames, so Stata and SPSS
files need them in memory); they are one row per participant (per visit), a few MB even for
tens of thousands of participants. SMS long is therefore CSV only.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import math
import re
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyreadstat
from django.conf import settings
from django.utils import timezone

from outcomes import analysis_data
from outcomes.models import (
    ExportJob,
    InboundMessage,
    Instrument,
    OutboundMessage,
    OutcomeEntry,
    SmsAnswer,
    SmsQuestion,
    SmsWeek,
)
from outcomes.scoring import GLOBAL_CHOICES
from participants.models import Allocation, Participant, ScreeningRecord, Visit
from trial import blinding
from trial.models import Arm, BaselineVariable, MinimizationFactor, Site, VisitDefinition

CHUNK = analysis_data.CHUNK
SHIFT_DAYS = 180
YES_NO = {"1": "Yes", "0": "No"}
MISSING = "Empty = not recorded"


# --- Codebook -------------------------------------------------------------------------------


@dataclass
class Variable:
    table: str
    name: str
    label: str
    type: str  # string, category, integer, number, date, datetime, boolean, json
    unit: str = ""
    allowed: str = ""
    value_labels: dict[str, str] = field(default_factory=dict)
    missing: str = MISSING

    def row(self) -> dict:
        return {
            "table": self.table,
            "variable": self.name,
            "label": self.label,
            "type": self.type,
            "unit": self.unit,
            "allowed_values": self.allowed or "|".join(self.value_labels),
            "value_labels": json.dumps(self.value_labels, ensure_ascii=False)
            if self.value_labels
            else "",
            "missing_codes": self.missing,
        }


CODEBOOK_FIELDS = [
    "table", "variable", "label", "type", "unit", "allowed_values", "value_labels",
    "missing_codes",
]  # fmt: skip


# Stata allows 32 characters in a variable name (SPSS 64, R more).
MAX_NAME = 32


def safe_name(name: str) -> str:
    """A variable name valid in Stata, SPSS and R: letters, digits, underscores, at most
    32 characters (a longer one keeps its start and a short hash of the whole, so distinct
    names stay distinct; the codebook gives the label)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    name = name if re.match(r"[A-Za-z]", name) else f"v_{name}"
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        name = f"{name[: MAX_NAME - 7]}_{digest}"
    return name


# --- Date shift -----------------------------------------------------------------------------


class Shifter:
    """Per-participant date offsets from an HMAC under a random per-export salt."""

    def __init__(self, enabled: bool, salt: bytes | None = None):
        self.enabled = enabled
        self.salt = salt or secrets.token_bytes(32)

    def offset(self, key) -> int:
        if not self.enabled:
            return 0
        digest = hmac.new(self.salt, str(key).encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") % (2 * SHIFT_DAYS + 1) - SHIFT_DAYS

    def shift(self, value, key):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if value is pd.NaT:
            return None
        days = self.offset(key)
        return value + dt.timedelta(days=days) if days else value


# --- The build ------------------------------------------------------------------------------


class Builder:
    def __init__(self, job: ExportJob, zf: zipfile.ZipFile, progress: Callable[[int, str], None]):
        self.job = job
        self.trial = job.trial
        self.zf = zf
        self.progress = progress
        self.shifter = Shifter(job.shift_dates)
        self.codebook: list[Variable] = []
        self.zone = self.trial_zone()
        arms = list(Arm.objects.filter(trial=self.trial).order_by("order", "pk"))
        if job.blinded:
            codes = blinding.blind_codes(self.trial)
            self.arm_map = {arm.code: codes[arm.pk] for arm in arms}
            self.arm_labels = {c: f"Arm {c}" for c in sorted(self.arm_map.values())}
        else:
            self.arm_map = {arm.code: arm.code for arm in arms}
            self.arm_labels = {arm.code: arm.name for arm in arms}

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

    def csv_member(self, name: str, header: list[str], rows: Iterable[list]) -> int:
        count = 0
        with self.zf.open(name, "w", force_zip64=True) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            writer = csv.writer(text)
            writer.writerow(header)
            for row in rows:
                writer.writerow([_cell(v) for v in row])
                count += 1
            text.flush()
            text.detach()
        return count

    def frame_members(self, table: str, frame: pd.DataFrame) -> None:
        """CSV, .dta and .sav of a frame whose columns are all in the codebook."""
        variables = {v.name: v for v in self.codebook if v.table == table}
        columns = list(frame.columns)
        self.csv_member(f"{table}.csv", columns, (list(r) for r in _csv_rows(frame, variables)))
        stat = pd.DataFrame(index=range(len(frame)))
        value_labels: dict[str, dict] = {}
        for name in columns:
            variable = variables[name]
            values = frame[name].reset_index(drop=True)
            if variable.value_labels:
                codes = stat_codes(variable.value_labels)
                as_text = values.map(_text)
                stat[name] = as_text.map(codes).astype("float64")
                value_labels[name] = {
                    float(codes[c]): label for c, label in variable.value_labels.items()
                }
            elif variable.type in {"integer", "number"}:
                stat[name] = pd.to_numeric(values, errors="coerce").astype("float64")
            elif variable.type == "date":
                # Python dates become Stata %td / SPSS DATE (datetime64 would be a date-time).
                stat[name] = values.map(_date).astype(object)
            elif variable.type == "datetime":
                # Nanoseconds: pyreadstat reads other resolutions as if they were (→ 1970).
                stat[name] = pd.to_datetime(values, errors="coerce").astype("datetime64[ns]")
            else:
                stat[name] = values.map(_text).astype(object)
        labels = [variables[c].label[:80] for c in columns]
        with tempfile.TemporaryDirectory(dir=self.zf_dir) as tmp:
            dta = Path(tmp) / f"{table}.dta"
            sav = Path(tmp) / f"{table}.sav"
            pyreadstat.write_dta(
                stat, str(dta), column_labels=labels, variable_value_labels=value_labels
            )
            pyreadstat.write_sav(
                stat, str(sav), column_labels=labels, variable_value_labels=value_labels
            )
            self.zf.write(dta, f"{table}.dta")
            self.zf.write(sav, f"{table}.sav")

    @property
    def zf_dir(self) -> str:
        return str(Path(self.zf.filename).parent)

    def arm_value(self, code):
        return self.arm_map.get(code) if code else None

    def remap_arms(self, value):
        """Arm codes inside allocation JSON as the export may show them."""
        if self.arm_map == {k: k for k in self.arm_map}:
            return value
        if isinstance(value, dict):
            return {self.arm_map.get(k, k): self.remap_arms(v) for k, v in value.items()}
        if isinstance(value, list):
            items = [self.remap_arms(v) for v in value]
            if value and all(isinstance(v, str) and v in self.arm_map for v in value):
                items.sort()  # the arms' configured order would reveal the mapping
            return items
        if isinstance(value, str):
            return self.arm_map.get(value, value)
        return value

    # -- tables
    def participants(self) -> None:
        table = "participants"
        frame = analysis_data.analysis_frame(self.trial)
        sites = dict(Site.objects.filter(trial=self.trial).values_list("code", "name"))
        status = dict(Participant.Status.choices)
        v = self.var
        v(table, "participant_id", "Participant id (database key)", "integer")
        v(table, "number", "Participant number", "string")
        v(table, "site", "Site", "category", value_labels=sites)
        v(
            table,
            "arm",
            "Randomized arm" + (" (blinded code)" if self.job.blinded else ""),
            "category",
            value_labels=self.arm_labels,
        )
        v(table, "randomized_on", "Randomization date", "date")
        v(table, "status", "Participant status", "category", value_labels=status)
        v(
            table,
            "status_changed_on",
            "Date of the last status change (withdrawal, loss...)",
            "date",
        )
        v(
            table,
            "followup_allowed",
            "Follow-up data may still be collected",
            "boolean",
            value_labels=YES_NO,
        )
        for factor in MinimizationFactor.objects.filter(trial=self.trial).prefetch_related(
            "levels"
        ):
            levels = {lvl.code: lvl.label for lvl in factor.levels.order_by("order", "pk")}
            v(
                table,
                f"factor_{factor.code}",
                f"Minimization factor: {factor.name}",
                "category",
                value_labels=levels,
            )
        for bv in BaselineVariable.objects.filter(trial=self.trial):
            v(
                table,
                f"bl_{bv.code}",
                f"Baseline: {bv.label}",
                "number",
                unit=bv.unit,
                allowed=f"{bv.min_value}..{bv.max_value}",
            )
        visits = list(
            VisitDefinition.objects.filter(trial=self.trial).order_by("order", "offset_days")
        )
        instruments = list(Instrument.objects.filter(trial=self.trial).order_by("order", "pk"))
        not_done = dict(OutcomeEntry.NotDone.choices)
        global_labels = {str(k): label for k, label in GLOBAL_CHOICES}
        visit_outcomes = dict(Visit.Outcome.choices)
        for vd in visits:
            v(
                table,
                f"visit_{vd.code}_outcome",
                f"{vd.label}: visit outcome",
                "category",
                value_labels=visit_outcomes,
            )
            v(table, f"visit_{vd.code}_date", f"{vd.label}: date attended", "date")
            v(
                table,
                f"visit_{vd.code}_in_window",
                f"{vd.label}: attended in window",
                "boolean",
                value_labels=YES_NO,
            )
            for ins in instruments:
                base = f"{ins.code}_{vd.code}"
                if ins.kind == Instrument.Kind.GLOBAL_7:
                    v(
                        table,
                        base,
                        f"{ins.name}, {vd.label}",
                        "category",
                        value_labels=global_labels,
                    )
                    v(
                        table,
                        f"{ins.code}_improved_{vd.code}",
                        f"{ins.name}, {vd.label}: improved (much better or better)",
                        "boolean",
                        value_labels=YES_NO,
                    )
                else:
                    v(table, base, f"{ins.name}, {vd.label}: score", "number")
                if ins.kind == Instrument.Kind.EQ5D_3L:
                    v(
                        table,
                        f"{ins.code}_vas_{vd.code}",
                        f"{ins.name}, {vd.label}: VAS",
                        "integer",
                        allowed="0..100",
                    )
                v(
                    table,
                    f"{base}_not_done",
                    f"{ins.name}, {vd.label}: reason not done",
                    "category",
                    value_labels=not_done,
                    missing="Empty = done or not recorded",
                )
        columns = [x.name for x in self.codebook if x.table == table]
        out = pd.DataFrame(index=frame.index)
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
            vframe = analysis_data.visits_frame(self.trial)
            pivots = {"outcome": "outcome", "date": "attended_on", "in_window": "in_window"}
            for column, source in pivots.items():
                wide = (
                    vframe.pivot_table(
                        index="participant_id", columns="visit", values=source, aggfunc="first"
                    )
                    if len(vframe)
                    else pd.DataFrame()
                )
                for code in wide.columns:
                    extra[f"visit_{code}_{column}"] = wide[code]
        for name in columns:
            if name in extra:
                out[name] = extra[name].reindex(frame.index)
            elif name in frame.columns:
                out[name] = frame[name]
            else:
                out[name] = None
        # Columns the frames have but the codebook does not know (e.g. a baseline value
        # without a BaselineVariable) are still exported, described generically.
        for name in frame.columns:
            if name not in out.columns:
                v(table, name, name, "string")
                out[name] = frame[name]
        out = out.astype(object).where(out.notna(), None)
        out["arm"] = out["arm"].map(self.arm_value)
        for name in [c for c in out.columns if self._type(table, c) in {"date", "datetime"}]:
            out[name] = [
                self.shifter.shift(d, pid) for pid, d in zip(out.index, out[name], strict=True)
            ]
        out.columns = [safe_name(c) for c in out.columns]
        for variable in self.codebook:
            variable.name = safe_name(variable.name)
        self.frame_members(table, out.reset_index(drop=True))

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
        frame = frame.astype(object).where(frame.notna(), None)
        for name in ["target_date", "window_start", "window_end", "attended_on"]:
            frame[name] = [
                self.shifter.shift(d, pid)
                for pid, d in zip(frame["participant_id"], frame[name], strict=True)
            ]
        self.frame_members(table, frame)

    def sms(self) -> int:
        table = "sms"
        v = self.var
        questions = list(
            SmsQuestion.objects.filter(trial=self.trial)
            .order_by("order", "pk")
            .values_list("pk", "code", "label", "min_value", "max_value")
        )
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
        v(table, "raw_reply", "First reply received for the question, as typed", "string")
        v(
            table,
            "reply_kind",
            "How the first reply was read",
            "category",
            value_labels=dict(InboundMessage.Kind.choices),
        )
        header = [x.name for x in self.codebook if x.table == table]
        return self.csv_member(f"{table}.csv", header, self._sms_rows(questions))

    def _sms_rows(self, questions):
        weeks = (
            SmsWeek.objects.filter(trial=self.trial)
            .order_by("participant_id", "week")
            .values_list("pk", "participant_id", "week", "send_date")
            .iterator(chunk_size=CHUNK)
        )
        batch = []
        for row in weeks:
            batch.append(row)
            if len(batch) >= CHUNK:
                yield from self._sms_batch(batch, questions)
                batch = []
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
        header = [x.name for x in self.codebook if x.table == table]
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
            )  # fmt: skip
            .iterator(chunk_size=CHUNK)
        )

        def out():
            for pk, site, screened_on, outcome, reasons, declined, pid in rows:
                key = pid if pid is not None else f"s{pk}"
                yield [
                    pk, site, self.shifter.shift(screened_on, key), outcome,
                    json.dumps(reasons or [], ensure_ascii=False), declined, pid,
                ]  # fmt: skip

        return self.csv_member(f"{table}.csv", header, out())

    def allocations(self) -> int:
        table = "allocations"
        v = self.var
        arm_note = " (blinded codes)" if self.job.blinded else ""
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
        v(table, "method", "Method (minimization or random)", "string")
        v(table, "factor_levels", "Factor levels used, {factor: level} (JSON)", "json")
        v(
            table,
            "counts_seen",
            "Counts before this allocation, by factor and arm (JSON)" + arm_note,
            "json",
        )
        v(table, "scores", "Imbalance score per arm (JSON)" + arm_note, "json")
        v(table, "probabilities", "Allocation probability per arm (JSON)" + arm_note, "json")
        v(table, "draw", "Uniform [0, 1) draw that chose the arm", "number")
        v(table, "settings_used", "Minimization settings used (JSON)" + arm_note, "json")
        v(table, "algorithm_version", "Minimization algorithm version", "string")
        v(table, "allocated_at", "Allocated at (trial local time)", "datetime")
        header = [x.name for x in self.codebook if x.table == table]
        rows = (
            Allocation.objects.filter(trial=self.trial)
            .order_by("sequence")
            .values_list(
                "sequence",
                "participant_id",
                "participant__site__code",
                "arm__code",
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
            return json.dumps(self.remap_arms(value), ensure_ascii=False, sort_keys=True)

        def out():
            for (
                seq,
                pid,
                site,
                arm,
                method,
                levels,
                counts,
                scores,
                probs,
                draw,
                used,
                ver,
                at,
            ) in rows:  # noqa: E501
                yield [
                    seq, pid, site, self.arm_value(arm), method, dump(levels), dump(counts),
                    dump(scores), dump(probs), repr(draw), dump(used), ver,
                    self.shifter.shift(self.local(at), pid),
                ]  # fmt: skip

        return self.csv_member(f"{table}.csv", header, out())

    def codebook_members(self) -> None:
        rows = [x.row() for x in self.codebook]
        self.csv_member(
            "codebook.csv", CODEBOOK_FIELDS, ([r[f] for f in CODEBOOK_FIELDS] for r in rows)
        )
        meta = {
            "trial": self.trial.code,
            "blinded": self.job.blinded,
            "dates_shifted": self.job.shift_dates,
            "date_shift": f"Each participant's dates moved by the same -{SHIFT_DAYS}..+"
            f"{SHIFT_DAYS} days"
            if self.job.shift_dates
            else "none",
            "variables": rows,
        }
        self.zf.writestr("codebook.json", json.dumps(meta, ensure_ascii=False, indent=1))
        self.zf.writestr("read_data.R", r_script(self.codebook))


def stat_codes(value_labels: dict[str, str]) -> dict[str, int]:
    """The numbers standing for a category's codes in Stata and SPSS: the codes themselves
    when they are integers (0/1 for yes/no, 1-7 for the global assessment), else 1, 2, ...
    in the codebook's order."""
    if all(re.fullmatch(r"-?\d+", code) for code in value_labels):
        return {code: int(code) for code in value_labels}
    return {code: n for n, code in enumerate(value_labels, 1)}


def _date(value) -> dt.date | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _csv_rows(frame: pd.DataFrame, variables: dict[str, Variable]):
    kinds = [variables[c].type for c in frame.columns]
    for row in frame.itertuples(index=False, name=None):
        yield [
            _text(value) if kind in {"boolean", "category", "integer", "number"} else value
            for value, kind in zip(row, kinds, strict=True)
        ]


# --- R --------------------------------------------------------------------------------------


def _r(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid R string literal


def r_script(codebook: list[Variable]) -> str:
    lines = [
        "# Reads the export's CSV files with factor levels and variable labels (base R).",
        '# Run from the folder holding the unzipped files: source("read_data.R")',
        "",
    ]
    tables: dict[str, list[Variable]] = {}
    for variable in codebook:
        tables.setdefault(variable.table, []).append(variable)
    for table, variables in tables.items():
        classes = ", ".join(
            f'{x.name} = "character"'
            for x in variables
            if x.type in {"string", "category", "json", "date", "datetime", "boolean"}
        )
        lines.append(
            f'{table} <- read.csv({_r(table + ".csv")}, na.strings = "", '
            f'colClasses = c({classes}), encoding = "UTF-8")'
        )
        for x in variables:
            col = f"{table}${x.name}"
            if x.type == "date":
                lines.append(f"{col} <- as.Date({col})")
            elif x.type == "datetime":
                lines.append(f'{col} <- as.POSIXct({col}, format = "%Y-%m-%dT%H:%M:%OS")')
            if x.value_labels:
                levels = ", ".join(_r(k) for k in x.value_labels)
                labels = ", ".join(_r(v) for v in x.value_labels.values())
                lines.append(f"{col} <- factor({col}, levels = c({levels}), labels = c({labels}))")
            lines.append(f'attr({col}, "label") <- {_r(x.label)}')
        lines.append("")
    return "\n".join(lines)


# --- Entry point ----------------------------------------------------------------------------


def export_build(job: ExportJob) -> Path:
    """Write the job's ZIP into settings.EXPORT_DIR, updating progress; returns its path."""
    directory = Path(settings.EXPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    name = f"{job.trial.code}-export-{job.pk}-{stamp}.zip"
    final = directory / f"{job.pk}-{secrets.token_hex(8)}.zip"
    partial = final.with_suffix(".partial")

    def progress(percent: int, step: str) -> None:
        ExportJob.objects.filter(pk=job.pk).update(progress=percent, step=step)

    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            builder = Builder(job, zf, progress)
            progress(5, "Participants (wide)")
            builder.participants()
            progress(30, "Visits")
            builder.visits()
            progress(45, "Weekly SMS")
            builder.sms()
            progress(75, "Screening log")
            builder.screening()
            progress(85, "Allocation log")
            builder.allocations()
            progress(95, "Codebook and R script")
            builder.codebook_members()
        partial.rename(final)
    finally:
        partial.unlink(missing_ok=True)
    job.file_name = name
    job.file_path = str(final)
    job.size = final.stat().st_size
    return final
