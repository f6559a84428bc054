"""One view of the arms (trial.blinding.arm_view): the label and order of the arms for a user,
and every page and the export show exactly that."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.cache import cache
from django.urls import reverse

from outcomes.results.export.tables import Builder
from outcomes.results.models import ExportJob
from trial import blinding
from trial.models import Arm


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def give_codes(trial, first_code: str) -> None:
    """The arm configured first gets `first_code`, the other the other letter."""
    first, second = Arm.objects.filter(trial=trial).order_by("order", "pk")
    Arm.objects.filter(trial=trial).update(blind_code="")
    Arm.objects.filter(pk=first.pk).update(blind_code=first_code)
    Arm.objects.filter(pk=second.pk).update(blind_code="B" if first_code == "A" else "A")


@pytest.mark.parametrize("first_code", ["A", "B"])
def test_a_blinded_user_sees_codes_in_code_order_and_others_names_in_the_configured_order(
    first_code, modic, statistician, manager
):
    give_codes(modic, first_code)
    arms = list(Arm.objects.filter(trial=modic).order_by("order", "pk"))

    blinded = blinding.arm_view(modic, statistician)
    assert blinded.blinded
    assert [a.label for a in blinded.arms] == ["Arm A", "Arm B"]
    assert [a.value for a in blinded.arms] == ["A", "B"]
    by_code = {arm.blind_code: arm for arm in Arm.objects.filter(trial=modic)}
    assert [a.code for a in blinded.arms] == [by_code["A"].code, by_code["B"].code]

    open_ = blinding.arm_view(modic, manager)
    assert not open_.blinded
    assert [(a.label, a.value) for a in open_.arms] == [(arm.name, arm.code) for arm in arms]
    assert blinding.arm_view(modic, manager, blinded=True) == blinded


@pytest.mark.parametrize("first_code", ["A", "B"])
def test_the_balance_page_the_dashboard_and_the_export_show_the_arms_as_arm_view_says(
    first_code, client, modic, statistician, manager
):
    give_codes(modic, first_code)
    for user in (statistician, manager):
        view = blinding.arm_view(modic, user)
        labels = [arm.label for arm in view.arms]
        client.force_login(user)

        balance = client.get(reverse("balance", args=[modic.code]))
        assert [column["label"] for column in balance.context["columns"]] == labels
        assert balance.context["blinded"] == view.blinded
        results = client.get(reverse("trial_results", args=[modic.code])).context["r"]
        assert results.arm_labels == labels
        job = ExportJob.objects.create(trial=modic, requested_by=user, blinded=view.blinded)
        builder = Builder(job, zipfile.ZipFile(io.BytesIO(), "w"), lambda *a: None)
        assert builder.arm_labels == {arm.value: arm.label for arm in view.arms}
        assert list(builder.arm_labels.values()) == labels
        assert builder.arm_map == {arm.code: arm.value for arm in view.arms}
