"""The baseline: an allocation's minimal SQL in a loop, psycopg2 and no Django."""

from __future__ import annotations

import contextlib
import json

import psycopg2

from trial.devtools.bench_enroll import BARE_PREFIX, MAX_REQUESTS
from trial.devtools.bench_enroll.load import Runs, run_clients

# --- The bare SQL loop ----------------------------------------------------------------------

# Four factors of two levels, two arms: the demo's minimization, as plain integers.
BARE_LEVELS = [(factor * 2, factor * 2 + 1) for factor in range(4)]
BARE_ARMS = (1, 2)


class BareLoop:
    """An allocation's minimal SQL from `clients` psycopg2 connections, no Django."""

    def __init__(self, dsn: str, *, clients: int):
        self.dsn = dsn
        self.clients = clients

    def _execute(self, sql: str) -> None:
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
        conn.close()

    def create(self) -> None:
        p = BARE_PREFIX
        counts = ", ".join(f"({lv}, {arm}, 0)" for pair in BARE_LEVELS for lv in pair
                           for arm in BARE_ARMS)  # fmt: skip
        self._execute(f"""
            DROP TABLE IF EXISTS {p}allocation, {p}participant, {p}count, {p}trial;
            CREATE TABLE {p}trial (id int PRIMARY KEY, allocation_count int NOT NULL);
            CREATE TABLE {p}count (level int, arm int, count int NOT NULL,
                                   PRIMARY KEY (level, arm));
            CREATE TABLE {p}participant (id int PRIMARY KEY, levels int[] NOT NULL,
                                         status text NOT NULL, number text);
            CREATE TABLE {p}allocation (
                id bigserial PRIMARY KEY, trial_id int NOT NULL REFERENCES {p}trial,
                participant_id int NOT NULL UNIQUE REFERENCES {p}participant,
                sequence int NOT NULL UNIQUE, arm int NOT NULL, counts_seen jsonb NOT NULL,
                allocated_at timestamptz NOT NULL);
            INSERT INTO {p}trial VALUES (1, 0);
            INSERT INTO {p}count VALUES {counts};
            INSERT INTO {p}participant
                SELECT i, ARRAY[(i % 2), 2 + (i / 2 % 2), 4 + (i / 4 % 2), 6 + (i / 8 % 2)],
                       'enrolled', NULL
                FROM generate_series(0, {MAX_REQUESTS * 2 - 1}) AS i;
            ANALYZE {p}trial, {p}count, {p}participant;
        """)  # fmt: skip

    def drop(self) -> None:
        p = BARE_PREFIX
        with contextlib.suppress(psycopg2.Error):
            self._execute(f"DROP TABLE IF EXISTS {p}allocation, {p}participant, {p}count, {p}trial")

    def run(self, seconds: float, *, phase: int) -> Runs:
        connections = [psycopg2.connect(self.dsn) for _ in range(self.clients)]
        try:
            jobs = [self._client(conn, i, phase) for i, conn in enumerate(connections)]
            return run_clients(jobs, seconds)["main"]
        finally:
            for conn in connections:
                conn.close()

    def _client(self, conn, index: int, phase: int):
        p = BARE_PREFIX
        cursor = conn.cursor()
        # Participant ids of this client and phase: disjoint, within the scratch table.
        ids = iter(range(phase * MAX_REQUESTS + index, (phase + 1) * MAX_REQUESTS, self.clients))

        def allocate() -> str | None:
            pid = next(ids, None)
            if pid is None:
                return None
            try:
                cursor.execute(f"SELECT allocation_count FROM {p}trial WHERE id = 1 FOR UPDATE")
                sequence = cursor.fetchone()[0] + 1
                cursor.execute(f"SELECT levels FROM {p}participant WHERE id = %s", (pid,))
                levels = cursor.fetchone()[0]
                cursor.execute(
                    f"SELECT level, arm, count FROM {p}count WHERE level = ANY(%s)", (levels,)
                )
                seen = cursor.fetchall()
                totals = {arm: 0 for arm in BARE_ARMS}
                for _, arm, count in seen:
                    totals[arm] += count
                arm = min(BARE_ARMS, key=lambda a: (totals[a], a))
                cursor.execute(
                    f"INSERT INTO {p}allocation (trial_id, participant_id, sequence, arm, "
                    "counts_seen, allocated_at) VALUES (1, %s, %s, %s, %s, now())",
                    (pid, sequence, arm, json.dumps(seen)),
                )
                cursor.execute(
                    f"UPDATE {p}count SET count = count + 1 WHERE level = ANY(%s) AND arm = %s",
                    (levels, arm),
                )
                cursor.execute(
                    f"UPDATE {p}trial SET allocation_count = %s WHERE id = 1", (sequence,)
                )
                cursor.execute(
                    f"UPDATE {p}participant SET status = 'active', number = %s WHERE id = %s",
                    (f"B-{sequence:06d}", pid),
                )
                conn.commit()
            except psycopg2.Error:
                conn.rollback()
                raise
            return "ok"

        return allocate

    def anomalies(self) -> list[str]:
        """The bare loop's own sanity: sequence gap-free, counts = recount."""
        p = BARE_PREFIX
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*), count(DISTINCT sequence), coalesce(max(sequence), 0) "
                f"FROM {p}allocation"
            )
            total, distinct, highest = cursor.fetchone()
            cursor.execute(f"""
                SELECT count(*) FROM {p}count c FULL JOIN (
                    SELECT lv AS level, a.arm, count(*) AS n FROM {p}allocation a
                    JOIN {p}participant q ON q.id = a.participant_id, unnest(q.levels) AS lv
                    GROUP BY lv, a.arm) r USING (level, arm)
                WHERE coalesce(c.count, 0) <> coalesce(r.n, 0)
            """)  # fmt: skip
            mismatched = cursor.fetchone()[0]
        conn.close()
        problems = []
        if not total == distinct == highest:
            problems.append(f"sequence: {total} rows, {distinct} distinct, max {highest}")
        if mismatched:
            problems.append(f"{mismatched} count rows differ from the recount")
        return problems
