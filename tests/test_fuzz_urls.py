"""Fuzz: every URL pattern of the URLconf, as every role, read and posted with hostile
values, never answers a server error (5xx).

The URL list is derived from the URLconf when the test runs (tests.url_walk), so a URL added
later is fuzzed without anyone touching this file — or the test fails, naming the path
parameter it cannot fill or the pattern it did not reach; a pattern is skipped only by an
entry in EXCLUDED, with the reason. Path parameters are filled with real objects of a seeded
trial (the demo trial builder and the demo participants, SMS history, an export) and with
values naming nothing.

What each path gets (each request in a savepoint rolled back afterwards, so every role meets
the same data):
  1. read once plainly as the superuser, who may see every page: its forms, and the query
     parameters it uses (its GET forms and links to itself), are noted;
  2. as each role (anonymous, each trial role, the superuser, an outsider with no
     membership, a clinician of the other site): read with hostile values in those query
     parameters, the admin list's date drill-down and flags, and a few common ones; then
     posted with its form — the role's own page's, else the superuser's, else a form
     elsewhere that posts here — every field hostile. The first role that sees the page
     also reads it with each of its own parameters alone hostile (so that none hides
     behind another the page refuses first), and each form a role sees is posted once as
     shown with one field hostile, with each INITIAL_FORMS negative and with one
     TOTAL_FORMS tampered;
  3. each path whose parameter names nothing, as half the roles in turn: read or posted
     with hostile values;
  4. once per path (role in turn): a NUL character in the path, a parameter's name or
     value, or a cookie answers 400.
No read may write (tests.db_writes). Hostile values are sampled in turn rather than combined
in full (the suite's time matters; each value still meets many fields across roles and
paths), but every pattern meets every role.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.contrib.admin.options import ModelAdmin
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path
from django.utils.datastructures import MultiValueDict
from twilio.request_validator import RequestValidator

from outcomes.sms import gateways as sms
from tests import html_forms, url_walk
from tests.db_writes import captured_writes, not_allowed_on_read
from tests.fuzz_world import Fill, build_world
from tests.hostile import HUGE, Values, as_shown_but, hostile_form
from tests.url_walk import Pattern

# Patterns never fuzzed, each with the reason. None is needed today: logging out is posted
# like everything else (the session is restored after each request).
EXCLUDED: dict[str, str] = {}

# The superuser first: it sees every page, so the reads of each parameter alone and the
# posts of forms as shown fall to it.
ROLES = (
    "superuser",
    "manager",
    "statistician",
    "coordinator",
    "clinician",
    "clinician_site2",
    "outsider",
    "anonymous",
)

# Query parameters read by many pages, tried on every page besides those it shows.
COMMON_QUERY = ("q", "page", "next", "o", "p", "e")
# POST-only endpoints whose fields no page shows (the SMS gateway's webhooks).
WEBHOOK_FIELDS = ("MessageSid", "From", "To", "Body", "MessageStatus", "SmsStatus", "ErrorCode")
WEBHOOK_TOKEN = "fuzz-webhook-token"


@dataclass
class Outcome:
    pattern: Pattern
    path: str
    role: str
    what: str
    status: int


@pytest.fixture
def world(modic, site1, site2, clinician, clinician_site2, coordinator, statistician,
          manager, outsider, settings):  # fmt: skip
    settings.TWILIO_AUTH_TOKEN = WEBHOOK_TOKEN
    return build_world(
        modic,
        site1=site1,
        site2=site2,
        users={
            "clinician": clinician,
            "clinician_site2": clinician_site2,
            "coordinator": coordinator,
            "statistician": statistician,
            "manager": manager,
            "outsider": outsider,
            "superuser": User.objects.create_superuser("root", "root@example.org", "pw-123456"),
        },
    )


def _client(user) -> tuple[Client, str | None]:
    client = Client(raise_request_exception=False)
    if user is None:
        return client, None
    client.force_login(user)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


def _signed_post(client: Client, path: str, data: dict[str, list[str]]):
    """POST as a browser would; signed as the SMS gateway signs, so the webhooks read it
    (the signature means nothing to any other view)."""
    signature = RequestValidator(WEBHOOK_TOKEN).compute_signature(
        sms.webhook_url(path), MultiValueDict(data)
    )
    return client.post(path, data, headers={"X-Twilio-Signature": signature})


def _query_params(pattern: Pattern, page: html_forms.Page | None) -> set[str]:
    params = set(COMMON_QUERY)
    if page is not None:
        params |= page.query_params
    model_admin = pattern.model_admin
    if model_admin is not None and pattern.name and pattern.name.endswith("_changelist"):
        params |= url_walk.changelist_params(model_admin)
    return params


# About a minute on an idle machine; the suite's 300 s would fail it on a busy shared one.
@pytest.mark.timeout(900)
def test_no_url_answers_a_server_error_to_hostile_input_as_any_role(world):
    started, cpu = time.monotonic(), time.process_time()
    patterns = url_walk.patterns()
    problems = world.fill.problems(patterns, EXCLUDED)
    assert not problems, "\n".join(problems)
    variants = [
        (pattern, variant) for pattern in patterns if pattern.key not in EXCLUDED
        for variant in world.fill.variants(pattern)
    ]  # fmt: skip
    real = [(p, v) for p, v in variants if v.real]
    fuzz = Fuzz(world)

    for pattern, variant in real:
        fuzz.survey(pattern, variant.path())
    for n, (pattern, variant) in enumerate(real):
        values = Values(start=n * 7)
        for r, role in enumerate(ROLES):
            page = fuzz.read_hostile(pattern, variant.path(), role, values)
            if page is not None:
                fuzz.read_each_param_hostile(pattern, variant.path(), role, values)
            fuzz.post_hostile(pattern, variant.path(), role, values, page=page, turn=n + r)
    for n, (pattern, variant) in enumerate(variants):
        values = Values(start=n * 11)
        if not variant.real:
            # Half the roles, in turn: each still meets the pattern on its real paths.
            for r, role in enumerate(ROLES):
                if (n + r) % 4 == 0:
                    fuzz.read_hostile(pattern, variant.path(r), role, values)
                elif (n + r) % 4 == 1:
                    fuzz.post_hostile(pattern, variant.path(r), role, values, page=None, turn=n)
        fuzz.nul_refused(pattern, variant.path(n), ROLES[n % len(ROLES)], where=n % 4)

    errors = [o for o in fuzz.outcomes if o.status >= 500]
    report = "\n".join(f"{o.status} {o.role:<15} {o.path} {o.what[:300]}" for o in errors[:40])
    assert not errors, f"{len(errors)} server errors of {len(fuzz.outcomes)} requests:\n{report}"
    assert not fuzz.nul_accepted, fuzz.nul_accepted[:20]
    assert not fuzz.reads_that_wrote, fuzz.reads_that_wrote[:10]
    # Every pattern was reached as every role.
    reached = {(o.pattern.key, o.role) for o in fuzz.outcomes}
    missing = [
        (p.key, role) for p in patterns if p.key not in EXCLUDED for role in ROLES
        if (p.key, role) not in reached
    ]  # fmt: skip
    assert not missing, missing[:20]
    print(
        f"\nfuzzed {len(patterns)} URL patterns ({len(variants)} paths) as {len(ROLES)} roles: "
        f"{len(fuzz.outcomes)} requests in {time.monotonic() - started:.1f} s "
        f"({time.process_time() - cpu:.1f} s of CPU)"
    )


class Fuzz:
    """The requests, each in a savepoint rolled back afterwards, and what they answered."""

    def __init__(self, world):
        self.clients = {role: _client(world.users.get(role)) for role in ROLES}
        self.outcomes: list[Outcome] = []
        self.surveyed: dict[str, html_forms.Page] = {}
        self.forms_by_action: dict[str, list[html_forms.Form]] = {}
        self.nul_accepted: list[tuple] = []
        self.posted_as_shown: set[tuple[str, str]] = set()
        self.read_each_param: set[str] = set()
        self.reads_that_wrote: list[tuple] = []

    @contextmanager
    def isolated(self, role: str, *, reading: bool):
        """A savepoint rolled back after the block, the role's session kept. A read must
        not write (tests.db_writes); after a write the cache is emptied too (the rollback
        restored what its keys describe)."""
        client, session_key = self.clients[role]
        with captured_writes() as writes, transaction.atomic():
            yield client
            transaction.set_rollback(True)
        if reading and not_allowed_on_read(writes):
            self.reads_that_wrote.append((role, not_allowed_on_read(writes)[:3]))
        if writes:
            cache.clear()
        if session_key:  # logging out, for one, drops the cookie; its row was rolled back
            client.cookies[settings.SESSION_COOKIE_NAME] = session_key

    def _record(self, pattern, path, role, what, response):
        self.outcomes.append(Outcome(pattern, path, role, what, response.status_code))
        return response

    def _page(self, path: str, response) -> html_forms.Page | None:
        if response.status_code != 200 or not _is_html(response):
            return None
        return html_forms.parse(response.content.decode(errors="replace"), path)

    def survey(self, pattern: Pattern, path: str) -> None:
        """Read the page plainly as the superuser; note its forms and query parameters."""
        with self.isolated("superuser", reading=True) as client:
            response = self._record(pattern, path, "superuser", "GET", client.get(path))
        page = self._page(path, response)
        if page is not None:
            self.surveyed[path] = page
            for form in page.forms:
                if form.method == "post":
                    self.forms_by_action.setdefault(form.action, []).append(form)

    def read_hostile(self, pattern: Pattern, path: str, role: str, values: Values):
        """Read with hostile query values; return the page this role sees, if any (read
        plainly when the hostile values were refused with 400)."""
        params = _query_params(pattern, self.surveyed.get(path))
        query = {name: values.text() for name in sorted(params)}
        with self.isolated(role, reading=True) as client:
            response = client.get(path, query)
            self._record(pattern, path, role, f"GET {_short(query)}", response)
            if response.status_code == 400:
                response = self._record(pattern, path, role, "GET", client.get(path))
        return self._page(path, response)

    def read_each_param_hostile(self, pattern, path: str, role: str, values: Values) -> None:
        """Once per path (by the first role that sees the page): each of the page's own
        query parameters alone hostile — a huge number, then a value in turn — so that no
        parameter is hidden behind another that the page refuses first."""
        if path in self.read_each_param:
            return
        self.read_each_param.add(path)
        params = _query_params(pattern, self.surveyed.get(path)) - set(COMMON_QUERY)
        for name in sorted(params):
            for value in (HUGE, values.text()):
                with self.isolated(role, reading=True) as client:
                    response = client.get(path, {name: value})
                self._record(pattern, path, role, f"GET {_short({name: value})}", response)

    def post_hostile(self, pattern, path, role, values: Values, *, page, turn: int) -> None:
        """Post a form with every field hostile and, when the role sees the page, the form
        as shown with one field hostile."""
        candidates = [
            [f for f in (source.forms if source else []) if f.method == "post" and f.action == path]
            for source in (page, self.surveyed.get(path))
        ]
        forms = candidates[0] or candidates[1] or self.forms_by_action.get(path, [])
        if forms:
            form = forms[turn % len(forms)]
            bodies = [hostile_form(form.data(), values)]
            # As shown, once per path and form: roles shown the same form (the superuser and
            # the trial manager, mostly) take the same path through it.
            fields = {k: v for k, v in form.data().items() if k != "csrfmiddlewaretoken"}
            shown = (path, repr(sorted(fields.items())))
            if page is not None and shown not in self.posted_as_shown:
                self.posted_as_shown.add(shown)
                bodies += as_shown_but(form.data(), values, turn)
        else:
            names = WEBHOOK_FIELDS if pattern.is_webhook else ("field",)
            bodies = [{name: [values.text()] for name in names}]
        for body in bodies:
            with self.isolated(role, reading=False) as client:
                response = _signed_post(client, path, body)
                self._record(pattern, path, role, f"POST {_short(body)}", response)

    def nul_refused(self, pattern: Pattern, path: str, role: str, *, where: int) -> None:
        """A NUL character in the path, a parameter's name or value, or a cookie: 400."""
        with self.isolated(role, reading=True) as client:
            if where == 0:
                response = client.get(path.rstrip("/") + "%00/")
            elif where == 1:
                response = client.get(path, {"x\x00": "1"})
            elif where == 2:
                response = client.get(path, {"q": "a\x00b"})
            else:
                client.cookies["trialdesk_probe"] = "\x00"
                response = client.get(path)
                del client.cookies["trialdesk_probe"]
        self._record(pattern, path, role, f"GET with NUL ({where})", response)
        if response.status_code != 400:
            self.nul_accepted.append((path, role, where, response.status_code))


def _is_html(response) -> bool:
    return response.get("Content-Type", "").startswith("text/html")


def _short(data: dict) -> str:
    """The request's data, each value cut short, for the failure report."""
    first = {k: (v[0] if isinstance(v, list) and v else v) for k, v in data.items()}
    return urlencode({k: str(v)[:40] for k, v in first.items()}, quote_via=quote)[:300]


def test_the_walk_covers_every_admin_view_of_every_registered_model():
    """A sanity check of the walk itself: each registered ModelAdmin's views are found."""
    from django.contrib import admin

    found = {
        (type(p.model_admin), p.name)
        for p in url_walk.patterns()
        if isinstance(p.model_admin, ModelAdmin) and p.name
    }
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        for view in ("changelist", "add", "change", "delete", "history"):
            assert (type(model_admin), f"admin:{info}_{view}") in found, (model, view)


# A URLconf with a pattern whose parameter the fuzz cannot fill.
urlpatterns = [path("mystery/<str:thing>/", lambda request, thing: HttpResponse())]


@override_settings(ROOT_URLCONF=__name__)
def test_a_pattern_the_fuzz_cannot_fill_fails_it_unless_excluded_with_a_reason():
    fill = Fill(trial_code="MOD", by_segment={})
    patterns = url_walk.patterns()
    assert [p.key for p in patterns] == ["mystery/<str:thing>/"]
    (problem,) = fill.problems(patterns, EXCLUDED)
    assert "no missing values for ['thing']" in problem
    assert fill.problems(patterns, {"mystery/<str:thing>/": "a reason"}) == []
    assert fill.problems(patterns, {"mystery/<str:thing>/": "a reason", "gone/": "old"}) == [
        "EXCLUDED names no pattern: gone/"
    ]
