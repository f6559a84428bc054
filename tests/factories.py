"""Test data builders. Clinical records are created through the real services, so tests
see exactly what production would store (history, counts, constraints)."""

from __future__ import annotations

import datetime as dt
import itertools

import factory
from django.contrib.auth.models import User

from participants import services
from trial import roles
from trial.models import Membership, Trial

_initials = itertools.cycle(["AB", "CD", "EF", "GH", "JK"])
_phones = itertools.cycle(["+4520123456", "+4529999999", "+4540123456", "+4561234567"])


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-123")


def persona(
    role: str | tuple[str, ...],
    *,
    trial: Trial | None,
    sites=(),
    username: str,
    staff: bool = False,
) -> User:
    """A user holding `role` (or several roles) in `trial` at `sites` (none: all sites)."""
    label = role if isinstance(role, str) else " & ".join(role)
    user = UserFactory(username=username, is_staff=staff, first_name=label)
    if trial is not None:
        add_roles(user, trial, [role] if isinstance(role, str) else role, sites=sites)
    return user


def add_roles(user, trial, role_names, *, sites=()) -> Membership:
    """Give `user` these roles in `trial` (added to any they hold there)."""
    membership, _ = Membership.objects.get_or_create(user=user, trial=trial)
    for role in role_names:
        setattr(membership, roles.ROLE_FIELDS[role], True)
    membership.save()
    if sites:
        membership.sites.set(sites)
    roles.forget(user)
    return membership


def eligible_answers(trial: Trial) -> dict[int, bool]:
    return {c.pk: not c.ineligible_answer for c in trial.criteria.all()}


def screened(trial, site, by, *, days_ago: int = 2):
    record, _ = services.screening_record(
        trial=trial,
        site=site,
        initials=next(_initials),
        screened_on=services.trial_today(trial) - dt.timedelta(days=days_ago),
        answers=eligible_answers(trial),
        by=by,
    )
    return record


def enrolled_participant(
    trial,
    site,
    by,
    *,
    age: int = 45,
    pain: int = 7,
    modic: str = "type1",
    sex: str = "female",
    baseline: bool = True,
    instruments: bool = False,
):
    """A consented participant, with baseline recorded unless `baseline` is false: directly
    (values only), or with `instruments` through the baseline form's service, with the
    baseline instruments (baseline_entries) and the pain value taken from the pain form."""
    screening = screened(trial, site, by)
    participant = services.participant_enroll(
        screening=screening,
        consent_date=screening.screened_on,
        consent_document=trial.consent_documents.get(),
        by=by,
    )
    if baseline and instruments:
        from outcomes.instruments.services import participant_record_baseline_with_instruments

        participant = participant_record_baseline_with_instruments(
            participant=participant,
            full_name="Test Person",
            phone=next(_phones),
            sms_language="da",
            values={"age": age},
            chosen_levels={"modic": modic, "sex": sex},
            entries=baseline_entries(trial, pain=pain),
            by=by,
        )
    elif baseline:
        participant = services.participant_record_baseline(
            participant=participant,
            full_name="Test Person",
            phone=next(_phones),
            values={"age": age, "pain": pain},
            chosen_levels={"modic": modic, "sex": sex},
            by=by,
        )
    return participant


def baseline_entries(
    trial,
    *,
    pain: int | None = 7,
    rmdq_yes: int = 7,
    eq5d: str = "11221",
    vas: int | None = 60,
    not_done: dict[str, str] | None = None,
):
    """EntryInputs for the instruments due at baseline (the demo: pain, RMDQ, EQ-5D-3L).
    `not_done` maps instrument codes to a reason (the note, for "other", is "Test note")."""
    from outcomes.instruments.scoring import EQ5D_DIMENSIONS, RMDQ_ITEMS
    from outcomes.instruments.selectors import baseline_instruments
    from outcomes.instruments.services import EntryInput

    not_done = not_done or {}
    result = []
    for instrument in baseline_instruments(trial):
        reason = not_done.get(instrument.code)
        if reason:
            note = "Test note" if reason == "other" else ""
            result.append(EntryInput(instrument, not_done=reason, not_done_note=note))
        elif instrument.kind == "pain_nrs":
            result.append(EntryInput(instrument, {"value": pain}))
        elif instrument.kind == "rmdq":
            items = [n < rmdq_yes for n in range(RMDQ_ITEMS)]
            result.append(EntryInput(instrument, {"items": items}))
        elif instrument.kind == "eq5d_3l":
            levels = {dim: int(ch) for dim, ch in zip(EQ5D_DIMENSIONS, eq5d, strict=True)}
            result.append(EntryInput(instrument, {**levels, "vas": vas}))
        else:
            result.append(EntryInput(instrument, {"answer": 4}))
    return result


def three_arm_site_design(trial, *, ratios=(2, 2, 1), p="0.8", initial_random: int = 0):
    """Turn the demo trial (nobody randomized yet) into a three-arm design with unequal
    allocation ratios (rest, exercise, sham) and the participant's site as a fifth
    minimization factor. Through the models' own saves, as the admin would."""
    from decimal import Decimal

    from trial.models import Arm, MinimizationFactor

    trial.preferred_probability = Decimal(p)
    trial.initial_random_allocations = initial_random
    trial.save(update_fields=["preferred_probability", "initial_random_allocations"])
    Arm.objects.create(trial=trial, code="sham", name="Sham", order=3, allocation_ratio=1)
    for code, ratio in zip(("rest", "exercise", "sham"), ratios, strict=True):
        arm = Arm.objects.get(trial=trial, code=code)
        arm.allocation_ratio = ratio
        arm.save(update_fields=["allocation_ratio"])
    MinimizationFactor.objects.create(trial=trial, code="site", name="Site", kind="site", order=5)
    trial.refresh_from_db()
    return trial
