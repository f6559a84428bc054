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
    return services.screening_record(
        trial=trial,
        site=site,
        initials=next(_initials),
        screened_on=services.trial_today(trial) - dt.timedelta(days=days_ago),
        answers=eligible_answers(trial),
        by=by,
    )


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
):
    screening = screened(trial, site, by)
    participant = services.participant_enroll(
        screening=screening,
        consent_date=screening.screened_on,
        consent_document=trial.consent_documents.get(),
        by=by,
    )
    if baseline:
        participant = services.participant_record_baseline(
            participant=participant,
            full_name="Test Person",
            phone=next(_phones),
            values={"age": age, "pain": pain},
            chosen_levels={"modic": modic, "sex": sex},
            by=by,
        )
    return participant
