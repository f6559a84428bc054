"""Benchmark: randomizations per second from concurrent HTTP clients, beside a bare SQL loop
measured in the same run; and (--fault) enrollment and inbound SMS through a Redis outage.

1. Setup (not measured). A fresh trial with the demo configuration, `--participants`
   consented participants with baseline in bulk (ready to randomize, spread over the sites),
   and one clinician per client (role Clinician, a Membership for every site).
2. Measured run. gunicorn (`trial.wsgi`, DEBUG off, persistent database connections, a
   Redis broker as deployed) on a free loopback port. Each client thread logs in with its
   own session (CSRF token from the login form, then from a review page, as a browser gets
   them) and POSTs the real randomize form for its own participants; a success is the
   302 to the participant's allocation page. Randomizations per second count the successes
   completed inside the fixed wall-time window.
3. Baseline, interleaved with 2 (ours, bare, ours, bare): the same number of client
   threads, each with its own psycopg2 connection and no Django, doing what an allocation
   minimally does (BEGIN; lock the trial row; read the per-level counts; insert an
   allocation; update the counts, the trial's sequence and the participant; COMMIT)
   against scratch tables made for the purpose and dropped after.
4. Anomalies, after the run, from the database: the allocation sequence unique and
   gap-free, per-site numbers unique and gap-free, FactorLevelCount equal to a recount from
   the allocations, no participant allocated twice, every 302 backed by an allocation, no
   HTTP 5xx. A few more randomizations are made in process, one at a time through the test
   client, to count their statements (CaptureQueriesContext) and time a request and how
   long the service holds the trial row lock (from that statement to COMMIT), uncontended:
   randomizations of a trial queue on that lock, so one over that time bounds the rate
   whatever the server does.
5. --fault: a second enrollment run, with a `celery worker` (file SMS gateway) and one more
   client posting signed inbound SMS replies, so messages are queued through Redis. Redis
   is stopped for `--outage` seconds mid-run and started again on the same port. Reported:
   the randomization rate before, during and after the outage, the slowest request, and
   failures; then, once the worker has drained the queue, the outbox sweeper
   (outcomes.sms.tasks.sms_send_stale, with its 10-minute staleness wait set to 0, which is the
   only thing not as deployed) re-queues the messages whose task was lost, and every queued
   message must be in the gateway's file exactly once.

Finding causes: `--profile-dir` cProfiles every request inside the gunicorn workers;
`--server sync:2 sync:2@hooks.conf.py` measures a second server whose gunicorn config file
(e.g. a post_fork hook patching in a candidate fix) differs, interleaved with the first.

The load generators contact only 127.0.0.1, stop by themselves at the end of their window,
and are capped in count (MAX_REQUESTS) and time (HTTP_TIMEOUT per request). PostgreSQL
only: SQLite has no row locks to measure.

    make bench   # on a throwaway PostgreSQL cluster
    manage.py bench_enroll --clients 8 --seconds 20 --fault --write docs/PERFORMANCE.md
"""

from pathlib import Path

GOAL_PER_SECOND = 250
GOAL_RATIO = 0.15
# Hard caps on the load generators: requests per phase, seconds per request.
MAX_REQUESTS = 200_000
HTTP_TIMEOUT = 30
# The slowest a request may be before the fault run calls it hung.
HUNG_SECONDS = 10
# Randomizations made one at a time in process, for statements and uncontended timings.
IN_PROCESS = 21
PASSWORD = "bench-only-password-not-secret"
REPO = Path(__file__).resolve().parents[3]
BARE_PREFIX = "bench_bare_"
