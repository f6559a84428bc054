"""Load the demo Modic trial, one demo user per role, and some randomized participants
with their weekly SMS history."""

import random

from django.core.management.base import BaseCommand

from trial.demo import build_modic_trial, create_demo_users, enroll_and_randomize_demo_participants
from trial.demo_sms import simulate_sms_history


class Command(BaseCommand):
    help = "Create the demo Modic trial and demo users (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--participants",
            type=int,
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
