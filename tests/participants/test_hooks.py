"""The outcomes apps connect their parts to participants' hooks (participants.hooks): without
a connection, randomization would not link the baseline entries and the digest would have
no SMS opt-outs, silently."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from participants import hooks


def test_the_instruments_link_the_baseline_entries_when_a_participant_is_randomized():
    from outcomes.instruments.baseline_links import baseline_links

    assert baseline_links in hooks.randomized_builders()


def test_the_sms_app_is_the_source_of_the_digest_opt_outs():
    from outcomes.sms.selectors import sms_opt_outs_between

    assert hooks.digest_opt_outs_source() is sms_opt_outs_between


def test_a_digest_without_a_source_of_opt_outs_is_an_error_not_an_empty_list(monkeypatch):
    monkeypatch.setattr(hooks, "_digest_opt_outs", None)
    with pytest.raises(ImproperlyConfigured):
        hooks.digest_opt_outs_source()
