"""The admin for trial managers: configuration editable until the first randomization, then
locked with the reason shown; clinical records read-only with their audit trail."""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from participants import services
from participants.models import Allocation, Participant
from tests import factories
from trial.models import LOCKED_REASON, MinimizationFactor, Trial


@pytest.fixture
def admin_client_for_manager(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def randomized(modic, site1, clinician, enrolled):
    allocation, created = services.participant_randomize(participant=enrolled, by=clinician)
    assert created
    modic.refresh_from_db()
    assert modic.is_locked
    return allocation


class BrowserForm(HTMLParser):
    """What a browser would submit for the form with the given id, as the page shows it."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, list[str]] = {}
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.textarea: str | None = None
        self.text = ""

    def _add(self, name: str, value: str) -> None:
        self.fields.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._add(name, attrs.get("value") or "on")
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self._add(name, attrs.get("value", ""))
        elif tag == "select" and name:
            self.select, self.options = name, []
        elif tag == "option" and self.select:
            self.options.append((attrs.get("value", ""), "selected" in attrs))
        elif tag == "textarea" and name:
            self.textarea, self.text = name, ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self.select:
            chosen = [v for v, selected in self.options if selected] or [
                v for v, _ in self.options[:1]
            ]
            for value in chosen:
                self._add(self.select, value)
            self.select = None
        elif tag == "textarea" and self.textarea:
            self._add(self.textarea, self.text.lstrip("\n"))
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            self.text += data

    @classmethod
    def of(cls, response, form_id: str) -> dict[str, list[str]]:
        parser = cls(form_id)
        parser.feed(response.content.decode())
        assert parser.fields, f"no form #{form_id} on the page"
        return parser.fields


def trial_change_url(trial: Trial) -> str:
    return reverse("admin:trial_trial_change", args=[trial.pk])


def factor_change_url(factor: MinimizationFactor) -> str:
    return reverse("admin:trial_minimizationfactor_change", args=[factor.pk])


# --- Who may enter ---------------------------------------------------------------------------


def test_the_manager_can_open_the_admin_index(admin_client_for_manager):
    response = admin_client_for_manager.get(reverse("admin:index"))
    assertContains(response, "Trial administration")
    assertContains(response, "Minimization factors")


def test_a_statistician_is_staff_only_for_the_results(client, statistician):
    """Statisticians reach the admin for the results dashboard; no model is theirs."""
    client.force_login(statistician)
    assert client.get(reverse("admin:index")).status_code == 200
    for name in ("trial_trial", "participants_participant", "participants_allocation"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 403


@pytest.mark.parametrize("role", ["clinician", "coordinator"])
def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(request, client, role):
    client.force_login(request.getfixturevalue(role))
    for path in (reverse("admin:index"), reverse("admin:trial_trial_changelist")):
        response = client.get(path)
        assertRedirects(
            response,
            f"{reverse('admin:login')}?next={path}",
            fetch_redirect_response=False,
        )


def test_an_anonymous_visitor_is_sent_to_the_admin_login(client, db):
    path = reverse("admin:index")
    response = client.get(path)
    assertRedirects(
        response, f"{reverse('admin:login')}?next={path}", fetch_redirect_response=False
    )


# --- Trial configuration before and after the first randomization -----------------------------


def test_before_any_randomization_the_minimization_settings_are_editable(
    admin_client_for_manager, modic
):
    response = admin_client_for_manager.get(trial_change_url(modic))
    assert response.status_code == 200
    for field in ("imbalance_measure", "preferred_probability", "initial_random_allocations"):
        assertContains(response, f'name="{field}"')
    assertContains(response, "Editable: nobody has been randomized yet.")
    assertNotContains(response, LOCKED_REASON)
    # The arms inline can be edited and added to.
    assertContains(response, 'name="arms-0-name"')
    assertContains(response, "arms-__prefix__")


def test_before_any_randomization_a_factor_can_be_changed(admin_client_for_manager, modic):
    factor = modic.factors.get(code="sex")
    response = admin_client_for_manager.get(factor_change_url(factor))
    assert response.status_code == 200
    assertContains(response, 'name="weight"')
    assertContains(response, "Editable until the first randomization.")


@pytest.mark.usefixtures("randomized")
def test_after_a_randomization_the_trial_page_shows_why_it_is_locked(
    admin_client_for_manager, modic
):
    response = admin_client_for_manager.get(trial_change_url(modic))
    assert response.status_code == 200
    assertContains(response, LOCKED_REASON)
    for field in ("imbalance_measure", "preferred_probability", "initial_random_allocations"):
        assertNotContains(response, f'name="{field}"')
    assertNotContains(response, 'name="code"')
    # The arms are shown, read-only, with no row to add another.
    assertContains(response, "Exercise")
    assertNotContains(response, 'name="arms-0-name"')
    assertNotContains(response, "arms-__prefix__")
    # Fields that do not shape allocation stay editable.
    assertContains(response, 'name="target_sample_size"')


def test_before_any_randomization_the_manager_can_change_the_minimization_settings(
    admin_client_for_manager, modic
):
    page = admin_client_for_manager.get(trial_change_url(modic))
    data = BrowserForm.of(page, "trial_form")
    data["preferred_probability"] = ["0.7"]
    data["imbalance_measure"] = ["variance"]
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    assertRedirects(response, reverse("admin:trial_trial_changelist"))
    modic.refresh_from_db()
    assert modic.preferred_probability == Decimal("0.7")
    assert modic.imbalance_measure == "variance"


@pytest.mark.usefixtures("randomized")
def test_after_a_randomization_the_target_can_still_be_raised_but_settings_stay_put(
    admin_client_for_manager, modic
):
    page = admin_client_for_manager.get(trial_change_url(modic))
    data = BrowserForm.of(page, "trial_form")
    assert "preferred_probability" not in data
    data["target_sample_size"] = ["150"]
    # A hand-crafted POST with the locked fields is ignored, not applied.
    data["preferred_probability"] = ["0.6"]
    data["imbalance_measure"] = ["variance"]
    data["code"] = ["NEW"]
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    assertRedirects(response, reverse("admin:trial_trial_changelist"))
    modic.refresh_from_db()
    assert modic.target_sample_size == 150
    assert modic.allocation_count == 1
    assert (modic.code, modic.preferred_probability, modic.imbalance_measure) == (
        "MOD",
        Decimal("0.800"),
        "range",
    )
    assert [arm.name for arm in modic.arms.order_by("order")] == ["Rest", "Exercise"]


@pytest.mark.usefixtures("randomized")
def test_after_a_randomization_a_crafted_post_can_neither_add_nor_rename_arms(
    admin_client_for_manager, modic
):
    page = admin_client_for_manager.get(trial_change_url(modic))
    data = BrowserForm.of(page, "trial_form")
    data["arms-TOTAL_FORMS"] = ["3"]
    data.update(
        {
            "arms-0-name": ["Renamed"],
            "arms-2-trial": [str(modic.pk)],
            "arms-2-order": ["3"],
            "arms-2-code": ["sham"],
            "arms-2-name": ["Sham"],
        }
    )
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    # The read-only inline ignores the crafted rows; the rest of the form saves.
    assertRedirects(response, reverse("admin:trial_trial_changelist"))
    assert list(modic.arms.order_by("order").values_list("name", flat=True)) == [
        "Rest",
        "Exercise",
    ]


@pytest.mark.usefixtures("randomized")
def test_after_a_randomization_no_factor_can_be_added_to_the_trial(admin_client_for_manager, modic):
    before = MinimizationFactor.objects.count()
    response = admin_client_for_manager.post(
        reverse("admin:trial_minimizationfactor_add"),
        {
            "trial": modic.pk,
            "code": "smoker",
            "name": "Smoker",
            "kind": "choice",
            "weight": "1",
            "order": "5",
            "levels-TOTAL_FORMS": "1",
            "levels-INITIAL_FORMS": "0",
            "levels-0-code": "yes",
            "levels-0-label": "Yes",
            "levels-0-order": "1",
        },
    )
    assert response.status_code == 200
    assert "trial" in response.context["adminform"].form.errors
    assert MinimizationFactor.objects.count() == before


@pytest.mark.usefixtures("randomized")
def test_after_a_randomization_a_locked_trial_cannot_be_deleted(admin_client_for_manager, modic):
    response = admin_client_for_manager.get(reverse("admin:trial_trial_delete", args=[modic.pk]))
    assert response.status_code == 403
    assert Trial.objects.filter(pk=modic.pk).exists()


@pytest.mark.usefixtures("randomized")
def test_after_a_randomization_a_factor_is_view_only(admin_client_for_manager, modic):
    factor = modic.factors.get(code="sex")
    response = admin_client_for_manager.get(factor_change_url(factor))
    assert response.status_code == 200
    assertContains(response, "View minimization factor")
    assertContains(response, LOCKED_REASON)
    assertNotContains(response, 'name="weight"')
    assertNotContains(response, "levels-__prefix__")


@pytest.mark.usefixtures("randomized")
def test_after_a_randomization_posting_a_factor_change_is_forbidden(
    admin_client_for_manager, modic
):
    factor = modic.factors.get(code="sex")
    response = admin_client_for_manager.post(
        factor_change_url(factor),
        {
            "trial": modic.pk,
            "code": "sex",
            "name": "Sex",
            "kind": "choice",
            "weight": "5",
            "order": "2",
            "levels-TOTAL_FORMS": "0",
            "levels-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 403
    factor.refresh_from_db()
    assert factor.weight == 1


@pytest.mark.usefixtures("randomized")
def test_after_a_randomization_a_factor_cannot_be_deleted(admin_client_for_manager, modic):
    factor = modic.factors.get(code="sex")
    response = admin_client_for_manager.post(
        reverse("admin:trial_minimizationfactor_delete", args=[factor.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert MinimizationFactor.objects.filter(pk=factor.pk).exists()


# --- Clinical records: read-only, with history -----------------------------------------------


def test_the_manager_can_list_participants(admin_client_for_manager, enrolled):
    response = admin_client_for_manager.get(reverse("admin:participants_participant_changelist"))
    assertContains(response, f"Enrolled #{enrolled.pk}")
    assertNotContains(response, reverse("admin:participants_participant_add"))


def test_a_participants_history_shows_who_changed_it(client, modic, site1, clinician, manager):
    participant = factories.enrolled_participant(modic, site1, manager)
    client.force_login(clinician)
    response = client.post(
        reverse("participant_edit", kwargs={"code": modic.code, "pk": participant.pk}),
        {
            "full_name": "Corrected Name",
            "phone": participant.phone,
            "consent_date": participant.consent_date.isoformat(),
            "consent_document": participant.consent_document_id,
        },
    )
    assert response.status_code == 302
    latest = participant.history.order_by("-history_date", "-history_id").first()
    assert latest.history_user == clinician
    assert latest.full_name == "Corrected Name"

    client.force_login(manager)
    response = client.get(reverse("admin:participants_participant_history", args=[participant.pk]))
    assert response.status_code == 200
    assertContains(response, "Corrected Name")
    assertContains(response, clinician.username)


def test_a_participant_page_in_the_admin_is_view_only(admin_client_for_manager, enrolled):
    path = reverse("admin:participants_participant_change", args=[enrolled.pk])
    response = admin_client_for_manager.get(path)
    assert response.status_code == 200
    assertNotContains(response, 'name="full_name"')
    response = admin_client_for_manager.post(path, {"full_name": "Admin Edit"})
    assert response.status_code == 403
    enrolled.refresh_from_db()
    assert enrolled.full_name == "Test Person"


def test_allocations_cannot_be_added_in_the_admin(admin_client_for_manager, randomized):
    response = admin_client_for_manager.get(reverse("admin:participants_allocation_add"))
    assert response.status_code == 403
    response = admin_client_for_manager.post(reverse("admin:participants_allocation_add"), {})
    assert response.status_code == 403
    assert Allocation.objects.count() == 1


def test_allocations_cannot_be_changed_or_deleted_in_the_admin(
    admin_client_for_manager, randomized
):
    change = reverse("admin:participants_allocation_change", args=[randomized.pk])
    response = admin_client_for_manager.get(change)
    assert response.status_code == 200
    assertContains(response, "View allocation")
    assertNotContains(response, 'name="arm"')
    response = admin_client_for_manager.post(change, {"arm": randomized.arm_id, "draw": "0.5"})
    assert response.status_code == 403

    delete = reverse("admin:participants_allocation_delete", args=[randomized.pk])
    assert admin_client_for_manager.get(delete).status_code == 403
    assert admin_client_for_manager.post(delete, {"post": "yes"}).status_code == 403

    changelist = reverse("admin:participants_allocation_changelist")
    response = admin_client_for_manager.get(changelist)
    assert response.status_code == 200
    assertNotContains(response, reverse("admin:participants_allocation_add"))
    response = admin_client_for_manager.post(
        changelist, {"action": "delete_selected", "_selected_action": [randomized.pk]}
    )
    assert Allocation.objects.filter(pk=randomized.pk).exists()
    stored = Allocation.objects.get(pk=randomized.pk)
    assert (stored.arm_id, stored.draw) == (randomized.arm_id, randomized.draw)
    assert Participant.objects.get(pk=randomized.participant_id).is_randomized


def test_the_manager_configures_the_visit_schedule_and_reminders_in_the_trial_admin(
    client, manager, modic
):
    client.force_login(manager)
    page = client.get(f"/admin/trial/trial/{modic.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="visit_definitions-0-offset_days"' in html
    assert 'name="visit_reminder_days"' in html


def test_visits_status_changes_and_contacts_are_visible_read_only_with_history(
    client, manager, modic, site1, clinician
):
    import random

    from participants import services
    from participants.models import Visit
    from tests import factories

    participant = factories.enrolled_participant(modic, site1, clinician)
    services.participant_randomize(participant=participant, by=clinician, rng=random.Random(1))
    participant.refresh_from_db()
    visit = Visit.objects.get(participant=participant, definition__code="w10")
    services.contact_attempt_log(
        participant=participant, method="phone", result="no_answer", by=clinician
    )
    services.participant_status_change(
        participant=participant, to_status="lost", effective_on=participant.randomized_on,
        reason="Not reachable", by=clinician,
    )  # fmt: skip
    client.force_login(manager)
    for path in (
        "/admin/participants/visit/",
        f"/admin/participants/visit/{visit.pk}/change/",
        f"/admin/participants/visit/{visit.pk}/history/",
        "/admin/participants/statuschange/",
        "/admin/participants/contactattempt/",
    ):
        assert client.get(path).status_code == 200, path
    assert client.post(f"/admin/participants/visit/{visit.pk}/change/", {}).status_code == 403
    assert client.get("/admin/participants/visit/add/").status_code == 403
