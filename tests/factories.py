"""Test data builders. Clinical records are created through the real services, so tests
see exactly what production would store (history, counts, constraints)."""

from __future__ import annotations

import datetime as dt
import itertools

import factory
from django.contrib.auth.models import Group, User

from participants import services
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
    role: str, *, trial: Trial | None, sites=(), username: str, staff: bool = False
) -> User:
    user = UserFactory(username=username, is_staff=staff, first_name=role)
    user.groups.add(Group.objects.get(name=role))
    if trial is not None:
        membership = Membership.objects.create(user=user, trial=trial)
        membership.sites.set(sites)
    return user


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
        from outcomes.entry import participant_record_baseline_with_instruments

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
    from outcomes.entry import EntryInput, baseline_instruments
    from outcomes.scoring import EQ5D_DIMENSIONS, RMDQ_ITEMS

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
