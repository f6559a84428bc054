"""Benchmark: the coordinator's worklist at 1,000 and at 100,000 participants.

Builds two synthetic trials by bulk insert (participants randomized over the past ~20
months, three visits each, older visits mostly recorded), then requests the worklist
page as an unrestricted coordinator, alternating between the two trials so both samples
see the same machine load, and reports p50/p95 and the query count per request.

    make bench     # includes this, on a throwaway PostgreSQL cluster
"""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from participants import schedule, selectors
from participants.models import Participant, ScreeningRecord, Visit
from participants.services import trial_today
from trial.devtools.demo import build_modic_trial
from trial.models import Membership, Trial, VisitDefinition

GOAL_P95_MS = 300


class Command(BaseCommand):
    help = "Time the worklist page at two trial sizes, interleaved."

    def add_arguments(self, parser):
        parser.add_argument("--sizes", type=int, nargs=2, default=[1_000, 100_000])
        parser.add_argument("--requests", type=int, default=30, help="requests per size")
        parser.add_argument("--write", metavar="PATH", help="append the result table to PATH")

    def handle(self, *args, sizes: list[int], requests: int, write: str | None, **options):
        user, _ = User.objects.get_or_create(username="bench-coordinator")
        trials = []
        for size in sizes:
            t0 = time.perf_counter()
            trial = self._build(size, user)
            self.stderr.write(f"  built {size:,} participants in {time.perf_counter() - t0:.0f} s")
            trials.append(trial)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # as autovacuum would after a bulk load
        client = Client()
        client.force_login(user)
        timings: dict[int, list[float]] = {size: [] for size in sizes}
        queries: dict[int, int] = {}
        rows: dict[int, int] = {}
        with override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False):
            for trial in trials:  # warm-up: first request compiles templates, fills caches
                client.get(reverse("worklist", kwargs={"code": trial.code}))
            for _ in range(requests):
                for size, trial in zip(sizes, trials, strict=True):
                    url = reverse("worklist", kwargs={"code": trial.code})
                    with CaptureQueriesContext(connection) as captured:
                        t0 = time.perf_counter()
                        response = client.get(url)
                        timings[size].append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.status_code
                    queries[size] = len(captured.captured_queries)
        for size, trial in zip(sizes, trials, strict=True):
            rows[size] = selectors.worklist(
                user, trial, bucket="attention", today=trial_today(trial)
            ).count()
        table = [f"| worklist page | {' | '.join(f'{s:,} participants' for s in sizes)} |"]
        table.append("|---|" + "---|" * len(sizes))
        table.append(
            "| visits needing attention | " + " | ".join(f"{rows[s]:,}" for s in sizes) + " |"
        )
        for label, q in (("p50", 0.5), ("p95", 0.95)):
            cells = " | ".join(f"{_quantile(timings[s], q) * 1000:.1f} ms" for s in sizes)
            table.append(f"| {label} | {cells} |")
        table.append("| queries per request | " + " | ".join(str(queries[s]) for s in sizes) + " |")
        ratio = _quantile(timings[sizes[1]], 0.5) / _quantile(timings[sizes[0]], 0.5)
        table.append(f"| p50 ratio, {sizes[1]:,} / {sizes[0]:,} | {ratio:.2f}× | |")
        text = "\n".join(table) + "\n"
        self.stdout.write(text)
        p95 = _quantile(timings[sizes[1]], 0.95) * 1000
        verdict = "meets" if p95 < GOAL_P95_MS else "MISSES"
        self.stdout.write(
            f"worklist p95 at {sizes[1]:,}: {p95:.0f} ms ({verdict} < {GOAL_P95_MS} ms)"
        )
        if write:
            stamp = timezone.now().strftime("%Y-%m-%d %H:%M %Z")
            with Path(write).open("a", encoding="utf-8") as fh:
                fh.write(f"\n### Worklist at scale ({stamp}, {connection.vendor})\n\n{text}")

    @transaction.atomic
    def _build(self, n: int, user: User) -> Trial:
        """A trial of n randomized participants with planned and partly recorded visits."""
        trial = build_modic_trial(code=f"W{n % 1000}{int(time.time() * 1000) % 100000}")
        Trial.objects.filter(pk=trial.pk).update(target_sample_size=n, allocation_count=n)
        Membership.objects.create(user=user, trial=trial, coordinator=True)
        rng = random.Random(n)
        today = trial_today(trial)
        sites = list(trial.sites.all())
        document = trial.consent_documents.get()
        definitions = list(VisitDefinition.objects.filter(trial=trial))
        specs = [
            schedule.VisitSpec(d.code, d.offset_days, d.window_before, d.window_after)
            for d in definitions
        ]
        batch = 5_000
        for start in range(0, n, batch):
            size = min(batch, n - start)
            days_ago = [rng.randint(1, 600) for _ in range(size)]
            screenings = ScreeningRecord.objects.bulk_create(
                ScreeningRecord(
                    trial=trial, site=sites[(start + i) % len(sites)], initials="BX",
                    screened_on=today - dt.timedelta(days=days_ago[i] + 1), answers={},
                    outcome=ScreeningRecord.Outcome.ENROLLED, screened_by=user,
                )
                for i in range(size)
            )  # fmt: skip
            people = Participant.objects.bulk_create(
                Participant(
                    trial=trial, site=s.site, screening=s, status=Participant.Status.ACTIVE,
                    number=f"{trial.code}-{s.site.code}-{start + i + 1:06d}",
                    consent_date=s.screened_on, consent_document=document,
                    full_name=f"Bench Person {start + i}", phone="+4520123456",
                    randomized_on=today - dt.timedelta(days=days_ago[i]),
                    randomized_at=timezone.now() - dt.timedelta(days=days_ago[i]),
                    baseline_completed_at=timezone.now(), enrolled_by=user,
                )
                for i, s in enumerate(screenings)
            )  # fmt: skip
            visits = []
            for p in people:
                for definition, plan in zip(
                    definitions, schedule.plan(p.randomized_on, specs), strict=True
                ):
                    closed_long_ago = plan.window_end < today - dt.timedelta(days=60)
                    done = definition.at_randomization or (closed_long_ago and rng.random() < 0.9)
                    visits.append(
                        Visit(
                            trial=trial, site_id=p.site_id, participant=p, definition=definition,
                            target_date=plan.target, window_start=plan.window_start,
                            window_end=plan.window_end,
                            outcome=Visit.Outcome.COMPLETED if done else Visit.Outcome.OPEN,
                            attended_on=plan.target if done else None,
                            in_window=True if done else None,
                        )
                    )  # fmt: skip
            Visit.objects.bulk_create(visits, batch_size=batch)
        return trial


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
