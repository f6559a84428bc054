"""Recount the maintained SMS totals (outcomes.sms.sms_totals) and compare with what is stored.

    .venv/bin/python manage.py sms_totals_check            # every trial; exit 1 on a difference
    .venv/bin/python manage.py sms_totals_check --trial MOD --repair

--repair replaces the totals by the recount (writers of SMS answers and weeks wait meanwhile).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from outcomes.sms import sms_totals
from trial.models import Trial

SHOWN = 20


class Command(BaseCommand):
    help = "Check the dashboard's maintained SMS totals against a recount (and repair them)."

    def add_arguments(self, parser):
        parser.add_argument("--trial", help="trial code (default: every trial)")
        parser.add_argument(
            "--repair", action="store_true", help="replace differing totals by the recount"
        )

    def handle(self, *args, trial=None, repair=False, **options):
        trials = Trial.objects.order_by("code")
        if trial:
            trials = trials.filter(code=trial)
            if not trials.exists():
                raise CommandError(f"No trial with code {trial!r}.")
        differing = []
        for t in trials:
            problems = sms_totals.compare(t.pk)
            if not problems:
                self.stdout.write(f"{t.code}: SMS totals equal the recount")
                continue
            self.stdout.write(f"{t.code}: {len(problems)} totals differ from the recount")
            for line in problems[:SHOWN]:
                self.stdout.write(f"  {line}")
            if repair:
                sms_totals.rebuild([t.pk])
                self.stdout.write(f"{t.code}: repaired (totals recounted)")
            else:
                differing.append(t.code)
        if differing:
            raise CommandError(
                f"SMS totals differ for {', '.join(differing)}; run again with --repair."
            )
