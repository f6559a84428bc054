"""The state every export table shares: the job, the ZIP, the codebook being written, the
arms as the job's reader may see them, and the helpers that write a table's members."""

from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from collections.abc import Callable, Iterable

import pandas as pd
from django.conf import settings
from django.utils import timezone

from outcomes.results import analysis_data
from outcomes.results.export import sms_copy
from outcomes.results.export.codebook import Variable
from outcomes.results.export.frames import frame_members
from outcomes.results.export.members import TableMember
from outcomes.results.export.shift import Shifter
from outcomes.results.models import ExportJob
from trial import blinding

CHUNK = analysis_data.CHUNK
# The tables in the codebook's order (whatever order they are built in).
TABLES = ("participants", "visits", "sms", "screening", "allocations")


class TableBuilder:
    """What every table of one export job shares (Builder puts the tables together)."""

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

    def _type(self, table: str, name: str) -> str:
        for variable in self.codebook:
            if variable.table == table and variable.name == name:
                return variable.type
        return "string"
