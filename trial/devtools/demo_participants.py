"""The demo trial's participants: screened, consented, randomized and followed up through
the real services, with recruitment, attrition and outcomes shaped on the reference trial,
and the screening log's patients who were not randomized. Used by `manage.py seed_demo`."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass

import phonenumbers
from django.contrib.auth.models import User

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.scoring import RMDQ_ITEMS
from outcomes.instruments.selectors import baseline_instruments
from outcomes.instruments.services import (
    EntryInput,
    participant_record_baseline_with_instruments,
    visit_record_outcomes,
)
from participants import schedule, services
from participants.models import Participant, Visit
from trial.models import Trial

# --- Demo participants --------------------------------------------------------------------------
#
# Shaped on the reference trial (BMC Medicine 2012;10:22, n = 100): both arms improved and
# did not differ by a clinically important amount. Pain (0–10) fell from about 6.5 at
# baseline to about 4.5–5 at 10 weeks and about 4 at 1 year; Roland–Morris (0–23) from
# about 12.5 to about 9.5 and 8; the EQ-5D index rose from about 0.6 to about 0.7; about
# 40–45% were "much better" or "better" at 10 weeks and about 50% at 1 year; 87 were
# analysed at 10 weeks and 96 at 1 year.

# Recruitment as (fraction of the participants, days before today), interpolated. The demo
# trial is in its last months of follow-up: recruitment closed about 14 months ago, so every
# 10-week visit and nearly every 1-year visit is history (the dashboard shows the reference
# trial's numbers analysed: about 87 at 10 weeks and 96 at 1 year), while the last few
# participants' 1-year visits are due, overdue or coming up and their weekly SMS questions
# are still being sent (the coordinator's worklist and SMS screens have work).
RECRUITMENT_CURVE = ((0.0, 900), (0.98, 500), (1.0, 424))
# Baseline pain of eligible patients (4–10), mean about 6.5.
BASELINE_PAIN_WEIGHTS = {4: 10, 5: 16, 6: 20, 7: 18, 8: 14, 9: 8, 10: 4}
BASELINE_PAIN_MEAN, BASELINE_RMDQ_MEAN = 6.6, 12.5
# Mean (pain, Roland–Morris) at each follow-up visit, by arm: a small difference only.
FOLLOWUP_MEANS = {
    "w10": {"rest": (5.0, 10.0), "exercise": (4.8, 9.6)},
    "y1": {"rest": (4.1, 8.2), "exercise": (4.2, 8.3)},
}
# Share of the closed follow-up windows whose data were not obtained (missed, or every
# instrument not done); the status changes below lose a few more. Exact shares, drawn
# without replacement, so the demo's attrition does not depend on the luck of the seed.
# At 1 year none beyond those: the withdrawal without follow-up, the loss and the death below
# (and the visits still open) leave about 96 analysed, as in the reference trial.
VISIT_ATTRITION = {"w10": 0.14, "y1": 0.0}
DEFAULT_VISIT_ATTRITION = 0.05
# Global assessment: the answer for an improvement in pain (baseline − now, plus noise) of
# at least this much; below the last, "much worse".
GLOBAL_THRESHOLDS = ((4.4, 1), (2.3, 2), (0.8, 3), (-0.6, 4), (-1.6, 5), (-3.0, 6))
# (status, reason, follow-up allowed): one of each, among participants whose 1-year window
# has closed.
STATUS_EVENTS = (
    ("withdrawn", "No longer wishes to take part", False),
    ("withdrawn", "Stopped the allocated treatment; still answers follow-up", True),
    ("lost", "Not reachable by phone, letter or e-mail", None),
    ("deceased", "Died (unrelated to the trial)", None),
)


@dataclass(frozen=True)
class _Course:
    """A demo participant's baseline and how well they fare (shared by their follow-ups)."""

    pain: int
    rmdq: int
    trait: float


def enroll_and_randomize_demo_participants(trial: Trial, count: int, *, seed: int = 2043) -> int:
    """Screen, consent, record baseline and randomize `count` plausible participants
    through the real services, with recruitment spread over the past ~30 months, and
    record their follow-up as a trials unit would have: outcome data at attended visits,
    missed visits, visits still due, and a few withdrawals, a loss and a death.

    The services randomize "now"; a demo needs history, so each participant's
    randomization date is then moved into the past and its visits re-planned from it
    (`_backdate_for_demo`, demo data only). Allocation rows keep their true creation time.

    Dates are relative to today, so the same seed gives the same data on any day. The
    default seed is one whose arm means and shares improved sit close to the reference
    trial's (with 50 per arm, chance alone moves an arm's mean pain by ±0.6).
    """

    rng = random.Random(seed)
    by = User.objects.get(username="manager")
    instruments = baseline_instruments(trial)
    due_at = _instruments_by_visit(trial)
    sites = list(trial.sites.all())
    criteria = list(trial.criteria.all())
    document = trial.consent_documents.filter(active=True).first()
    today = services.trial_today(trial)
    count = max(0, min(count, trial.target_sample_size - trial.allocation_count))
    dates = _demo_randomization_dates(today, count, rng)
    # Status changes among participants whose 1-year window has long closed.
    followed = [i for i, day in enumerate(dates) if (today - day).days > 490]
    chosen = rng.sample(followed, min(len(STATUS_EVENTS), len(followed)))
    events = dict(zip(chosen, STATUS_EVENTS, strict=False))
    no_data = _demo_visits_without_data(trial, dates, today, set(events), rng)
    for i, randomized_on in enumerate(dates):
        screened_on = randomized_on - dt.timedelta(days=rng.randint(0, 7))
        answers = {c.pk: not c.ineligible_answer for c in criteria}
        screening, _ = services.screening_record(
            trial=trial,
            site=rng.choice(sites),
            initials=rng.choice(["AB", "JH", "KL", "MN", "SP", "TR", "UV", "EO"]),
            screened_on=screened_on,
            answers=answers,
            by=by,
        )
        participant = services.participant_enroll(
            screening=screening, consent_date=screened_on, consent_document=document, by=by
        )
        course = _demo_course(rng)
        participant_record_baseline_with_instruments(
            participant=participant,
            full_name=f"Demo Participant {i + 1}",
            phone=_demo_phone(rng),
            sms_language="en" if rng.random() < 0.15 else "da",
            values={"age": rng.randint(18, 60)},  # pain: from the pain instrument
            chosen_levels={
                "modic": rng.choice(["type1", "type2"]),
                "sex": rng.choice(["female", "male"]),
            },
            entries=_demo_baseline_entries(instruments, course, rng),
            by=by,
        )
        allocation, _ = services.participant_randomize(participant=participant, by=by, rng=rng)
        _backdate_for_demo(participant.pk, randomized_on, trial)
        _simulate_followup(
            participant.pk, today, rng, by,
            course=course, arm=allocation.arm.code, due_at=due_at, event=events.get(i),
            no_data=no_data[i],
        )  # fmt: skip
    return count


def _demo_randomization_dates(today: dt.date, count: int, rng: random.Random) -> list[dt.date]:
    """Randomization dates along RECRUITMENT_CURVE, oldest first, so that sequence numbers
    follow the (backdated) randomization dates."""
    days_ago = []
    for i in range(count):
        t = i / max(count - 1, 1)
        for (t0, d0), (t1, d1) in itertools.pairwise(RECRUITMENT_CURVE):
            if t <= t1:
                days_ago.append(d0 + (d1 - d0) * (t - t0) / (t1 - t0))
                break
    return sorted(today - dt.timedelta(days=round(d + rng.uniform(-2, 2))) for d in days_ago)


def _demo_visits_without_data(
    trial: Trial, dates: list[dt.date], today: dt.date, exclude: set[int], rng: random.Random
) -> list[set[str]]:
    """For each participant, the codes of the follow-up visits whose data will not be
    obtained: VISIT_ATTRITION of those whose window has closed (among participants
    without a status change, who lose theirs anyway)."""
    out: list[set[str]] = [set() for _ in dates]
    for d in trial.visit_definitions.filter(at_randomization=False):
        closed = [
            i
            for i, day in enumerate(dates)
            if i not in exclude and (today - day).days > d.offset_days + d.window_after
        ]
        share = VISIT_ATTRITION.get(d.code, DEFAULT_VISIT_ATTRITION)
        for i in rng.sample(closed, round(share * len(closed))):
            out[i].add(d.code)
    return out


def _instruments_by_visit(trial: Trial) -> dict[int, list]:
    """The instruments due at each visit definition (id), in form order."""

    due: dict[int, list] = {}
    instruments = (
        Instrument.objects.filter(trial=trial)
        .select_related("value_set")
        .prefetch_related("visits")
        .order_by("order", "pk")
    )
    for instrument in instruments:
        for definition in instrument.visits.all():
            due.setdefault(definition.pk, []).append(instrument)
    return due


def _clip(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def _demo_course(rng: random.Random) -> _Course:
    """Baseline pain of an eligible patient (4–10) and a matching disability."""
    pain = rng.choices(list(BASELINE_PAIN_WEIGHTS), weights=BASELINE_PAIN_WEIGHTS.values())[0]
    rmdq = _clip(BASELINE_RMDQ_MEAN + 1.4 * (pain - BASELINE_PAIN_MEAN) + rng.gauss(0, 3.5), 0, 23)
    return _Course(pain=pain, rmdq=rmdq, trait=rng.gauss(0, 1))


def _demo_followup_scores(
    course: _Course, visit_code: str, arm: str, rng: random.Random
) -> tuple[int, int]:
    """(pain, Roland–Morris) at a follow-up visit: the arm's mean for the visit, higher for
    those worse at baseline, and the participant's own course plus noise."""
    by_arm = FOLLOWUP_MEANS.get(visit_code) or FOLLOWUP_MEANS[max(FOLLOWUP_MEANS)]
    mean_pain, mean_rmdq = by_arm.get(arm) or next(iter(by_arm.values()))
    z = 0.75 * course.trait + 0.66 * rng.gauss(0, 1)
    pain = _clip(mean_pain + 0.45 * (course.pain - BASELINE_PAIN_MEAN) + 2.0 * z, 0, 10)
    rmdq = _clip(
        mean_rmdq
        + 1.4 * (pain - mean_pain)
        + 0.35 * (course.rmdq - BASELINE_RMDQ_MEAN)
        + rng.gauss(0, 2.8),
        0,
        23,
    )
    return pain, rmdq


def _demo_eq5d(pain: int, rmdq: int, rng: random.Random) -> dict:
    """EQ-5D-3L levels and VAS in keeping with the pain and disability."""
    if pain == 0 or (pain <= 2 and rng.random() < 0.5):
        pd = 1
    elif pain >= 8 and rng.random() < (pain - 6) / 5:
        pd = 3
    else:
        pd = 2
    ua = 3 if rmdq >= 19 and rng.random() < 0.3 else 2 if rmdq > rng.uniform(3, 10) else 1
    ad = 3 if rng.random() < 0.02 else 2 if rng.random() < 0.1 + 0.04 * pain else 1
    return {
        "MO": 2 if rmdq >= rng.uniform(4, 14) else 1,
        "SC": 2 if rmdq > rng.uniform(12, 30) else 1,
        "UA": ua,
        "PD": pd,
        "AD": ad,
        "vas": _clip(rng.gauss(88 - 5 * pain - 0.6 * rmdq, 10), 0, 100),
    }


def _demo_global(improvement: float, rng: random.Random) -> int:
    """The global assessment (1 much better … 7 much worse) for a fall in pain."""
    felt = improvement + rng.gauss(0, 1.3)
    return next((answer for low, answer in GLOBAL_THRESHOLDS if felt >= low), 7)


def _demo_entry(instrument, *, pain: int, rmdq: int, baseline_pain: int, rng: random.Random):
    """One instrument's responses, in the format its form gives (outcomes.instruments.forms)."""

    kind = instrument.kind
    if kind == Instrument.Kind.PAIN_NRS:
        return EntryInput(instrument, {"value": pain})
    if kind == Instrument.Kind.RMDQ:
        yes = set(rng.sample(range(RMDQ_ITEMS), rmdq))
        return EntryInput(instrument, {"items": [n in yes for n in range(RMDQ_ITEMS)]})
    if kind == Instrument.Kind.EQ5D_3L:
        return EntryInput(instrument, _demo_eq5d(pain, rmdq, rng))
    if kind == Instrument.Kind.GLOBAL_7:
        return EntryInput(instrument, {"answer": _demo_global(baseline_pain - pain, rng)})
    raise ValueError(f"no demo responses for {kind}")


def _demo_baseline_entries(instruments, course: _Course, rng: random.Random) -> list:
    """Plausible baseline questionnaires for an eligible patient (pain 4–10): more pain,
    more disability and worse health; now and then a questionnaire not done (never the pain
    rating, which randomization needs)."""

    entries = []
    for instrument in instruments:
        if instrument.baseline_variable_id is None and rng.random() < 0.04:
            # The patient is there at enrollment, so never "not reached".
            reason = rng.choice(["refused", "too_ill", "other"])
            note = "Ran out of time at the visit" if reason == OutcomeEntry.NotDone.OTHER else ""
            entries.append(EntryInput(instrument, not_done=reason, not_done_note=note))
        elif instrument.kind == Instrument.Kind.GLOBAL_7:
            # Not due at baseline in the demo (it asks about change); kept for other
            # configurations.
            entries.append(
                EntryInput(
                    instrument,
                    not_done=OutcomeEntry.NotDone.OTHER,
                    not_done_note="Not asked at baseline",
                )
            )
        else:
            entries.append(
                _demo_entry(
                    instrument,
                    pain=course.pain,
                    rmdq=course.rmdq,
                    baseline_pain=course.pain,
                    rng=rng,
                )  # fmt: skip
            )
    return entries


def _demo_followup_entries(
    instruments, course: _Course, visit_code: str, arm: str, rng: random.Random
) -> list:
    """The questionnaires of an attended follow-up visit; now and then one other than the
    primary outcome not done, with the reason."""

    pain, rmdq = _demo_followup_scores(course, visit_code, arm, rng)
    entries = []
    for instrument in instruments:
        if not instrument.primary and rng.random() < 0.03:
            reason = rng.choice(["refused", "too_ill", "other"])
            note = "Page left blank in the returned form" if reason == "other" else ""
            entries.append(EntryInput(instrument, not_done=reason, not_done_note=note))
        else:
            entries.append(
                _demo_entry(instrument, pain=pain, rmdq=rmdq, baseline_pain=course.pain, rng=rng)
            )
    if entries and all(e.not_done for e in entries):  # attended: something was recorded
        entries[0] = _demo_entry(
            instruments[0], pain=pain, rmdq=rmdq, baseline_pain=course.pain, rng=rng
        )
    return entries


def _backdate_for_demo(participant_id: int, randomized_on: dt.date, trial: Trial) -> None:
    """Demo data only: move a fresh randomization into the past and re-plan its visits."""

    randomized_at = dt.datetime.combine(randomized_on, dt.time(10, 0), tzinfo=trial.zone)
    Participant.objects.filter(pk=participant_id).update(
        randomized_at=randomized_at, randomized_on=randomized_on
    )
    for visit in Visit.objects.filter(participant_id=participant_id).select_related("definition"):
        d = visit.definition
        (plan,) = schedule.plan(
            randomized_on,
            [schedule.VisitSpec(d.code, d.offset_days, d.window_before, d.window_after)],
        )
        Visit.objects.filter(pk=visit.pk).update(
            target_date=plan.target,
            window_start=plan.window_start,
            window_end=plan.window_end,
            attended_on=randomized_on if visit.attended_on else None,
        )


def _visit_fate(
    visit, today: dt.date, rng: random.Random, *, no_data: bool
) -> tuple[str, dt.date | None]:
    """What has happened at a visit whose window has opened, and when: ("attended", day),
    ("missed", day) or ("not_done", day) — every instrument not done, so the visit is
    missed — or ("open", None) while it is due, or overdue and not yet chased."""
    span = (visit.window_end - visit.window_start).days
    if visit.window_end >= today:  # window open: the later in it, the more have come in
        if rng.random() < 0.6 * (today - visit.window_start).days / span:
            return "attended", visit.window_start + dt.timedelta(
                days=rng.randint(0, (today - visit.window_start).days)
            )
        return "open", None
    if no_data:
        return rng.choice(["missed", "not_done"]), visit.window_end
    if (today - visit.window_end).days <= 14 and rng.random() < 0.25:
        return "open", None  # overdue: the coordinator has not chased it yet
    if rng.random() < 0.09:  # came in late
        return "attended", min(today, visit.window_end + dt.timedelta(days=rng.randint(1, 20)))
    target = (visit.target_date - visit.window_start).days
    return "attended", visit.window_start + dt.timedelta(
        days=round(rng.triangular(0, span, target))
    )


def _simulate_followup(
    participant_id: int,
    today: dt.date,
    rng: random.Random,
    by,
    *,
    course: _Course,
    arm: str,
    due_at: dict[int, list],
    event: tuple[str, str, bool | None] | None = None,
    no_data: set[str] = frozenset(),
) -> None:
    """Record what happened at the visits whose window has opened, through the real
    services: outcome data at attended visits (most in the window, some late), missed
    visits, visits still due or overdue; and the participant's status `event`, if any, in
    date order with the visits (no data after a death, a loss or a refusal of follow-up)."""

    participant = Participant.objects.get(pk=participant_id)
    event_on = None
    if event:
        elapsed = (today - participant.randomized_on).days
        event_on = participant.randomized_on + dt.timedelta(
            days=rng.randint(75, max(75, min(elapsed, 400)))
        )
    visits = (
        Visit.objects.filter(participant=participant, outcome=Visit.Outcome.OPEN)
        .select_related("definition")
        .order_by("target_date")
    )
    for visit in visits:
        if visit.window_start > today:
            break
        fate, day = _visit_fate(visit, today, rng, no_data=visit.definition.code in no_data)
        if fate == "open":
            continue
        if event_on and day >= event_on:
            _demo_status_change(participant, event, event_on, by)
            event_on = None
            if not event[2]:  # no follow-up after it
                return
        instruments = due_at.get(visit.definition_id, [])
        if not instruments and fate == "attended":  # nothing to measure there
            services.visit_record_attendance(visit=visit, attended_on=day, by=by)
        elif fate == "missed" or not instruments:
            services.visit_record_missed(
                visit=visit,
                reason=rng.choice(["Not reached by phone", "Declined the visit", "Moved away"]),
                by=by,
            )
        elif fate == "not_done":
            reason = rng.choice(["not_reached", "not_reached", "refused"])
            entries = [EntryInput(instrument, not_done=reason) for instrument in instruments]
            visit_record_outcomes(visit=visit, entries=entries, by=by)
        else:
            entries = _demo_followup_entries(instruments, course, visit.definition.code, arm, rng)
            visit_record_outcomes(visit=visit, entries=entries, by=by, attended_on=day)
    if event_on and event_on <= today:
        _demo_status_change(participant, event, event_on, by)


def _demo_status_change(participant, event: tuple[str, str, bool | None], on: dt.date, by):

    to_status, reason, followup_allowed = event
    services.participant_status_change(
        participant=participant, to_status=to_status, effective_on=on, reason=reason, by=by,
        **({"followup_allowed": followup_allowed} if to_status == "withdrawn" else {}),
    )  # fmt: skip


def _demo_phone(rng: random.Random) -> str:
    """A Danish mobile number that passes real validation (some ranges are unallocated)."""

    while True:
        number = f"+45{rng.choice('2345')}{rng.randint(0, 9999999):07d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number, None)):
            return number


def screen_demo_non_participants(trial: Trial, *, seed: int = 7) -> int:
    """Screening log entries that did not lead to randomization, through the real services,
    as a clinic's log would have them beside the randomized: patients not meeting a
    criterion, eligible patients who declined, and a few eligible patients still waiting to
    consent — so the CONSORT diagram's exclusion box has every reason — and one record
    entered twice, voided by the trial manager."""

    rng = random.Random(seed)
    by = User.objects.get(username="manager")
    sites = list(trial.sites.all())
    criteria = list(trial.criteria.all())
    today = services.trial_today(trial)
    made = 0
    for n, kind in enumerate(["ineligible"] * 52 + ["declined"] * 15 + ["eligible"] * 3):
        answers = {c.pk: not c.ineligible_answer for c in criteria}
        if kind == "ineligible":
            failing = rng.choice(criteria)
            answers[failing.pk] = failing.ineligible_answer
        days_ago = 900 - (880 * n) // 70 if kind != "eligible" else rng.randint(0, 10)
        screening, _ = services.screening_record(
            trial=trial,
            site=rng.choice(sites),
            initials=rng.choice(["AB", "CD", "EF", "GH", "IJ", "KL", "MN", "OP"]),
            screened_on=today - dt.timedelta(days=days_ago),
            answers=answers,
            by=by,
        )
        if kind == "declined":
            services.screening_decline(
                screening=screening,
                reason=rng.choice(
                    ["Prefers not to be randomized", "Cannot attend weekly sessions", ""]
                ),
                by=by,
            )
        made += 1
    # A record entered twice (before forms carried a one-time token), voided by the trial
    # manager: the log shows it struck through, CONSORT does not count it.
    duplicate, _ = services.screening_record(
        trial=trial,
        site=screening.site,
        initials=screening.initials,
        screened_on=screening.screened_on,
        answers={int(k): v for k, v in screening.answers.items()},
        by=by,
    )
    services.screening_void(
        screening=duplicate,
        reason=f"Entered twice: the same patient as screening {screening.pk}.",
        by=by,
    )
    return made
