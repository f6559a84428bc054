"""The baselines the scale benchmark (manage.py bench_scale) measures beside the app, in
the same run: the dashboard's headline numbers as a raw SQL aggregate, and the export's
tables read with one SQL query each into pandas and written with to_csv."""

from __future__ import annotations

from pathlib import Path

from django.db import connection

from trial.models import Trial

# Rows per round trip when the pandas baseline streams a table.
PANDAS_CHUNK = 200_000


def headline_sql(trial: Trial) -> dict[str, dict]:
    """The dashboard's headline numbers in plain SQL, the baseline of its cold compute:
    n randomized per arm, mean primary outcome per arm and follow-up visit, and SMS weeks
    sent and answered per week and arm."""
    out: dict[str, dict] = {"randomized": {}, "primary": {}, "sms": {}}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT arm.code, COUNT(*) FROM participants_allocation a"
            " JOIN trial_arm arm ON arm.id = a.arm_id WHERE a.trial_id = %s GROUP BY arm.code",
            [trial.pk],
        )
        out["randomized"] = dict(cursor.fetchall())
        cursor.execute(
            "SELECT arm.code, d.code, AVG(e.score), COUNT(e.score)"
            " FROM outcomes_outcomeentry e"
            ' JOIN outcomes_instrument i ON i.id = e.instrument_id AND i."primary"'
            " JOIN participants_visit v ON v.id = e.visit_id"
            " JOIN trial_visitdefinition d ON d.id = v.definition_id"
            " JOIN participants_allocation a ON a.participant_id = e.participant_id"
            " JOIN trial_arm arm ON arm.id = a.arm_id"
            " WHERE e.trial_id = %s AND NOT d.at_randomization GROUP BY arm.code, d.code",
            [trial.pk],
        )
        out["primary"] = {(arm, visit): (mean, n) for arm, visit, mean, n in cursor.fetchall()}
        cursor.execute(
            "SELECT w.week, arm.code, COUNT(*), SUM(CASE WHEN w.answered > 0 THEN 1 ELSE 0 END)"
            " FROM outcomes_smsweek w"
            " JOIN participants_allocation a ON a.participant_id = w.participant_id"
            " JOIN trial_arm arm ON arm.id = a.arm_id"
            " WHERE w.trial_id = %s GROUP BY w.week, arm.code",
            [trial.pk],
        )
        out["sms"] = {(week, arm): (sent, answered) for week, arm, sent, answered in cursor}
    return out


# The export's tables as one SQL query each, for the pandas baseline: the same rows (wide
# participants with their outcomes, visits, SMS per week and question, screening log,
# allocation log) with the columns they are made from.
PANDAS_TABLES = {
    "participants": (
        "SELECT p.id, p.number, s.code AS site, arm.code AS arm, p.randomized_on, p.status,"
        " p.followup_allowed, a.factor_levels, p.baseline"
        " FROM participants_allocation a JOIN participants_participant p ON p.id = a.participant_id"
        " JOIN trial_site s ON s.id = p.site_id JOIN trial_arm arm ON arm.id = a.arm_id"
        " WHERE a.trial_id = %s ORDER BY a.sequence"
    ),
    "outcomes": (
        "SELECT e.participant_id, d.code AS visit, i.code AS instrument, e.score, e.eq5d_vas,"
        " e.improved, e.not_done FROM outcomes_outcomeentry e"
        " JOIN outcomes_instrument i ON i.id = e.instrument_id"
        " JOIN participants_visit v ON v.id = e.visit_id"
        " JOIN trial_visitdefinition d ON d.id = v.definition_id WHERE e.trial_id = %s"
    ),
    "visits": (
        "SELECT v.participant_id, d.code AS visit, v.target_date, v.window_start, v.window_end,"
        " v.outcome, v.attended_on, v.in_window, v.missed_reason FROM participants_visit v"
        " JOIN trial_visitdefinition d ON d.id = v.definition_id WHERE v.trial_id = %s"
        " ORDER BY v.participant_id, v.target_date"
    ),
    "sms": (
        "SELECT w.participant_id, w.week, w.send_date, q.code AS question, o.sent_at,"
        " a.value, a.answered_at, i.body AS raw_reply, i.kind AS reply_kind"
        " FROM outcomes_smsweek w JOIN outcomes_smsquestion q ON q.trial_id = w.trial_id"
        " LEFT JOIN outcomes_outboundmessage o ON o.week_id = w.id AND o.question_id = q.id"
        "  AND o.kind = 'sms_question'"
        " LEFT JOIN outcomes_smsanswer a ON a.week_id = w.id AND a.question_id = q.id"
        " LEFT JOIN outcomes_inboundmessage i ON i.id = a.message_id"
        ' WHERE w.trial_id = %s ORDER BY w.participant_id, w.week, q."order"'
    ),
    "screening": (
        "SELECT r.id, s.code AS site, r.screened_on, r.outcome, r.ineligibility_reasons,"
        " r.declined_reason FROM participants_screeningrecord r"
        " JOIN trial_site s ON s.id = r.site_id WHERE r.trial_id = %s ORDER BY r.id"
    ),
    "allocations": (
        "SELECT a.sequence, a.participant_id, arm.code AS arm, a.slot, a.method, a.factor_levels,"
        " a.counts_seen, a.scores, a.probabilities, a.draw, a.settings_used,"
        " a.algorithm_version, a.allocated_at FROM participants_allocation a"
        " JOIN trial_arm arm ON arm.id = a.arm_id WHERE a.trial_id = %s ORDER BY a.sequence"
    ),
}


def pandas_tables(trial: Trial, folder: Path) -> Path:
    """The baseline of the export: each table read with one SQL query (streamed in chunks
    of PANDAS_CHUNK rows through a server-side cursor on PostgreSQL) into pandas and
    written with DataFrame.to_csv; participants wide, with their outcomes pivoted on."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    outcomes = None
    for name, sql in PANDAS_TABLES.items():
        if name == "participants":
            continue
        target = folder / f"{name}.csv"
        target.unlink(missing_ok=True)
        for chunk in _chunks(sql, trial.pk):
            if name == "outcomes":
                outcomes = chunk if outcomes is None else pd.concat([outcomes, chunk])
                continue
            chunk.to_csv(target, mode="a", header=not target.exists(), index=False)
    people = pd.concat(list(_chunks(PANDAS_TABLES["participants"], trial.pk)))
    if outcomes is not None and len(outcomes):
        wide = outcomes.pivot_table(
            index="participant_id", columns=["instrument", "visit"], values="score",
            aggfunc="first",
        )  # fmt: skip
        wide.columns = [f"{instrument}_{visit}" for instrument, visit in wide.columns]
        people = people.join(wide, on="id")
    people.to_csv(folder / "participants.csv", index=False)
    (folder / "outcomes.csv").unlink(missing_ok=True)
    return folder


def _chunks(sql: str, trial_id: int):
    import pandas as pd

    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with connection.connection.cursor(name="bench_scale_baseline") as cursor:
            cursor.itersize = PANDAS_CHUNK
            cursor.execute(sql, [trial_id])
            columns = None
            while rows := cursor.fetchmany(PANDAS_CHUNK):
                columns = columns or [c.name for c in cursor.description]
                yield pd.DataFrame.from_records(rows, columns=columns)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, [trial_id])
        columns = [c[0] for c in cursor.description]
        while rows := cursor.fetchmany(PANDAS_CHUNK):
            yield pd.DataFrame.from_records(rows, columns=columns)
