"""manage.py replan_visits: a schedule change reaches earlier participants on request."""

import random
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from participants import services
from participants.models import Visit
from tests import factories
from trial.models import VisitDefinition


def test_replan_moves_open_visits_and_records_who_and_why(modic, site1, clinician, manager):
    participant = factories.enrolled_participant(modic, site1, clinician)
    services.participant_randomize(participant=participant, by=clinician, rng=random.Random(1))
    w10 = VisitDefinition.objects.get(trial=modic, code="w10")
    w10.offset_days, w10.window_after = 84, 28
    w10.save()
    out = StringIO()
    call_command("replan_visits", "MOD", user="mgr", reason="Amendment 2", yes=True, stdout=out)
    assert "1 visit(s) re-planned" in out.getvalue()
    visit = Visit.objects.get(participant=participant, definition__code="w10")
    participant.refresh_from_db()
    assert (visit.target_date - participant.randomized_on).days == 84
    latest = visit.history.latest()
    assert latest.history_user == manager
    assert latest.history_change_reason == "Amendment 2"


def test_replan_refuses_unknown_trial_user_or_empty_reason(modic, manager):
    with pytest.raises(CommandError, match="No trial"):
        call_command("replan_visits", "XXX", user="mgr", reason="r", yes=True)
    with pytest.raises(CommandError, match="No user"):
        call_command("replan_visits", "MOD", user="nobody", reason="r", yes=True)
    with pytest.raises(CommandError, match="reason"):
        call_command("replan_visits", "MOD", user="mgr", reason="  ", yes=True)
