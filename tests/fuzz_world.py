"""The seeded trial the URL fuzz test walks: the demo Modic trial with demo participants (in
every state the demo gives: followed up, withdrawn, lost, died), their weekly SMS history,
a participant just randomized, one enrolled and one screened, a finished export and a
blinding log entry — so that every model the admin shows has a row — and the values that
fill each URL parameter: real objects, and values that name nothing."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from axes.models import AccessLog
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from outcomes.instruments.models import EQ5DValueSet
from participants import services
from participants.models import ContactAttempt, Participant
from tests import factories
from tests.url_walk import Param, Pattern, resolves_to
from trial.models import Membership

# Values that name nothing, per parameter, used in turn: a number past every id, text that
# is no id at all, and odd code values.
MISSING = {
    "code": ("NOPE", "ÆØÅ", "x" * 300, "mod"),
    "pk": ("999999999999999999", "0"),
    "job_id": ("99999999999", "0"),
    "object_id": ("999999999", "abc", "-1", "1.5", "ÆØÅ", "9" * 40),
    "id": ("999999999", "abc", "-1"),
    "version_id": ("999999999", "abc", "-1"),
    "content_type_id": ("999999999", "0"),
    "app_label": ("nope",),
    "url": ("nope/", "trial/trial/999/extra/"),
    "uidb64": ("MQ", "!!", "x" * 100),
    "token": ("set-password", "abc-def", "x" * 100),
}


@dataclass
class Variant:
    """A path of a pattern: real (every parameter names a real object), or with one
    parameter naming nothing — a different such value for each turn."""

    paths: tuple[str, ...]
    real: bool = True

    def path(self, turn: int = 0) -> str:
        return self.paths[turn % len(self.paths)]


@dataclass
class Fill:
    """Values for URL parameters. `by_segment` lists the real objects an id names, keyed by
    the path segment before it; admin object ids come from the admin's model."""

    trial_code: str
    by_segment: dict[str, list]
    # A password reset link's parts (accounts/reset/<uidb64>/<token>/), for a real user.
    reset: dict[str, str] = field(default_factory=dict)
    representative: dict[type, object] = field(default_factory=dict)

    def _object(self, model):
        """The model's representative object: one with a history, if the model keeps one."""
        obj = self.representative.get(model)
        if obj is None:
            objects = model._default_manager.order_by("pk")
            history = getattr(model, "history", None)
            if history is not None:
                obj = objects.filter(pk__in=history.values(model._meta.pk.attname)).first()
            obj = obj or objects.first()
        if obj is None:
            raise LookupError(f"the fuzz world has no {model.__name__}: add one (tests/fuzz_world)")
        return obj

    def real_values(self, pattern: Pattern, param: Param) -> list[str]:
        name = param.name
        if name == "code":
            return [self.trial_code]
        if name in self.reset:
            return [self.reset[name]]
        if name in ("pk", "job_id"):
            if param.segment not in self.by_segment:
                raise LookupError(
                    f"no objects for an id after '{param.segment}/' in {pattern.key}: "
                    "add them to Fill.by_segment (tests/fuzz_world)"
                )
            return [str(obj.pk) for obj in self.by_segment[param.segment]]
        if name == "app_label":
            return sorted({m._meta.app_label for m in admin.site._registry})
        if name == "url":
            return ["nonexistent-page/"]
        if name == "content_type_id":
            return [str(ContentType.objects.get_for_model(Participant).pk)]
        if name in ("object_id", "id"):
            if pattern.model_admin is not None:
                return [str(self._object(pattern.model_admin.model).pk)]
            if any(p.name == "content_type_id" for p in pattern.params):
                return [str(self._object(Participant).pk)]
        if name == "version_id" and pattern.model_admin is not None:
            obj = self._object(pattern.model_admin.model)
            version = obj.history.order_by("-history_id").first()
            if version is None:
                raise LookupError(f"{obj!r} has no history for {pattern.key}")
            return [str(version.history_id)]
        raise LookupError(
            f"no values for parameter '{name}' in {pattern.key}: add them to "
            "Fill.real_values and MISSING (tests/fuzz_world), or exclude the pattern with a reason"
        )

    def variants(self, pattern: Pattern) -> list[Variant]:
        """Real paths (each real object of each parameter, the others' first), then for each
        parameter a path where it alone names nothing."""
        params = pattern.params
        if not params:
            return [Variant((pattern.path({}),))]
        unknown = {p.name for p in params} - set(MISSING)
        if unknown:
            raise LookupError(
                f"no missing values for {sorted(unknown)} in {pattern.key}: add them to MISSING"
            )
        reals = {p.name: self.real_values(pattern, p) for p in params}
        first = {name: values[0] for name, values in reals.items()}
        result = [Variant((pattern.path(first),))]
        for name, values in reals.items():
            result += [Variant((pattern.path({**first, name: v}),)) for v in values[1:]]
        for name in reals:
            missing = tuple(pattern.path({**first, name: value}) for value in MISSING[name])
            result.append(Variant(missing, real=False))
        return result

    def problems(self, patterns: list[Pattern], excluded: dict[str, str]) -> list[str]:
        """Why some pattern would not be fuzzed: a parameter without values, a real path that
        does not reach its pattern, an exclusion naming no pattern."""
        found = []
        keys = {p.key for p in patterns}
        found += [f"EXCLUDED names no pattern: {key}" for key in excluded if key not in keys]
        for pattern in patterns:
            if pattern.key in excluded:
                continue
            try:
                variants = self.variants(pattern)
            except LookupError as exc:
                found.append(str(exc))
                continue
            for variant in variants:
                if variant.real and not resolves_to(variant.path(), pattern):
                    found.append(f"{variant.path()} does not reach {pattern.key}")
        return found


@dataclass
class World:
    trial: object
    users: dict
    fill: Fill


def build_world(trial, *, site1, site2, users: dict) -> World:
    from outcomes.results import services as results_services
    from outcomes.results.export import jobs
    from trial import blinding
    from trial.devtools.demo import create_demo_users
    from trial.devtools.demo_participants import enroll_and_randomize_demo_participants
    from trial.devtools.demo_sms import simulate_sms_history

    clinician, manager = users["clinician"], users["manager"]
    create_demo_users(trial)  # the demo builders act as the demo manager
    enroll_and_randomize_demo_participants(trial, 4, seed=11)
    simulate_sms_history(trial, random.Random(5))

    randomized = factories.enrolled_participant(trial, site1, clinician)
    services.participant_randomize(participant=randomized, by=clinician, rng=random.Random(3))
    randomized.refresh_from_db()
    enrolled = factories.enrolled_participant(trial, site1, clinician)
    screened = factories.screened(trial, site1, clinician)
    factories.enrolled_participant(trial, site2, users["clinician_site2"])
    visit = randomized.visits.get(definition__code="w10")
    services.contact_attempt_log(
        participant=randomized,
        visit=visit,
        method=ContactAttempt.Method.values[0],
        result=ContactAttempt.Result.values[0],
        note="Fuzz world",
        by=clinician,
    )
    blinding.record_unblinded_view(user=manager, trial=trial, what="Fuzz world")
    # Loaded by a migration, so without a history row until it is first saved.
    EQ5DValueSet.objects.get().save()
    export, _ = results_services.export_request(
        trial=trial, user=users["statistician"], shift_dates=False
    )
    jobs.export_run(export.pk)
    # Account administration's rows: a group, and django-axes' logs of a failed login (an
    # attempt and its failure) and of a successful one.
    Group.objects.get_or_create(name="Fuzz world")
    Client().post(reverse("login"), {"username": "intruder", "password": "wrong"})
    AccessLog.objects.create(
        username=manager.username, ip_address="127.0.0.1", user_agent="fuzz",
        http_accept="*/*", path_info="/accounts/login/",
    )  # fmt: skip

    empty = [
        m.__name__
        for m in admin.site._registry
        if m._meta.app_label in ("trial", "participants", "instruments", "sms", "results")
        and not m._default_manager.exists()
    ]
    assert not empty, f"the fuzz world has no rows of {empty}"
    assert apps.get_model("results", "ExportJob").objects.filter(status="done").exists()
    fill = Fill(
        trial_code=trial.code,
        by_segment={
            "participants": [randomized, enrolled],
            "visits": [visit],
            "screening": [screened, enrolled.screening],
            "exports": [export],
            "team": list(Membership.objects.filter(trial=trial).order_by("pk")[:2]),
        },
        reset={
            "uidb64": urlsafe_base64_encode(force_bytes(clinician.pk)),
            "token": default_token_generator.make_token(clinician),
        },
        representative={Participant: randomized, type(trial): trial},
    )
    return World(trial=trial, users=users, fill=fill)
