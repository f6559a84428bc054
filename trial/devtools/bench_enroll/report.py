"""The enrollment table and the anomalies read back from the database after the run."""

from __future__ import annotations

import os
import platform

from participants import services
from participants.models import Allocation, Participant
from trial.devtools.bench_enroll import GOAL_PER_SECOND, GOAL_RATIO
from trial.devtools.bench_enroll.server import pg_version
from trial.models import Site, Trial


def enrollment_table(specs, clients, seconds, ours, base, sample, problems, client_cpu,
           participants) -> str:  # fmt: skip
    rate, bare_rate = ours[0].rate, base.rate
    ratio = rate / bare_rate if bare_rate else 0.0
    rows = [
        ("server", f"gunicorn {specs[0].label}, 127.0.0.1, PostgreSQL {pg_version()}"),
        ("clients", f"{clients} threads, {seconds:g} s per side, interleaved halves"),
        ("participants ready (setup)", f"{participants:,}"),
        ("randomizations in the window", f"{ours[0].ok_in_window:,}"),
        (f"randomizations per second (goal ≥ {GOAL_PER_SECOND})", f"{rate:.0f}"),
        ("p50 / p95 / max request time", ours[0].latency_text()),
        ("baseline: bare SQL loop, transactions", f"{base.ok_in_window:,}"),
        ("baseline: bare SQL loop per second", f"{bare_rate:.0f}"),
        (f"ratio, ours / bare (goal ≥ {GOAL_RATIO})", f"{ratio:.2f}×"),
        ("statements per randomize request (in process)",
         f"{sample.statements}, {sample.locked_statements} of them holding the trial lock"),
        ("one request in process, uncontended: wall / CPU",
         f"{sample.request_ms:.1f} / {sample.request_cpu_ms:.1f} ms"),
        ("… of which the trial row is locked (lock to COMMIT)",
         f"{sample.service_ms:.1f} ms: at most {1000 / sample.service_ms:.0f} per second"),
        ("HTTP 5xx", f"{sum(r.server_errors for r in ours)}"),
        ("anomalies", f"{len(problems)}"),
        ("client CPU, ours / bare phases (share of one core)",
         f"{client_cpu[0]:.0%} / {client_cpu[1]:.0%}"),
        ("machine", f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                    f"{platform.python_version()}"),
    ]  # fmt: skip
    for place, (spec, runs) in enumerate(list(zip(specs, ours, strict=True))[1:], 6):
        # Other server configurations, measured interleaved with the headline one.
        rows.insert(
            place,
            (f"… with gunicorn {spec.label}: per second, p50 / p95 / max",
             f"{runs.rate:.0f}, {runs.latency_text()}"),
        )  # fmt: skip
    lines = ["| concurrent enrollment | result |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    verdict = [
        f"{rate:.0f}/s {'meets' if rate >= GOAL_PER_SECOND else 'MISSES'} ≥ {GOAL_PER_SECOND}/s",
        f"ratio {ratio:.2f} {'meets' if ratio >= GOAL_RATIO else 'MISSES'} ≥ {GOAL_RATIO}",
        f"{len(problems)} anomalies",
    ]
    return "\n".join(lines) + "\n\nenrollment: " + "; ".join(verdict) + "\n"


# --- Anomalies ------------------------------------------------------------------------------


def anomalies(trial: Trial, *, answered: int) -> list[str]:
    """What concurrent randomization must never produce, read back from the database."""
    problems = []
    trial.refresh_from_db()
    sequences = list(
        Allocation.objects.filter(trial=trial)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    if sequences != list(range(1, len(sequences) + 1)):
        problems.append("allocation sequence is not unique and gap-free")
    if trial.allocation_count != len(sequences):
        problems.append(f"trial counter {trial.allocation_count} ≠ {len(sequences)} allocations")
    if answered != len(sequences):
        problems.append(f"{answered} randomizations answered, {len(sequences)} stored")
    participants = list(
        Allocation.objects.filter(trial=trial).values_list("participant_id", flat=True)
    )
    if len(set(participants)) != len(participants):
        problems.append("a participant was allocated twice")
    for site in Site.objects.filter(trial=trial):
        numbers = Participant.objects.filter(site=site, number__isnull=False).values_list(
            "number", flat=True
        )
        suffixes = sorted(int(number.rsplit("-", 1)[1]) for number in numbers)
        if suffixes != list(range(1, site.randomized_count + 1)):
            problems.append(f"site {site.code}: numbers not unique and gap-free")
    stored = services.stored_level_counts(trial)
    if stored != services.recount_level_counts(trial):
        problems.append("FactorLevelCount differs from the recount of allocations")
    active = Participant.objects.filter(trial=trial, status=Participant.Status.ACTIVE).count()
    if active != len(sequences):
        problems.append(f"{active} active participants, {len(sequences)} allocations")
    return problems
