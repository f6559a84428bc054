"""Benchmark: does an allocation cost the same at participant 10,000 as at participant 100?

Builds a throwaway trial with the demo configuration, enrolls N participants in bulk
(baseline included), then randomizes them one by one through the real service, timing
each. Reports the median time and the query count of allocations around number 100 and
around number N, and their ratio, all measured in one run (machines here are shared and
noisy, so only ratios within a run mean anything).

    make bench            # N = 10,000 on a throwaway PostgreSQL cluster
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import statistics
import time
from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from participants.models import Participant, ScreeningRecord
from participants.services import participant_randomize, trial_today
from trial.devtools.demo import build_modic_trial
from trial.models import Trial

GOAL_RATIO = 1.5


class Command(BaseCommand):
    help = "Time allocation number ~100 against allocation number ~N in one run."

    def add_arguments(self, parser):
        parser.add_argument("--n", type=int, default=10_000, help="participants (default 10000)")
        parser.add_argument("--window", type=int, default=100, help="allocations per sample")
        parser.add_argument("--write", metavar="PATH", help="append the result table to PATH")
        parser.add_argument(
            "--profile",
            action="store_true",
            help="also print each statement's median time, early against late",
        )

    def handle(self, *args, n: int, window: int, write: str | None, profile: bool, **options):
        if n < 2 * window or window < 10:
            raise CommandError("need --n >= 2 × --window and --window >= 10")
        # Allocations ~100 (earlier when N is tiny, as in the test suite's run) happen in a
        # small trial, allocations N−window+1…N in a large one. The two are timed
        # interleaved, one pair at a time, so both samples see the same machine load:
        # timing them minutes apart on a shared machine measures the neighbours instead.
        first = max(1, min(100 - window // 2, n // 2 - window))
        early = range(first, first + window)
        late = range(n - window + 1, n + 1)
        user, _ = User.objects.get_or_create(username="bench")
        small, large = self._fresh_trial(early.stop, "S"), self._fresh_trial(n, "L")
        small_people = self._bulk_enroll(small, early.stop - 1, user)
        large_people = self._bulk_enroll(large, n, user)
        rng = random.Random(1975)
        started = time.perf_counter()
        for people, upto in ((small_people, early.start - 1), (large_people, late.start - 1)):
            for done, participant in enumerate(people[:upto], 1):
                participant_randomize(participant=participant, by=user, rng=rng)
                if done % 1000 == 0:
                    self.stderr.write(
                        f"  {done} allocations, {time.perf_counter() - started:.0f} s"
                    )
        timings: dict[int, float] = {}
        queries: dict[int, int] = {}
        statements: dict[int, list[tuple[str, float]]] = {}
        for pair in zip(early, late, strict=True):
            for sequence in pair:
                people = small_people if sequence in early else large_people
                connection.queries_log.clear()  # the log holds 9,000 queries; keep counts exact
                with CaptureQueriesContext(connection) as captured:
                    t0 = time.perf_counter()
                    participant_randomize(participant=people[sequence - 1], by=user, rng=rng)
                    timings[sequence] = time.perf_counter() - t0
                queries[sequence] = len(captured.captured_queries)
                statements[sequence] = [
                    (q["sql"], float(q["time"])) for q in captured.captured_queries
                ]
        for trial, expected in ((small, early.stop - 1), (large, n)):
            trial.refresh_from_db()
            if trial.allocation_count != expected:
                raise CommandError(
                    f"{trial.code}: {trial.allocation_count} allocations, not {expected}"
                )
        early_ms = statistics.median(timings[i] for i in early) * 1000
        late_ms = statistics.median(timings[i] for i in late) * 1000
        ratio = late_ms / early_ms
        early_label = f"median time of allocations {early.start}–{early.stop - 1}"
        late_label = f"median time of allocations {late.start}–{late.stop - 1} (interleaved)"
        early_q = max(queries[i] for i in early)
        late_q = max(queries[i] for i in late)
        rows = [
            ("database", connection.vendor),
            (early_label, f"{early_ms:.2f} ms"),
            (late_label, f"{late_ms:.2f} ms"),
            (f"ratio (goal ≤ {GOAL_RATIO}×)", f"{ratio:.2f}×"),
            ("queries per allocation (early / late)", f"{early_q} / {late_q}"),
            (
                "machine",
                f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}",
            ),
        ]
        table = "\n".join(f"| {k} | {v} |" for k, v in rows)
        table = f"| allocation benchmark, N = {n} | result |\n|---|---|\n{table}\n"
        self.stdout.write(table)
        if write:
            stamp = timezone.now().strftime("%Y-%m-%d %H:%M %Z")
            with Path(write).open("a", encoding="utf-8") as fh:
                fh.write(f"\n### Allocation cost at scale ({stamp})\n\n{table}")
        if profile:
            self._print_profile(statements, early, late)
        verdict = "meets" if ratio <= GOAL_RATIO else "MISSES"
        self.stdout.write(f"allocation {n} costs {ratio:.2f}× allocation ~100: {verdict} the goal")

    def _print_profile(self, statements, early: range, late: range) -> None:
        """Median time of each statement (by position in the allocation), early vs late.
        Django records statement times to the millisecond; medians of 0.000 mean < 0.5 ms."""
        self.stdout.write("\n| # | statement | early ms | late ms |\n|---|---|---|---|")
        for position, (sql, _) in enumerate(statements[early.start]):
            e = statistics.median(statements[i][position][1] for i in early) * 1000
            lt = statistics.median(statements[i][position][1] for i in late) * 1000
            self.stdout.write(f"| {position} | {sql[:90]} | {e:.3f} | {lt:.3f} |")

    def _fresh_trial(self, n: int, tag: str) -> Trial:
        code = f"B{tag}{int(time.time()) % 10_000_000}"
        trial = build_modic_trial(code=code)
        Trial.objects.filter(pk=trial.pk).update(target_sample_size=n)
        trial.refresh_from_db()
        return trial

    @transaction.atomic
    def _bulk_enroll(self, trial: Trial, n: int, user: User) -> list[Participant]:
        """Bulk-create N consented participants with baseline: set-up, not measured."""
        rng = random.Random(2012)
        today = trial_today(trial)
        sites = list(trial.sites.all())
        document = trial.consent_documents.get()
        answers = {str(c.pk): not c.ineligible_answer for c in trial.criteria.all()}
        screenings = ScreeningRecord.objects.bulk_create(
            ScreeningRecord(
                trial=trial, site=sites[i % len(sites)], initials="BX",
                screened_on=today - dt.timedelta(days=1), answers=answers,
                outcome=ScreeningRecord.Outcome.ENROLLED, screened_by=user,
            )
            for i in range(n)
        )  # fmt: skip
        now = timezone.now()
        people = []
        for screening in screenings:
            age, pain = rng.randint(18, 60), rng.randint(4, 10)
            people.append(
                Participant(
                    trial=trial, site=screening.site, screening=screening,
                    consent_date=screening.screened_on, consent_document=document,
                    full_name="Bench Person", phone="+4520123456",
                    baseline={"age": age, "pain": pain},
                    factor_levels={
                        "modic": rng.choice(["type1", "type2"]),
                        "sex": rng.choice(["female", "male"]),
                        "pain": "4-6" if pain < 7 else "7-10",
                        "age": "lt40" if age < 40 else "ge40",
                    },
                    baseline_completed_at=now, enrolled_by=user,
                )
            )  # fmt: skip
        return Participant.objects.bulk_create(people, batch_size=2000)


def _cpus() -> int:
    return os.cpu_count() or 0
