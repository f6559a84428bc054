"""Synthetic trials at scale, for the benchmarks (`make bench`, manage.py bench_scale).

`build_synthetic_trial(code, n)` creates a trial with the demo Modic configuration
(trial.devtools.demo.build_modic_trial) and fills it with `n` randomized participants and their
history, as the services would have left it, in minutes even at n = 100,000:

- a screening record (enrolled), the participant (number per site, gap-free), baseline
  values and factor levels, and the Allocation, decided by the real minimization rule
  (participants.minimization) over running counts, so counts_seen, scores, probabilities
  and draws are those a replay would give; FactorLevelCount equals a recount;
- three visits planned from the real schedule (participants.schedule) on the randomization
  date: the baseline done, follow-ups mostly attended in the window, some late, some missed
  with a reason, some still open; about 4% lost to follow-up or withdrawn, each with its
  StatusChange row and the visit consequences participant_status_change would have had;
- an OutcomeEntry per instrument due at each attended visit, scored with
  outcomes.instruments.scoring (pain 0–10, Roland–Morris items, EQ-5D-3L index and VAS,
  global 1–7), the baseline ones linked to the baseline visit as randomization links them;
- up to `weeks` weekly SMS rounds per participant (stopped by a status change or by today):
  SmsWeek, the question OutboundMessage rows (sent), and for each reply an InboundMessage
  and SmsAnswer (about 85% of weeks answered), with the week's answered count and current
  question as outcomes.sms.tracking keeps them. Reminders, clarifications and thank-yous are
  left out: they would double the SMS tables without changing what the benchmarks read.

`ready` more participants are consented with baseline recorded but not randomized, so a
benchmark can randomize them through participants.services.participant_randomize.

Speed: rows are generated in Python per participant (bounded memory: buffers of at most
FLUSH_ROWS rows per table) and written with COPY on PostgreSQL, executemany on SQLite, with
primary keys taken in one block from each table's sequence. No ORM save per row, hence no
simple-history rows for the synthetic data: the benchmarks never read history.

Benchmark data only: nothing else may write these tables directly.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import queue
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.scoring import RMDQ_ITEMS
from outcomes.instruments.services import score_fields
from outcomes.sms import sms_rules, sms_totals
from outcomes.sms.models import (
    InboundMessage,
    OutboundMessage,
    SmsAnswer,
    SmsQuestion,
    SmsSchedule,
    SmsWeek,
)
from participants import minimization, schedule
from participants.models import (
    Allocation,
    FactorLevelCount,
    Participant,
    ScreeningRecord,
    StatusChange,
    Visit,
)
from participants.search import fold
from participants.selectors import trial_config
from participants.services.followup import LOST_REASON
from trial.devtools import demo
from trial.devtools.demo_sms import DECLINE_RATE, DEFAULT_DECLINE_RATE
from trial.models import Site, Trial, VisitDefinition

# Rows buffered per table before they are written (one COPY or executemany each).
FLUSH_ROWS = 50_000
# From this many participants, PostgreSQL builds indexes and checks foreign keys after the
# load rather than row by row (_Loader.defer_checks).
DEFER_CHECKS_FROM = 500
# Randomization dates: most participants over the ~26 months before their SMS weeks could
# all have been sent, the rest recruited since (their later visits and weeks still to come).
OLDEST_DAYS = 790
RECENT_SHARE = 0.03
# (status, reason, follow-up allowed, share of participants)
EVENTS = (
    ("lost", "Not reachable by phone, letter or e-mail", None, 0.02),
    ("withdrawn", "No longer wishes to take part", False, 0.01),
    ("withdrawn", "Stopped the allocated treatment; still answers follow-up", True, 0.01),
)
MISSED_REASONS = ("Not reached by phone", "Declined the visit", "Moved away")
# Weekly reply habits (share of participants, chance a week's first question is answered).
HABITS = ((0.72, 0.94), (0.18, 0.6), (0.10, 0.5))
JOB_DELAY = dt.timedelta(seconds=40)  # the weekly job runs shortly after the send time


@dataclass
class _Ids:
    """Primary keys handed out from a block reserved per table."""

    next: int

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value


class _Loader:
    """Buffers rows per table and writes them in bulk: COPY on PostgreSQL, executemany on
    SQLite. Rows are lines in COPY's text format (the SMS rows, millions of them, are
    formatted straight into one f-string each); SQLite gets them split back into values,
    which it accepts as text for every column type used.

    On PostgreSQL the COPYs run in a second thread on the same connection and transaction
    (the main thread does not touch the connection until `finish`), so the server parses
    one buffer while Python generates the next: on two cores, the load takes about the
    longer of the two instead of their sum."""

    def __init__(self, report) -> None:
        self.vendor = connection.vendor
        self.report = report
        self.rows: dict[type, list[str]] = defaultdict(list)  # lines in COPY text form
        self.columns: dict[type, tuple[str, ...]] = {}
        self.ids: dict[type, _Ids] = {}
        self.waited = 0.0  # seconds the generator waited for the server
        self.copier: _Copier | None = None

    def reserve(self, model, columns: tuple[str, ...]) -> _Ids:
        """Lock the table against other writers and start a block of ids after the
        sequence; `finish` moves the sequence past the block. Rows are `columns` tuples."""
        self.columns[model] = columns
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                # EXCLUSIVE: readers go on, other inserts wait until we commit, so no one
                # else takes an id from the sequence inside our block.
                cursor.execute(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE')
                cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
                start = cursor.fetchone()[0]
            else:  # the IMMEDIATE transaction already holds SQLite's write lock
                start = (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1
        self.ids[model] = _Ids(start)
        return self.ids[model]

    def add(self, model, *values: str | None) -> None:
        """One row; every value a str (already in COPY text form) or None."""
        self.rows[model].append("\t".join(NULL if v is None else v for v in values) + "\n")

    def flush_full(self) -> None:
        """Write the tables whose buffer is full (called between participants)."""
        for model, rows in list(self.rows.items()):
            if len(rows) >= FLUSH_ROWS:
                self.flush(model)

    def flush(self, model) -> None:
        rows = self.rows[model]
        if not rows:
            return
        self.rows[model] = []
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        names = ", ".join(quote(c) for c in self.columns[model])
        if self.vendor == "postgresql":
            if self.copier is None:
                connection.ensure_connection()
                self.copier = _Copier(connection.connection)
            started = time.perf_counter()
            self.copier.put(f"COPY {table} ({names}) FROM STDIN", rows)
            self.waited += time.perf_counter() - started
        else:
            marks = ", ".join(["%s"] * len(self.columns[model]))
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})", map(_values, rows)
                )

    def finish(self) -> None:
        for model in list(self.rows):
            self.flush(model)
        if self.copier is not None:
            started = time.perf_counter()
            self.copier.close()
            self.report(
                f"rows written; waited for the server {self.waited:.1f} s while generating, "
                f"{time.perf_counter() - started:.1f} s at the end"
            )
        if self.vendor != "postgresql":
            return  # SQLite's AUTOINCREMENT follows the largest explicit id by itself
        with connection.cursor() as cursor:
            for model, ids in self.ids.items():
                if ids.next > 1:
                    cursor.execute(
                        "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                        [model._meta.db_table, ids.next - 1],
                    )
            self._restore(cursor)

    def defer_checks(self, models) -> None:
        """PostgreSQL, large loads: drop the tables' secondary indexes, unique and foreign
        key constraints for the load and re-create them in `finish`, from their own stored
        definitions (pg_get_indexdef, pg_get_constraintdef), in the same transaction.

        Why: with them in place every COPYed row updates each index and queues a foreign
        key check (one lookup per key at commit): about 20,000 rows/s on the 2-core
        machine. Building an index once over the loaded table and validating a foreign key
        with one anti-join each is several times faster, and checks exactly the same rules
        before anyone can see the rows."""
        self.restore_sql: list[str] = []
        tables = [model._meta.db_table for model in models]
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            # Run the checks still queued (the trial's configuration, just created): a
            # table with pending trigger events cannot be altered.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype"
                " FROM pg_constraint WHERE conrelid = ANY(%s::regclass[])"
                " AND contype IN ('f', 'u') ORDER BY contype",
                [tables],
            )
            constraints = cursor.fetchall()
            cursor.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)"
                " FROM pg_index i WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                [tables],
            )
            indexes = cursor.fetchall()
            quote = connection.ops.quote_name
            # Foreign keys first (they may rest on a unique index), unique constraints after.
            for table, name, *_ in constraints:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
            # Restored in reverse: indexes and unique constraints, then foreign keys.
            self.restore_sql += [definition for _, definition in indexes]
            self.restore_sql += [
                f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}"
                for table, name, definition, kind in reversed(constraints)
            ]

    def _restore(self, cursor) -> None:
        if not hasattr(self, "restore_sql"):
            return
        started = time.perf_counter()
        slowest = []
        for statement in self.restore_sql:
            t0 = time.perf_counter()
            cursor.execute(statement)
            slowest.append((time.perf_counter() - t0, statement))
        for seconds, statement in sorted(slowest, reverse=True)[:8]:
            self.report(f"  {seconds:.1f} s {statement[:110]}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's default, as before
        restored = time.perf_counter()
        for model in self.ids:  # as autovacuum would, before anyone plans a query on them
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self.report(
            f"indexes and constraints rebuilt in {restored - started:.1f} s, "
            f"ANALYZE {time.perf_counter() - restored:.1f} s"
        )


class _Copier:
    """One thread COPYing buffers of rows on the given psycopg2 connection, in order."""

    def __init__(self, raw_connection) -> None:
        self.raw = raw_connection
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="benchdata-copy", daemon=True)
        self.thread.start()

    def put(self, sql: str, rows: list[str]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((sql, rows))

    def close(self) -> None:
        """Wait for the COPYs queued; raise the first one's error, if any."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Let the thread finish (its COPY in progress, then nothing more) before the
        transaction is rolled back under it."""
        self.error = self.error or RuntimeError("load aborted")
        self.queue.put(None)
        self.thread.join()

    def _run(self) -> None:
        cursor = self.raw.cursor()
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the main thread raises at its next put or close
            sql, rows = item
            try:
                cursor.copy_expert(sql, io.StringIO("".join(rows)), size=1 << 20)
            except BaseException as exc:  # handed to the main thread
                self.error = exc
        cursor.close()


NULL = r"\N"
_ESCAPES = {"\\": "\\", "t": "\t", "n": "\n"}


def _values(line: str) -> tuple[str | None, ...]:
    """A COPY text line back into values (SQLite; tiny sizes only)."""
    return tuple(
        None if v == NULL else re.sub(r"\\(.)", lambda m: _ESCAPES[m.group(1)], v)
        for v in line[:-1].split("\t")
    )


def _text(value: str) -> str:
    """Free text, escaped for COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _json(value) -> str:
    return _text(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))


class _Clock:
    """Dates and aware datetimes as the column text both backends read back as Django
    writes them (PostgreSQL: UTC with offset; SQLite: naive UTC). The SMS tables hold
    millions of timestamps, so those are whole epoch seconds, formatted with the day's text
    cached (several times faster than datetime.isoformat)."""

    def __init__(self, zone) -> None:
        self.zone = zone
        self.suffix = "" if connection.vendor != "postgresql" else "+00"
        self.days: dict[int, str] = {}

    def ts(self, moment: dt.datetime) -> str:
        return self.stamp(int(moment.timestamp()))

    def stamp(self, seconds: int) -> str:
        day, rest = divmod(seconds, 86400)
        text = self.days.get(day)
        if text is None:
            text = self.days[day] = (EPOCH + dt.timedelta(days=day)).isoformat()
        hours, rest = divmod(rest, 3600)
        return f"{text} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}{self.suffix}"

    def local(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=self.zone)


EPOCH = dt.date(1970, 1, 1)


# Column orders of the rows below (all columns: COPY and INSERT apply no Django defaults).
SCREENING_COLUMNS = (
    "id", "trial_id", "site_id", "initials", "screened_on", "answers", "outcome",
    "ineligibility_reasons", "declined_reason", "screened_by_id", "created_at", "form_token",
    "voided_at", "voided_by_id", "void_reason",
)  # fmt: skip
PARTICIPANT_COLUMNS = (
    "id", "trial_id", "site_id", "screening_id", "status", "number", "consent_date",
    "consent_document_id", "full_name", "search_name", "phone", "baseline", "factor_levels",
    "baseline_completed_at", "status_changed_on", "followup_allowed", "sms_language",
    "sms_opted_out_at", "sms_missed_weeks", "randomized_at", "randomized_on", "enrolled_by_id",
    "created_at",
)  # fmt: skip
ALLOCATION_COLUMNS = (
    "id", "trial_id", "participant_id", "sequence", "arm_id", "slot", "method", "factor_levels",
    "counts_seen", "scores", "probabilities", "draw", "settings_used", "algorithm_version",
    "allocated_by_id", "allocated_at",
)  # fmt: skip
STATUS_COLUMNS = (
    "id", "participant_id", "from_status", "to_status", "effective_on", "reason",
    "followup_allowed", "by_id", "at", "reverses_id",
)  # fmt: skip
VISIT_COLUMNS = (
    "id", "trial_id", "site_id", "participant_id", "definition_id", "target_date",
    "window_start", "window_end", "outcome", "attended_on", "in_window", "missed_reason",
    "early_reason", "recorded_by_id", "recorded_at", "reminder_sent_on", "closed_by_id",
)  # fmt: skip
ENTRY_COLUMNS = (
    "id", "trial_id", "participant_id", "visit_id", "instrument_id", "responses", "score",
    "eq5d_profile", "eq5d_vas", "improved", "not_done", "not_done_note", "entered_by_id",
    "entered_at",
)  # fmt: skip
WEEK_COLUMNS = (
    "id", "trial_id", "site_id", "participant_id", "week", "send_date", "opened_at",
    "current_question_id", "answered", "completed_at", "reminder_sent_at", "clarifications",
)  # fmt: skip
OUTBOUND_COLUMNS = (
    "id", "trial_id", "participant_id", "to", "body", "kind", "status", "attempts",
    "last_error", "gateway_message_id", "created_at", "sent_at", "next_attempt_at",
    "last_attempt_at", "delivery_status", "delivery_error_code", "delivery_updated_at",
    "week_id", "question_id",
)  # fmt: skip
INBOUND_COLUMNS = (
    "id", "gateway_message_id", "trial_id", "participant_id", "from_number", "to_number",
    "body", "body_truncated", "received_at", "kind", "week_id", "question_id", "value",
    "reply_id",
)  # fmt: skip
ANSWER_COLUMNS = (
    "id", "trial_id", "participant_id", "week_id", "question_id", "value", "message_id",
    "answered_at",
)  # fmt: skip


def build_synthetic_trial(
    code: str,
    n: int,
    *,
    weeks: int = 62,
    seed: int = 1,
    today: dt.date | None = None,
    ready: int = 0,
    report: Callable[[str], None] | None = None,
) -> Trial:
    """Create trial `code` (the demo Modic configuration) with `n` randomized participants
    and their history up to `today` (default: the trial's today), plus `ready` consented
    participants with baseline, awaiting randomization. The SMS schedule is set to `weeks`
    rounds. Same arguments, same data (dates are relative to `today`). `report` receives
    a line on each phase of the load (its timings)."""
    if n < 0 or ready < 0 or weeks < 1:
        raise ValueError("n and ready must be ≥ 0 and weeks ≥ 1")
    with transaction.atomic():
        trial = demo.build_modic_trial(code=code)
        if trial.allocation_count or Participant.objects.filter(trial=trial).exists():
            raise ValueError(f"trial {code} already has participants")
        builder = _Builder(
            trial, n, weeks=weeks, seed=seed, today=today, ready=ready, report=report or _quiet
        )
        try:
            builder.run()
        except BaseException:
            if builder.loader.copier is not None:
                builder.loader.copier.abort()
            raise
    trial.refresh_from_db()
    return trial


class _Builder:
    """Generates the participants oldest first and hands their rows to the loader."""

    def __init__(self, trial: Trial, n: int, *, weeks, seed, today, ready, report) -> None:
        self.trial, self.n, self.weeks, self.ready = trial, n, weeks, ready
        self.rng = random.Random(seed)
        self.zone = trial.zone
        self.today = today or timezone.localdate(timezone=self.zone)
        self.now = (
            timezone.now()
            if today is None
            else dt.datetime.combine(today, dt.time(22, 0), tzinfo=self.zone)
        )
        self.clock = _Clock(self.zone)
        self.user, _ = User.objects.get_or_create(
            username="synthetic-data", defaults={"first_name": "Synthetic", "is_active": False}
        )
        self.config = trial_config(trial)
        self.sites = list(Site.objects.filter(trial=trial).order_by("code"))
        self.document = trial.consent_documents.get()
        self.criteria = {str(c.pk): not c.ineligible_answer for c in trial.criteria.all()}
        self.definitions = list(VisitDefinition.objects.filter(trial=trial))
        self.specs = [
            schedule.VisitSpec(d.code, d.offset_days, d.window_before, d.window_after)
            for d in self.definitions
        ]
        self.due: dict[int, list] = defaultdict(list)
        instruments = (
            Instrument.objects.filter(trial=trial)
            .select_related("value_set")
            .prefetch_related("visits")
        )
        for instrument in instruments:
            for definition in instrument.visits.all():
                self.due[definition.pk].append(instrument)
        for instruments in self.due.values():
            instruments.sort(key=lambda i: (i.order, i.pk))
        SmsSchedule.objects.filter(trial=trial).update(weeks=weeks)
        self.sms = SmsSchedule.objects.get(trial=trial)
        self.questions = list(SmsQuestion.objects.filter(trial=trial).order_by("order", "pk"))
        self.bodies = {
            (t.question_id, t.language.code): _text(t.text)
            for q in self.questions
            for t in q.texts.select_related("language")
        }
        self.loader = _Loader(report)
        self.trial_id = str(trial.pk)
        # Send moments per send date, shared by everyone (a few hundred Sundays).
        self.moments: dict[dt.date, tuple[int, str]] = {}
        self.current_send_date = _last_send_date(self.now, self.zone, self.sms)

    # --- Orchestration -----------------------------------------------------------------

    def run(self) -> None:
        load = self.loader
        for model, columns in TABLES:
            load.reserve(model, columns)
        if connection.vendor == "postgresql" and self.n >= DEFER_CHECKS_FROM:
            load.defer_checks(load.ids)
        arms = [arm.code for arm in self.config.arms]
        arm_ids = {arm.code: arm.pk for arm in self.config.arms}
        weights = {f.code: f.weight for f in self.config.factors}
        settings_used = _json(
            {
                "imbalance_measure": self.trial.imbalance_measure,
                "preferred_probability": str(self.trial.preferred_probability),
                "initial_random_allocations": self.trial.initial_random_allocations,
                "weights": weights,
                "arms": arms,
                "ratios": {arm.code: arm.allocation_ratio for arm in self.config.arms},
            }
        )
        # counts[factor][level][arm]: participants so far, as FactorLevelCount keeps them.
        counts = {
            f.code: {lv.code: dict.fromkeys(arms, 0) for lv in f.levels}
            for f in self.config.factors
        }  # noqa: E501
        per_site = dict.fromkeys((s.pk for s in self.sites), 0)
        events = self._events()
        for sequence, randomized_on in enumerate(self._randomization_dates(), 1):
            rng = self.rng
            site = rng.choice(self.sites)
            per_site[site.pk] += 1
            person = self._person(site, randomized_on - dt.timedelta(days=rng.randint(0, 7)))
            levels = person["levels"]
            seen = {f: dict(counts[f][lv]) for f, lv in levels.items()}
            # The demo design has equal ratios: one slot per arm, so {arm: n} counts are the
            # whole state (and every slot is 1).
            decision = minimization.allocate(
                arms=arms, counts=seen, weights=weights,
                measure=self.trial.imbalance_measure,
                p=float(self.trial.preferred_probability), rng=rng,
                simple_randomization=sequence <= self.trial.initial_random_allocations,
            )  # fmt: skip
            for f, lv in levels.items():
                counts[f][lv][decision.arm] += 1
            randomized_at = self.clock.local(randomized_on, rng.randint(8, 15), rng.randint(0, 59))
            pid = load.ids[Participant].take()
            event = self._event_on(events.get(sequence), randomized_on)
            change_id = load.ids[StatusChange].take() if event else None
            missed_weeks = self._followup(
                pid, site, person, decision.arm, randomized_on, randomized_at, event, change_id
            )
            self._write_person(
                pid, person, site, number=f"{self.trial.code}-{site.code}-{per_site[site.pk]:04d}",
                randomized_on=randomized_on, randomized_at=randomized_at, event=event,
                change_id=change_id, missed_weeks=missed_weeks,
            )  # fmt: skip
            load.add(
                Allocation,
                str(load.ids[Allocation].take()), str(self.trial.pk), str(pid), str(sequence),
                str(arm_ids[decision.arm]), str(decision.slot), decision.method, _json(levels),
                _json(seen),
                _json(decision.scores), _json(decision.probabilities), repr(decision.draw),
                settings_used, minimization.ALGORITHM_VERSION, str(self.user.pk),
                self.clock.ts(randomized_at),
            )  # fmt: skip
            load.flush_full()
        for _ in range(self.ready):
            site = self.rng.choice(self.sites)
            person = self._person(site, self.today - dt.timedelta(days=self.rng.randint(0, 3)))
            pid = load.ids[Participant].take()
            self._write_person(pid, person, site)
            self._entries(pid, None, person["baseline_entries"], person["entered_at"])
        load.finish()
        self._counts(counts, arm_ids, per_site)
        started = time.perf_counter()
        sms_totals.rebuild([self.trial.pk])  # as the answers would have, one by one
        self.loader.report(f"SMS totals counted in {time.perf_counter() - started:.1f} s")

    def _counts(self, counts, arm_ids, per_site) -> None:
        """The maintained counters, as participant_randomize would have left them."""
        level_ids = {(f.code, lv.code): lv.id for f in self.config.factors for lv in f.levels}
        FactorLevelCount.objects.bulk_create(
            FactorLevelCount(
                trial=self.trial, level_id=level_ids[(f, lv)], arm_id=arm_ids[arm], count=k
            )
            for f, by_level in counts.items()
            for lv, by_arm in by_level.items()
            for arm, k in by_arm.items()
        )
        for site_id, k in per_site.items():
            Site.objects.filter(pk=site_id).update(randomized_count=k)
        Trial.objects.filter(pk=self.trial.pk).update(
            target_sample_size=max(1, self.n + self.ready),
            allocation_count=self.n,
            status=Trial.Status.RECRUITING,
        )

    def _randomization_dates(self) -> list[dt.date]:
        """Oldest first, so sequence numbers follow the dates."""
        rng, n = self.rng, self.n
        sms_days = 7 * self.weeks + 8  # randomized this long ago: every week has been sent
        oldest = max(OLDEST_DAYS, sms_days + 30)
        recent = round(n * RECENT_SHARE)
        days = [rng.randint(sms_days, oldest) for _ in range(n - recent)]
        days += [rng.randint(1, sms_days - 1) for _ in range(recent)]
        return sorted(self.today - dt.timedelta(days=d) for d in days)

    def _events(self) -> dict[int, tuple]:
        """Status changes by sequence number, among participants followed for 4 months."""
        if self.n == 0:
            return {}
        chosen = list(range(1, self.n + 1))
        self.rng.shuffle(chosen)
        events, start = {}, 0
        for status, reason, allowed, share in EVENTS:
            k = round(share * self.n)
            for sequence in chosen[start : start + k]:
                events[sequence] = (status, reason, allowed)
            start += k
        return events

    def _event_on(self, event: tuple | None, randomized_on: dt.date) -> tuple | None:
        """(status, reason, follow-up allowed, date) for a participant followed at least
        four months, else None."""
        elapsed = (self.today - randomized_on).days
        if event is None or elapsed < 120:
            return None
        return (*event, randomized_on + dt.timedelta(days=self.rng.randint(75, min(elapsed, 400))))

    # --- One participant -----------------------------------------------------------------

    def _person(self, site: Site, screened_on: dt.date) -> dict:
        """Baseline of an eligible patient (pain 4–10 and a matching disability) and the
        screening record."""
        rng, load = self.rng, self.loader
        course = _course(rng)
        values = {}
        for var in self.config.variables:
            if var.code == "pain":
                values[var.code] = course.pain
            else:
                low = var.min_value if var.eligible_min is None else var.eligible_min
                high = var.max_value if var.eligible_max is None else var.eligible_max
                values[var.code] = rng.randint(low, high)
        levels = {}
        for factor in self.config.factors:
            if factor.kind == "choice":
                levels[factor.code] = rng.choice(factor.levels).code
            else:
                levels[factor.code] = minimization.level_for_value(
                    [(lv.code, lv.lower, lv.upper) for lv in factor.levels],
                    values[factor.variable_code],
                )
        screening_id = load.ids[ScreeningRecord].take()
        load.add(
            ScreeningRecord,
            str(screening_id), str(self.trial.pk), str(site.pk),
            rng.choice(("AB", "JH", "KL", "MN", "SP", "TR")), screened_on.isoformat(),
            _json(self.criteria), ScreeningRecord.Outcome.ENROLLED, "[]", "", str(self.user.pk),
            self.clock.ts(self.clock.local(screened_on, 7, 30)), None, None, None, "",
        )  # fmt: skip
        entered_at = self.clock.local(screened_on, 7, 45)
        return {
            "screening_id": screening_id,
            "screened_on": screened_on,
            "course": course,
            "values": values,
            "levels": levels,
            "language": "en" if rng.random() < 0.15 else "",
            "entered_at": entered_at,
            "baseline_entries": self._baseline_entries(course),
        }

    def _write_person(
        self, pid: int, person: dict, site: Site, *, number: str | None = None,
        randomized_on: dt.date | None = None, randomized_at: dt.datetime | None = None,
        event: tuple | None = None, change_id: int | None = None, missed_weeks: int = 0,
    ) -> None:  # fmt: skip
        status = Participant.Status.ACTIVE if number else Participant.Status.ENROLLED
        if event:
            status = event[0]
        ts = self.clock.ts
        self.loader.add(
            Participant,
            str(pid), str(self.trial.pk), str(site.pk), str(person["screening_id"]), status,
            number, person["screened_on"].isoformat(), str(self.document.pk),
            f"Synthetic Participant {pid}", fold(f"Synthetic Participant {pid}"), _phone(pid),
            _json(person["values"]),
            _json(person["levels"]), ts(person["entered_at"]),
            event[3].isoformat() if event else None,
            "0" if event and event[2] is False else "1", person["language"], None,
            str(missed_weeks), ts(randomized_at) if randomized_at else None,
            randomized_on.isoformat() if randomized_on else None, str(self.user.pk),
            ts(person["entered_at"]),
        )  # fmt: skip
        if event:
            load = self.loader
            load.add(
                StatusChange,
                str(change_id), str(pid), Participant.Status.ACTIVE,
                event[0], event[3].isoformat(), event[1],
                None if event[2] is None else ("1" if event[2] else "0"), str(self.user.pk),
                ts(self._change_at(event)), None,
            )  # fmt: skip

    def _change_at(self, event: tuple) -> dt.datetime:
        """When the status change was recorded: noon of its effective date (never later than
        now). Visits it closed carry the same time, as the service writes them."""
        return min(self.now, self.clock.local(event[3], 12))

    def _followup(
        self, pid, site, person, arm, randomized_on, randomized_at, event, change_id=None
    ) -> int:
        """Visits, outcome entries and SMS weeks; returns the missed-weeks count. Visits the
        status change `change_id` (the event) closed are linked to it."""
        load, rng, ts = self.loader, self.rng, self.clock.ts
        event_on = event[3] if event else None
        for definition, plan in zip(
            self.definitions, schedule.plan(randomized_on, self.specs), strict=True
        ):
            visit_id = load.ids[Visit].take()
            if definition.at_randomization:
                outcome, day, reason = Visit.Outcome.COMPLETED, randomized_on, ""
                self._entries(pid, visit_id, person["baseline_entries"], person["entered_at"])
            else:
                outcome, day, reason = self._visit_fate(plan, event)
            recorded_at = None
            if outcome != Visit.Outcome.OPEN:
                recorded = (
                    randomized_at
                    if day == randomized_on
                    else self.clock.local(day or min(self.today, event_on or self.today), 16)
                )
                recorded_at = min(self.now, recorded)
            closed_by = None
            if event and (
                outcome == Visit.Outcome.NOT_REQUIRED
                or (outcome == Visit.Outcome.MISSED and reason == LOST_REASON)
            ):
                closed_by, recorded_at = change_id, self._change_at(event)
            if outcome == Visit.Outcome.COMPLETED and not definition.at_randomization:
                course = person["course"]
                pain, rmdq = _followup_scores(course, definition.offset_days, arm, rng)
                items = []
                for instrument in self.due.get(definition.pk, []):
                    if not instrument.primary and rng.random() < 0.03:
                        items.append((instrument, None, rng.choice(("refused", "too_ill")), ""))
                    else:
                        responses = self._responses(instrument, pain, rmdq, course.pain)
                        items.append((instrument, responses, "", ""))
                self._entries(pid, visit_id, items, recorded_at)
            in_window = None
            if outcome == Visit.Outcome.COMPLETED:
                in_window = (
                    "1" if schedule.in_window(day, plan.window_start, plan.window_end) else "0"
                )  # noqa: E501
            done = outcome != Visit.Outcome.OPEN and outcome != Visit.Outcome.NOT_REQUIRED
            load.add(
                Visit,
                str(visit_id), str(self.trial.pk), str(site.pk), str(pid), str(definition.pk),
                plan.target.isoformat(), plan.window_start.isoformat(),
                plan.window_end.isoformat(), outcome,
                day.isoformat() if outcome == Visit.Outcome.COMPLETED else None, in_window,
                reason, "", str(self.user.pk) if done or recorded_at else None,
                ts(recorded_at) if recorded_at else None, None,
                str(closed_by) if closed_by else None,
            )  # fmt: skip
        return self._sms(pid, site, person, arm, randomized_on, event_on)

    def _visit_fate(self, plan, event) -> tuple[str, dt.date | None, str]:
        """(outcome, attended date, missed reason) of a follow-up visit on `today`: the
        demo trial's course of events, then the status change's
        consequences as participant_status_change applies them."""
        rng, today = self.rng, self.today
        start, end = plan.window_start, plan.window_end
        span = (end - start).days
        fate: tuple[str, dt.date | None, str] = (Visit.Outcome.OPEN, None, "")
        if start > today:
            pass
        elif end >= today:  # window open: the later in it, the more have come in
            if rng.random() < 0.6 * (today - start).days / span:
                day = start + dt.timedelta(days=rng.randint(0, (today - start).days))
                fate = (Visit.Outcome.COMPLETED, day, "")
        elif rng.random() < 0.08:
            fate = (Visit.Outcome.MISSED, None, rng.choice(MISSED_REASONS))
        elif (today - end).days <= 14 and rng.random() < 0.25:
            pass  # overdue: the coordinator has not chased it yet
        elif rng.random() < 0.09:  # came in late
            fate = (Visit.Outcome.COMPLETED, min(today, end + dt.timedelta(rng.randint(1, 20))), "")
        else:
            target = (plan.target - start).days
            fate = (
                Visit.Outcome.COMPLETED,
                start + dt.timedelta(days=round(rng.triangular(0, span, target))),
                "",
            )
        if event is None:
            return fate
        status, _, allowed, event_on = event
        if fate[1] is not None and fate[1] < event_on:
            return fate  # attended before the status changed
        if fate[0] == Visit.Outcome.MISSED and end < event_on:
            return fate
        if status == Participant.Status.LOST:
            # Visits whose window had closed are missed; later ones stay planned.
            if end < event_on:
                return (Visit.Outcome.MISSED, None, LOST_REASON)
            return (Visit.Outcome.OPEN, None, "")
        if status == Participant.Status.WITHDRAWN and not allowed:
            return (Visit.Outcome.NOT_REQUIRED, None, "")
        return fate

    # --- Outcome entries -------------------------------------------------------------------

    def _baseline_entries(self, course) -> list[tuple]:
        """The demo's baseline questionnaires: now and then one not done (never the one a
        baseline variable comes from, which randomization needs)."""
        baseline = next(d for d in self.definitions if d.at_randomization)
        items = []
        for instrument in self.due.get(baseline.pk, []):
            if instrument.baseline_variable_id is None and self.rng.random() < 0.04:
                items.append((instrument, None, self.rng.choice(("refused", "too_ill")), ""))
            else:
                responses = self._responses(instrument, course.pain, course.rmdq, course.pain)
                items.append((instrument, responses, "", ""))
        return items

    def _responses(self, instrument, pain: int, rmdq: int, baseline_pain: int) -> dict:
        """Responses as the instrument's form gives them (outcomes.instruments.forms)."""
        rng, kind = self.rng, instrument.kind
        if kind == Instrument.Kind.PAIN_NRS:
            return {"value": pain}
        if kind == Instrument.Kind.RMDQ:
            yes = set(rng.sample(range(RMDQ_ITEMS), rmdq))
            return {"items": [item in yes for item in range(RMDQ_ITEMS)]}
        if kind == Instrument.Kind.EQ5D_3L:
            return _eq5d(pain, rmdq, rng)
        if kind == Instrument.Kind.GLOBAL_7:
            return {"answer": _global(baseline_pain - pain + rng.gauss(0, 1.3))}
        raise ValueError(f"no synthetic responses for {kind}")

    def _entries(self, pid: int, visit_id: int | None, items, entered_at) -> None:
        """One OutcomeEntry per instrument, scored by the real rule
        (outcomes.instruments.services)."""
        load, model = self.loader, OutcomeEntry
        for instrument, responses, not_done, note in items:
            if not_done:
                fields = {"score": None, "eq5d_profile": "", "eq5d_vas": None, "improved": None}
            else:
                fields = score_fields(instrument, responses)
            score, improved, vas = fields["score"], fields["improved"], fields["eq5d_vas"]
            load.add(
                model,
                str(load.ids[model].take()), str(self.trial.pk), str(pid),
                None if visit_id is None else str(visit_id), str(instrument.pk),
                _json(responses or {}), None if score is None else repr(float(score)),
                fields["eq5d_profile"], None if vas is None else str(vas),
                None if improved is None else ("1" if improved else "0"), not_done, note,
                str(self.user.pk), self.clock.ts(entered_at),
            )  # fmt: skip

    # --- Weekly SMS ------------------------------------------------------------------------

    def _moment(self, send_date: dt.date) -> tuple[int, str]:
        """When the weekly job opened the weeks sent on `send_date`: epoch seconds, and as
        column text (the same for every participant that week)."""
        moment = self.moments.get(send_date)
        if moment is None:
            at = sms_rules.send_moment(send_date, self.zone, self.sms.send_time) + JOB_DELAY
            seconds = int(at.timestamp())
            moment = self.moments[send_date] = (seconds, self.clock.stamp(seconds))
        return moment

    # long: the synthetic builder's innermost loop (6 million SMS weeks at 100,000
    # participants): locals bound once and no call per row keep the build to minutes.
    def _sms(self, pid, site, person, arm, randomized_on, event_on) -> int:
        """The participant's weekly rounds up to the current one, replayed as
        outcomes.sms.tracking keeps them: the first question opens the week; a valid answer is
        stored and the next question sent at once; the last answer completes the week.
        Returns the missed-weeks count the weekly job would have maintained."""
        rng, load, stamp = self.rng, self.loader, self.clock.stamp
        rows, ids = load.rows, load.ids
        weeks_out, out_rows, in_rows, answer_rows = (
            rows[m] for m in (SmsWeek, OutboundMessage, InboundMessage, SmsAnswer)
        )
        week_ids, out_ids, in_ids, answer_ids = (
            ids[m] for m in (SmsWeek, OutboundMessage, InboundMessage, SmsAnswer)
        )
        # The leading columns every row of a table repeats for this participant.
        head = f"{self.trial_id}\t{site.pk}\t{pid}"
        trial_pid = f"{self.trial_id}\t{pid}"
        out_head = f"{trial_pid}\t{_phone(pid)}"
        language = person["language"] or self.sms.default_language
        questions = [
            (str(q.pk), self.bodies[(q.pk, language)]) for q in self.questions
        ]  # (id, body)
        stop = int(self.now.timestamp())
        if event_on is not None:
            midnight = dt.datetime.combine(event_on, dt.time(0), tzinfo=self.zone)
            stop = min(stop, int(midnight.timestamp()))
        rate = DECLINE_RATE.get(arm, DEFAULT_DECLINE_RATE) * rng.uniform(0.7, 1.3)
        start, floor = rng.uniform(4.0, 6.5), rng.uniform(0.5, 2.0)
        works = rng.random() < 0.6  # sick leave only for those in work
        share = rng.random()
        answers = next((p for cut, p in _cumulative(HABITS) if share < cut), HABITS[-1][1])
        offset = (self.sms.weekday - randomized_on.weekday()) % 7 or 7
        first = randomized_on + dt.timedelta(days=offset)
        missed, previous_answered = 0, None
        random, uniform, gauss, exp = rng.random, rng.uniform, rng.gauss, math.exp
        for number in range(1, self.weeks + 1):
            send_date = first + dt.timedelta(days=7 * (number - 1))
            if send_date > self.current_send_date:
                break
            opened, opened_text = self._moment(send_date)
            if opened >= stop:
                break
            limit = min(self._moment(send_date + WEEK)[0], stop)
            if previous_answered == 0:
                missed += 1
            # Replies: (question position, value, received at) while the week is current.
            replies = []
            if random() < answers:
                late = random() < 0.06  # after the reminder
                at = opened + int(uniform(88_200, 345_600) if late else uniform(60, 72_000))
                mean = start * exp(-rate * number) + floor
                values = (
                    min(7, max(0, round(gauss(mean, 1.1)))),
                    rng.randint(1, 7)
                    if works and random() < 0.25 * exp(-0.05 * number) + 0.03
                    else 0,
                )
                for position in range(min(len(questions), len(values))):
                    if at >= limit:
                        break
                    replies.append((position, values[position], at, stamp(at)))
                    if random() < 0.05:
                        break  # the next question left unanswered
                    at += int(uniform(30, 1500))
            answered = len(replies)
            if answered:
                missed = 0
            previous_answered = answered
            complete = answered == len(questions)
            week_s = week_ids.take()
            current, completed = (
                (NULL, replies[-1][3]) if complete else (questions[answered][0], NULL)
            )
            weeks_out.append(
                f"{week_s}\t{head}\t{number}\t{send_date.isoformat()}\t{opened_text}\t"
                f"{current}\t{answered}\t{completed}\t{NULL}\t0\n"
            )
            # The questions sent: the first at opening, each next one on the answer before.
            sent = []
            for position in range(min(answered + 1, len(questions))):
                if position == 0:
                    when = opened_text
                else:
                    when = stamp(replies[position - 1][2] + REPLY_SECONDS)
                message_id = out_ids.take()
                sent.append(message_id)
                question_id, body = questions[position]
                out_rows.append(
                    f"{message_id}\t{out_head}\t{body}\tsms_question\tsent\t1\t\tSYN{message_id}"
                    f"\t{when}\t{when}\t{when}\t{when}\tdelivered\t\t{when}\t{week_s}"
                    f"\t{question_id}\n"
                )
            for position, value, _, when in replies:
                message_id = in_ids.take()
                question_id = questions[position][0]
                reply = sent[position + 1] if position + 1 < len(sent) else NULL
                in_rows.append(
                    f"{message_id}\tSYN-IN-{message_id}\t{out_head}\t\t{value}\t0\t{when}"
                    f"\tanswer\t{week_s}\t{question_id}\t{value}\t{reply}\n"
                )
                answer_rows.append(
                    f"{answer_ids.take()}\t{trial_pid}\t{week_s}\t{question_id}\t{value}"
                    f"\t{message_id}\t{when}\n"
                )
        return missed


WEEK = dt.timedelta(days=7)
REPLY_SECONDS = 3  # the next question goes out as the answer is stored


def _cumulative(habits) -> list[tuple[float, float]]:
    total, out = 0.0, []
    for share, p in habits:
        total += share
        out.append((total, p))
    return out


def _quiet(line: str) -> None:
    pass


def _phone(pid: int) -> str:
    """A Danish mobile number per participant id (unique in the database)."""
    return f"+452{pid % 10_000_000:07d}"


def _last_send_date(now: dt.datetime, zone, sms_schedule) -> dt.date:
    return sms_rules.last_send_date(now, zone, sms_schedule.weekday, sms_schedule.send_time)


# --- Outcome model --------------------------------------------------------------------------
#
# Shaped on the reference trial (BMC Medicine 2012;10:22), as the demo data are: pain about
# 6.6 at baseline, about 4.9 at 10 weeks and 4.1 at 1 year, Roland–Morris 12.5, 9.8 and 8.2,
# a small difference between the arms; each participant keeps a personal trait across visits.

BASELINE_PAIN_WEIGHTS = {4: 10, 5: 16, 6: 20, 7: 18, 8: 14, 9: 8, 10: 4}
# Mean (pain, Roland–Morris) by arm, up to a visit's offset in days (the last for later).
FOLLOWUP_MEANS = (
    (100, {"rest": (5.0, 10.0), "exercise": (4.8, 9.6)}),
    (10_000, {"rest": (4.1, 8.2), "exercise": (4.2, 8.3)}),
)
# Global assessment (1 much better … 7 much worse) for a felt improvement of at least …
GLOBAL_THRESHOLDS = ((4.4, 1), (2.3, 2), (0.8, 3), (-0.6, 4), (-1.6, 5), (-3.0, 6))


@dataclass(frozen=True)
class _Course:
    pain: int
    rmdq: int
    trait: float


def _clip(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def _course(rng: random.Random) -> _Course:
    pain = rng.choices(list(BASELINE_PAIN_WEIGHTS), weights=BASELINE_PAIN_WEIGHTS.values())[0]
    rmdq = _clip(12.5 + 1.4 * (pain - 6.6) + rng.gauss(0, 3.5), 0, 23)
    return _Course(pain=pain, rmdq=rmdq, trait=rng.gauss(0, 1))


def _followup_scores(course: _Course, offset_days: int, arm: str, rng) -> tuple[int, int]:
    by_arm = next(means for upto, means in FOLLOWUP_MEANS if offset_days <= upto)
    mean_pain, mean_rmdq = by_arm.get(arm) or next(iter(by_arm.values()))
    z = 0.75 * course.trait + 0.66 * rng.gauss(0, 1)
    pain = _clip(mean_pain + 0.45 * (course.pain - 6.6) + 2.0 * z, 0, 10)
    rmdq = _clip(
        mean_rmdq + 1.4 * (pain - mean_pain) + 0.35 * (course.rmdq - 12.5) + rng.gauss(0, 2.8),
        0,
        23,
    )
    return pain, rmdq


def _eq5d(pain: int, rmdq: int, rng: random.Random) -> dict:
    """EQ-5D-3L levels and VAS in keeping with the pain and disability."""
    pd = 1 if pain <= 1 else 3 if pain >= 8 and rng.random() < (pain - 6) / 5 else 2
    return {
        "MO": 2 if rmdq >= rng.uniform(4, 14) else 1,
        "SC": 2 if rmdq > rng.uniform(12, 30) else 1,
        "UA": 3 if rmdq >= 19 and rng.random() < 0.3 else 2 if rmdq > rng.uniform(3, 10) else 1,
        "PD": pd,
        "AD": 3 if rng.random() < 0.02 else 2 if rng.random() < 0.1 + 0.04 * pain else 1,
        "vas": _clip(rng.gauss(88 - 5 * pain - 0.6 * rmdq, 10), 0, 100),
    }


def _global(felt_improvement: float) -> int:
    return next((answer for low, answer in GLOBAL_THRESHOLDS if felt_improvement >= low), 7)


TABLES = (
    (ScreeningRecord, SCREENING_COLUMNS),
    (Participant, PARTICIPANT_COLUMNS),
    (Allocation, ALLOCATION_COLUMNS),
    (StatusChange, STATUS_COLUMNS),
    (Visit, VISIT_COLUMNS),
    (OutcomeEntry, ENTRY_COLUMNS),
    (SmsWeek, WEEK_COLUMNS),
    (OutboundMessage, OUTBOUND_COLUMNS),
    (InboundMessage, INBOUND_COLUMNS),
    (SmsAnswer, ANSWER_COLUMNS),
)
