"""The screening log and the allocation log, with the allocation log's arm codes shown as the
export's reader may see them."""

from __future__ import annotations

import json

from django.utils.translation import gettext

from outcomes.results.export.codebook import YES_NO
from outcomes.results.export.tables.base import CHUNK, TableBuilder
from participants.models import Allocation, ScreeningRecord
from trial.models import Site


class LogTables(TableBuilder):
    """The screening and allocation logs (Builder)."""

    def allocation_json(self, counts, scores, probabilities, used) -> list:
        """The allocation's JSON fields with arm codes as the export shows them, by their
        known shapes only (counts {factor: {arm: n}}, scores and probabilities {arm: x},
        settings {"arms": [arm, ...], "ratios": {arm: w}, ...}), so a factor or level code
        that happens to equal an arm code is left alone.

        The arm list keeps the configured order, which the draw walks (the allocation
        replays from the log), unless the export is blinded: then it is sorted, because the
        configured order would reveal which code is which arm, and the draw does not
        replay (the codebook says so)."""
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
