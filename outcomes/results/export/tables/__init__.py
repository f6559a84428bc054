"""The export's tables, read from the database in chunks and written through
outcomes.results.export.members: participants (wide), visits (long), SMS (long), screening log,
allocation log, and the codebook of them all.

No direct identifiers: names, phone numbers, screening initials, SMS numbers and message
bodies sent to participants are never read. Raw SMS replies are exported: they are the
participant's own answer as typed, from which the reading of each reply can be checked.

Blinding: a blinded export shows arms only as their neutral codes (A, B, ...), everywhere,
including the arm codes inside the allocation log's JSON (counts, scores, probabilities,
settings). Unblinded: the arm code, labelled with the arm's name.

Modules: base (the state the tables share and the helpers that write them), people
(participants and visits), sms, logs (screening and allocations).
"""

from __future__ import annotations

import csv
import io
import json

from django.utils.translation import gettext

from outcomes.results.export.codebook import CODEBOOK_FIELDS, r_script
from outcomes.results.export.shift import SHIFT_DAYS
from outcomes.results.export.tables.base import TABLES
from outcomes.results.export.tables.logs import LogTables
from outcomes.results.export.tables.people import PeopleTables
from outcomes.results.export.tables.sms import SmsTable

__all__ = ["Builder"]


class Builder(PeopleTables, SmsTable, LogTables):
    """Every table of the export bundle, and its codebook (outcomes.results.export.export_build
    calls them in turn)."""

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
