"""Load the demo Modic trial, one demo user per role, and some randomized participants
with their weekly SMS history."""

import random

from django.core.management.base import BaseCommand

from outcomes.sms.models import SmsWeek
from trial.devtools.demo import build_modic_trial, create_demo_users
from trial.devtools.demo_participants import (
    enroll_and_randomize_demo_participants,
    screen_demo_non_participants,
)
from trial.devtools.demo_sms import simulate_sms_history


class Command(BaseCommand):
    help = "Create the demo Modic trial and demo users (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--participants",
            type=int,
            # 90 of the target of 100: recruitment is still open, so a new user can screen,
            # enroll and randomize patients of their own in the demo.
            default=90,
            help="Randomize this many demo participants when the trial has none (default 90).",
        )

    def handle(self, *args, **options):
        trial = build_modic_trial()
        users = create_demo_users(trial)
        trial.refresh_from_db()
        if trial.allocation_count == 0 and options["participants"] > 0:
            n = enroll_and_randomize_demo_participants(trial, options["participants"])
            self.stdout.write(f"Randomized {n} demo participants in {trial.code}.")
            screened = screen_demo_non_participants(trial)
            self.stdout.write(f"Screened {screened} more who were not randomized.")
            sms = simulate_sms_history(trial, random.Random(2012))
            self.stdout.write(
                f"Weekly SMS history: {sms.weeks} weeks, {sms.outbound} sent, "
                f"{sms.inbound} received, {sms.answers} answers; "
                f"this week opened for {sms.current_week_opened}."
            )
        self.stdout.write(self.style.SUCCESS(f"Demo trial {trial.code}: {trial.name}"))
        self.stdout.write("Demo users (development only):")
        for user in users:
            self.stdout.write(
                f"  {user.role:<14} username: {user.username:<13} password: {user.password}"
            )
        self._show_reply_example(trial)

    def _show_reply_example(self, trial) -> None:
        """How to answer a demo participant's open SMS question as the gateway would."""

        week = (
            SmsWeek.objects.filter(
                trial=trial,
                current_question__isnull=False,
                participant__status="active",
                participant__sms_opted_out_at__isnull=True,
            )
            .select_related("participant", "current_question")
            .order_by("-opened_at", "pk")
            .first()
        )
        if week is None:
            return
        self.stdout.write(
            f"Answer {week.participant.number}'s open SMS question ("
            f"{week.current_question.label}, week {week.week}) as the gateway would, signed, "
            "while the server runs:\n"
            f"  DEBUG=1 .venv/bin/python manage.py sms_simulate_reply "
            f"--from {week.participant.phone} --body 3"
        )
