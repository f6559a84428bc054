"""The participants table (wide, one row per randomized participant) and the visits table
(long, one row per participant and planned visit), both built as DataFrames from
outcomes.results.analysis_data."""

from __future__ import annotations

import pandas as pd

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.scoring import GLOBAL_CHOICES
from outcomes.results import analysis_data, participants_table
from outcomes.results.export.codebook import YES_NO, safe_name
from outcomes.results.export.tables.base import CHUNK, TableBuilder
from participants.models import Participant, Visit
from trial.models import BaselineVariable, MinimizationFactor, Site, VisitDefinition


class PeopleTables(TableBuilder):
    """The participants and visits tables (Builder)."""

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
