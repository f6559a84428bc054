"""How many of the values an ITT analysis used were measured outside their visit window,
per outcome and visit, for the results page.

An outcome recorded at a visit attended before its window opened (possible only with a
confirmed reason, participants.schedule.attended_early) or after it closed is analysed
like any other (intention to treat: nothing recorded is dropped); the page says how many
there were, so a reader can judge the time point (CONSORT 2010 item 6a: outcomes defined
with "how and when they were assessed")."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from outcomes.instruments.models import Instrument
from outcomes.results import selectors
from trial.models import Trial


@dataclass(frozen=True)
class OutsideWindow:
    """Of the values analysed for one outcome at one visit (available cases), how many
    were measured at a visit attended outside its window."""

    label: str
    visit: str
    n_analysed: int
    n_outside: int


def outside_window(trial: Trial, data: pd.DataFrame, visits: pd.DataFrame, results) -> list:
    """One OutsideWindow per result (itt.ContinuousResult or BinaryResult), in order.

    `data` is the analysis frame (outcomes.results.analysis_data.analysis_frame, indexed by
    participant); `visits` the follow-up visits with their stored in-window flag
    (selectors_dashboard.consort_visits), which participants.schedule.in_window set, and
    whether anything was recorded ahead of the window."""
    # Attended outside the window, or (still open) with outcomes entered ahead of it.
    outside = visits[(visits["in_window"] == False) | (visits["early"] == True)]  # noqa: E712
    ids = {code: pd.Index(group["participant_id"]) for code, group in outside.groupby("visit")}
    # The column each analysis read, and its visit, named as the dashboard names them.
    visit_codes = [code for code, _ in selectors.followup_definitions(trial)]
    visit_of = {}
    for instrument in Instrument.objects.filter(trial=trial).values_list("code", flat=True):
        for code in visit_codes:
            for name in ("{i}_{v}", "{i}_vas_{v}", "{i}_improved_{v}"):
                visit_of[name.format(i=instrument, v=code)] = code
    rows = []
    for result in results:
        analysed = data[result.outcome].notna()
        measured_outside = ids.get(visit_of.get(result.outcome))
        n_outside = (
            int((analysed & data.index.isin(measured_outside)).sum())
            if measured_outside is not None
            else 0
        )
        n_analysed = sum(arm.n_analysed for arm in result.arms)
        rows.append(OutsideWindow(result.label, result.visit, n_analysed, n_outside))
    return rows
