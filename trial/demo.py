"""The demo trial: the Modic trial (BMC Medicine 2012;10:22, NCT00454792) as configuration.

Used by `manage.py seed_demo` (make run) and by the tests. Everything here is data the
trial manager could equally enter in the admin; no code depends on the Modic trial.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.db import transaction

from trial import roles
from trial.models import (
    Arm,
    BaselineVariable,
    ConsentDocument,
    EligibilityCriterion,
    FactorLevel,
    Membership,
    MinimizationFactor,
    Site,
    Trial,
    VisitDefinition,
)

DEMO_CODE = "MOD"

# username, role, password, sites (None = all sites)
DEMO_USERS = (
    ("clinician", roles.CLINICIAN, "modic-clinician", ("01",)),
    ("coordinator", roles.COORDINATOR, "modic-coordinator", None),
    ("statistician", roles.STATISTICIAN, "modic-statistician", None),
    ("manager", roles.TRIAL_MANAGER, "modic-manager", None),
)

INCLUSION = (
    "Aged 18–60 years?",
    "Current low back pain for 3–12 months?",
    "Current low back pain at least 4 on a 0–10 scale?",
    "Modic changes on MRI?",
    "Speaks and reads Danish?",
    "Willing to follow either treatment?",
)
EXCLUSION = (
    "Another disorder that prevents participation?",
    "Pregnant?",
    "Referred for surgery?",
)


@transaction.atomic
def build_modic_trial(code: str = DEMO_CODE, status: str = Trial.Status.RECRUITING) -> Trial:
    """Create the Modic trial configuration (idempotent on the trial code)."""
    existing = Trial.objects.filter(code=code).first()
    if existing:
        return existing
    trial = Trial.objects.create(
        code=code,
        name="Rest versus exercise for persistent low back pain with Modic changes",
        registry_id="NCT00454792",
        target_sample_size=100,
        status=status,
        time_zone="Europe/Copenhagen",
        imbalance_measure=Trial.ImbalanceMeasure.RANGE,
        preferred_probability=Decimal("0.8"),
        visit_reminder_days=3,
    )
    Site.objects.create(trial=trial, code="01", name="Spine Centre, Middelfart (demo)")
    Site.objects.create(trial=trial, code="02", name="Back Clinic, Odense (demo)")
    Arm.objects.create(
        trial=trial,
        code="rest",
        name="Rest",
        order=1,
        description="Rest 2 hours daily for 10 weeks; optional flexible lumbar belt.",
    )
    Arm.objects.create(
        trial=trial,
        code="exercise",
        name="Exercise",
        order=2,
        description="Weekly exercise therapy sessions for 10 weeks; advice to stay active.",
    )
    for order, question in enumerate(INCLUSION, 1):
        EligibilityCriterion.objects.create(
            trial=trial, kind="inclusion", question=question, ineligible_answer=False, order=order
        )
    for order, question in enumerate(EXCLUSION, 1):
        EligibilityCriterion.objects.create(
            trial=trial, kind="exclusion", question=question, ineligible_answer=True, order=order
        )
    age = BaselineVariable.objects.create(
        trial=trial, code="age", label="Age", unit="years", min_value=0, max_value=120,
        eligible_min=18, eligible_max=60, order=1,
    )  # fmt: skip
    pain = BaselineVariable.objects.create(
        trial=trial, code="pain", label="Current low back pain (0–10)", min_value=0,
        max_value=10, eligible_min=4, order=2,
    )  # fmt: skip
    modic = MinimizationFactor.objects.create(trial=trial, code="modic", name="Modic type", order=1)
    FactorLevel.objects.create(factor=modic, code="type1", label="Type 1", order=1)
    FactorLevel.objects.create(factor=modic, code="type2", label="Type 2 or mixed", order=2)
    sex = MinimizationFactor.objects.create(trial=trial, code="sex", name="Sex", order=2)
    FactorLevel.objects.create(factor=sex, code="female", label="Female", order=1)
    FactorLevel.objects.create(factor=sex, code="male", label="Male", order=2)
    pain_f = MinimizationFactor.objects.create(
        trial=trial, code="pain", name="Pain", kind="derived", variable=pain, order=3
    )
    FactorLevel.objects.create(factor=pain_f, code="4-6", label="4–6", upper=7, order=1)
    FactorLevel.objects.create(factor=pain_f, code="7-10", label="7–10", lower=7, order=2)
    age_f = MinimizationFactor.objects.create(
        trial=trial, code="age", name="Age", kind="derived", variable=age, order=4
    )
    FactorLevel.objects.create(factor=age_f, code="lt40", label="< 40", upper=40, order=1)
    FactorLevel.objects.create(factor=age_f, code="ge40", label="≥ 40", lower=40, order=2)
    ConsentDocument.objects.create(trial=trial, version="1.0", effective_from=dt.date(2024, 1, 1))
    # Follow-up 10 weeks after recruitment and 52 weeks after the 10-week intervention.
    VisitDefinition.objects.create(
        trial=trial, code="baseline", label="Baseline", offset_days=0, at_randomization=True,
        order=0,
    )  # fmt: skip
    VisitDefinition.objects.create(
        trial=trial, code="w10", label="10 weeks", offset_days=70, window_before=7,
        window_after=21, order=1,
    )  # fmt: skip
    VisitDefinition.objects.create(
        trial=trial, code="y1", label="1 year", offset_days=434, window_before=14,
        window_after=42, order=2,
    )  # fmt: skip
    _add_modic_instruments(trial)
    _add_modic_sms(trial)
    return trial


# The reference trial's weekly SMS: two questions, every Sunday evening, from randomization
# to the 1-year visit (day 434 = 62 weeks).
SMS_QUESTIONS = (
    (
        "bothersome",
        "Days with bothersome low back pain (0–7)",
        "Hvor mange dage i den seneste uge har dine lændesmerter været generende? "
        "Svar med et tal 0-7",
        "How many days in the past week has your low back pain been bothersome? "
        "Reply with a number 0-7",
    ),
    (
        "sick_leave",
        "Days of sick leave because of the back (0–7)",
        "Hvor mange dage i den seneste uge har du været sygemeldt på grund af din ryg? Svar 0-7",
        "How many days in the past week were you on sick leave because of your back? Reply 0-7",
    ),
)
SMS_LANGUAGES = (
    {
        "code": "da",
        "name": "Dansk",
        "reminder": "Påmindelse:",
        "thanks": "Tak for dine svar. Vi skriver igen i næste uge.",
        "clarification": "Vi kunne ikke læse dit svar. Svar venligst med ét tal fra {min} "
        "til {max}.",
        "opted_in": "Du får igen de ugentlige spørgsmål. Svar STOP for at framelde dig.",
    },
    {
        "code": "en",
        "name": "English",
        "reminder": "Reminder:",
        "thanks": "Thank you for your answers. We will write again next week.",
        "clarification": "Sorry, we could not read your reply. Please reply with one number "
        "from {min} to {max}.",
        "opted_in": "You will get the weekly questions again. Reply STOP to opt out.",
    },
)


def _add_modic_sms(trial: Trial) -> None:
    from outcomes.models import SmsLanguage, SmsQuestion, SmsQuestionText, SmsSchedule

    SmsSchedule.objects.create(
        trial=trial,
        weekday=SmsSchedule.Weekday.SUNDAY,
        send_time=dt.time(18, 0),
        weeks=62,
        reminder_after_hours=24,
        default_language="da",
    )
    danish, english = (SmsLanguage.objects.create(trial=trial, **spec) for spec in SMS_LANGUAGES)
    for order, (code, label, text_da, text_en) in enumerate(SMS_QUESTIONS, 1):
        question = SmsQuestion.objects.create(
            trial=trial, code=code, label=label, order=order, min_value=0, max_value=7
        )
        SmsQuestionText.objects.create(question=question, language=danish, text=text_da)
        SmsQuestionText.objects.create(question=question, language=english, text=text_en)


def _add_modic_instruments(trial: Trial) -> None:
    """Pain (primary), Roland–Morris and EQ-5D-3L at every visit; global assessment at
    follow-up only (it asks about change since the start)."""
    from outcomes.models import EQ5DValueSet, Instrument

    visits = {v.code: v for v in trial.visit_definitions.all()}
    follow_up = [visits["w10"], visits["y1"]]
    # The baseline pain rating is the "pain" baseline variable, from which the pain
    # minimization factor is derived: entered once, on the pain form, before randomization.
    baseline_pain = BaselineVariable.objects.get(trial=trial, code="pain")
    specs = [
        ("pain", "Current low back pain (0–10)", Instrument.Kind.PAIN_NRS, list(visits.values())),
        ("rmdq", "Roland–Morris disability (0–23)", Instrument.Kind.RMDQ, list(visits.values())),
        ("eq5d", "EQ-5D-3L", Instrument.Kind.EQ5D_3L, list(visits.values())),
        ("global", "Global assessment", Instrument.Kind.GLOBAL_7, follow_up),
    ]
    from outcomes.scoring import EQ5D_UK_TTO_CITATION, EQ5D_UK_TTO_DOLAN_1997

    # Loaded by a migration; created here too for databases flushed since (test runs).
    uk, _ = EQ5DValueSet.objects.get_or_create(
        code="uk-tto-dolan-1997",
        defaults={
            "name": "UK TTO (Dolan 1997)",
            "citation": EQ5D_UK_TTO_CITATION,
            "coefficients": EQ5D_UK_TTO_DOLAN_1997,
        },
    )
    for order, (code, name, kind, due_at) in enumerate(specs, 1):
        instrument = Instrument.objects.create(
            trial=trial,
            code=code,
            name=name,
            kind=kind,
            order=order,
            primary=code == "pain",
            value_set=uk if kind == Instrument.Kind.EQ5D_3L else None,
            baseline_variable=baseline_pain if code == "pain" else None,
        )
        instrument.visits.set(due_at)


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str


@transaction.atomic
def create_demo_users(trial: Trial) -> list[DemoUser]:
    """One user per role, with fixed demo passwords (reset on every call)."""
    created = []
    for username, role, password, site_codes in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=username)
        user.first_name = role
        user.last_name = "(demo)"
        user.email = f"{username}@trialdesk.example"
        user.is_staff = role == roles.TRIAL_MANAGER
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        membership, _ = Membership.objects.get_or_create(user=user, trial=trial)
        if site_codes:
            membership.sites.set(Site.objects.filter(trial=trial, code__in=site_codes))
        created.append(DemoUser(username, role, password))
    return created


def enroll_and_randomize_demo_participants(trial: Trial, count: int, *, seed: int = 2012) -> int:
    """Screen, consent, record baseline and randomize `count` plausible participants
    through the real services, with recruitment spread over the past ~16 months and
    follow-up recorded as a trials unit would have, so every visit status appears.

    The services randomize "now"; a demo needs history, so each participant's
    randomization date is then moved into the past and its visits re-planned from it
    (`_backdate_for_demo`, demo data only). Allocation rows keep their true creation time.
    """
    from outcomes.entry import baseline_instruments, participant_record_baseline_with_instruments
    from participants import services

    rng = random.Random(seed)
    by = User.objects.get(username="manager")
    instruments = baseline_instruments(trial)
    sites = list(trial.sites.all())
    criteria = list(trial.criteria.all())
    document = trial.consent_documents.filter(active=True).first()
    today = services.trial_today(trial)
    done = 0
    for i in range(count):
        if trial.allocation_count + done >= trial.target_sample_size:
            break
        # Oldest first, so sequence numbers follow the (backdated) randomization dates.
        randomized_on = today - dt.timedelta(days=500 - (495 * i) // max(count - 1, 1))
        screened_on = randomized_on - dt.timedelta(days=rng.randint(0, 7))
        answers = {c.pk: not c.ineligible_answer for c in criteria}
        screening = services.screening_record(
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
            entries=_demo_baseline_entries(instruments, rng),
            by=by,
        )
        services.participant_randomize(participant=participant, by=by, rng=rng)
        _backdate_for_demo(participant.pk, randomized_on, trial)
        _simulate_followup(participant.pk, today, rng, by)
        done += 1
    return done


def _demo_baseline_entries(instruments, rng: random.Random) -> list:
    """Plausible baseline questionnaires for an eligible patient (pain 4–10): more pain,
    more disability and worse health; now and then a questionnaire not done (never the pain
    rating, which randomization needs)."""
    from outcomes.entry import EntryInput
    from outcomes.models import Instrument, OutcomeEntry
    from outcomes.scoring import EQ5D_DIMENSIONS, RMDQ_ITEMS

    pain = rng.randint(4, 10)
    entries = []
    for instrument in instruments:
        kind = instrument.kind
        if instrument.baseline_variable_id is None and rng.random() < 0.04:
            # The patient is there at enrollment, so never "not reached".
            reason = rng.choice(["refused", "too_ill", "other"])
            note = "Ran out of time at the visit" if reason == OutcomeEntry.NotDone.OTHER else ""
            entries.append(EntryInput(instrument, not_done=reason, not_done_note=note))
        elif kind == Instrument.Kind.PAIN_NRS:
            entries.append(EntryInput(instrument, {"value": pain}))
        elif kind == Instrument.Kind.RMDQ:
            p_yes = min(0.9, 0.15 + 0.06 * pain)
            items = [rng.random() < p_yes for _ in range(RMDQ_ITEMS)]
            entries.append(EntryInput(instrument, {"items": items}))
        elif kind == Instrument.Kind.EQ5D_3L:
            levels = {
                dim: rng.choices((1, 2, 3), weights=(10 - pain, 6 + pain // 2, 1))[0]
                for dim in EQ5D_DIMENSIONS
            }
            vas = max(0, min(100, round(rng.gauss(85 - 6 * pain, 12))))
            entries.append(EntryInput(instrument, {**levels, "vas": vas}))
        else:  # not due at baseline in the demo; kept for other configurations
            entries.append(
                EntryInput(
                    instrument,
                    not_done=OutcomeEntry.NotDone.OTHER,
                    not_done_note="Not asked at baseline",
                )
            )
    return entries


def _backdate_for_demo(participant_id: int, randomized_on: dt.date, trial: Trial) -> None:
    """Demo data only: move a fresh randomization into the past and re-plan its visits."""
    from participants import schedule
    from participants.models import Participant, Visit

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


def _simulate_followup(participant_id: int, today: dt.date, rng: random.Random, by) -> None:
    """Record what happened at visits whose window has opened, and a few status changes,
    through the real services: most attend in the window, some late, some miss, some are
    still due or overdue; a few withdraw, are lost or die."""
    from participants import services
    from participants.models import Participant, Visit

    participant = Participant.objects.get(pk=participant_id)
    visits = Visit.objects.filter(participant=participant, outcome="open").order_by("target_date")
    for visit in visits:
        if visit.window_start > today:
            break
        roll = rng.random()
        if visit.window_end < today:  # window closed
            if roll < 0.78:
                day = visit.window_start + dt.timedelta(
                    days=rng.randint(0, (visit.window_end - visit.window_start).days)
                )
            elif roll < 0.86:
                day = min(today, visit.window_end + dt.timedelta(days=rng.randint(1, 20)))
            elif roll < 0.95:
                services.visit_record_missed(
                    visit=visit,
                    reason=rng.choice(["Not reached by phone", "Declined the visit", "Moved away"]),
                    by=by,
                )
                continue
            else:
                continue  # overdue: nothing recorded yet
        elif roll < 0.4:  # window open: some have already come in
            day = visit.window_start + dt.timedelta(
                days=rng.randint(0, (today - visit.window_start).days)
            )
        else:
            continue  # due
        services.visit_record_attendance(visit=visit, attended_on=day, by=by)
    roll = rng.random()
    elapsed = (today - participant.randomized_on).days
    if elapsed < 90 or roll > 0.08:
        return
    on = participant.randomized_on + dt.timedelta(days=rng.randint(75, min(elapsed, 400)))
    if roll < 0.03:
        services.participant_status_change(
            participant=participant, to_status="withdrawn", effective_on=on,
            reason="No longer wishes to take part", followup_allowed=roll < 0.015, by=by,
        )  # fmt: skip
    elif roll < 0.06:
        services.participant_status_change(
            participant=participant, to_status="lost", effective_on=on,
            reason="Not reachable by phone, letter or e-mail", by=by,
        )  # fmt: skip
    else:
        services.participant_status_change(
            participant=participant, to_status="deceased", effective_on=on,
            reason="Died (unrelated to the trial)", by=by,
        )  # fmt: skip


def _demo_phone(rng: random.Random) -> str:
    """A Danish mobile number that passes real validation (some ranges are unallocated)."""
    import phonenumbers

    while True:
        number = f"+45{rng.choice('2345')}{rng.randint(0, 9999999):07d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number, None)):
            return number
