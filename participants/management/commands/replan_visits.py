"""Re-plan the open visits of already randomized participants after a schedule change.

A change to the visit schedule applies to participants randomized afterwards. Running
this applies it to earlier participants too, for visits not yet recorded; every changed
visit gets a history row with the user and the reason.

    manage.py replan_visits MOD --user manager --reason "Protocol amendment 3: 1-year window"
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from participants.services import visits_replan
from trial.models import Trial


class Command(BaseCommand):
    help = "Re-plan open visits of randomized participants from the current schedule (audited)."

    def add_arguments(self, parser):
        parser.add_argument("trial", help="trial code, e.g. MOD")
        parser.add_argument("--user", required=True, help="username recorded as the author")
        parser.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        parser.add_argument(
            "--yes", action="store_true", help="do not ask for confirmation (scripts)"
        )

    def handle(self, *args, trial: str, user: str, reason: str, yes: bool, **options):
        try:
            trial_obj = Trial.objects.get(code=trial)
        except Trial.DoesNotExist as exc:
            raise CommandError(f"No trial with code {trial!r}.") from exc
        try:
            by = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user {user!r}.") from exc
        if not yes and options.get("interactive", True):
            answer = input(f"Re-plan open visits of every participant in {trial_obj.code}? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("Cancelled.")
        try:
            changed = visits_replan(trial=trial_obj, by=by, reason=reason)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"{changed} visit(s) re-planned in {trial_obj.code}."))
