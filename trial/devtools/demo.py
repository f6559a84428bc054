"""The demo trial: the Modic trial (BMC Medicine 2012;10:22, NCT00454792) as configuration.

Used by `manage.py seed_demo` (make run) and by the tests. Everything here is data the
trial manager could equally enter in the admin; no code depends on the Modic trial.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction

from outcomes.instruments.models import EQ5DValueSet, Instrument
from outcomes.instruments.scoring import EQ5D_UK_TTO_CITATION, EQ5D_UK_TTO_DOLAN_1997
from outcomes.sms.models import SmsLanguage, SmsQuestion, SmsQuestionText, SmsSchedule
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


# long: the demo trial's configuration, one row after another in the protocol's order; it
# reads as the protocol's table and has no branches to split along.
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
        # The consent form's date: the demo's screenings (at most ~31 months back from
        # today, trial.devtools.demo_participants) all fall after it.
        recruitment_start=dt.date(2024, 1, 1),
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
        # Not staff: the admin opens for the manager's and the statistician's roles in the
        # trial (trial.admin_site); the staff flag is an account setting for superusers.
        user.is_staff = False
        user.set_password(password)
        user.save()
        # The role is held in this trial only (trial.roles), on the membership.
        membership, _ = Membership.objects.update_or_create(
            user=user,
            trial=trial,
            defaults={field: r == role for r, field in roles.ROLE_FIELDS.items()},
        )
        if site_codes:
            membership.sites.set(Site.objects.filter(trial=trial, code__in=site_codes))
        created.append(DemoUser(username, role, password))
    return created
