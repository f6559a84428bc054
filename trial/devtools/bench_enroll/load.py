"""The load generators: HTTP client sessions, the enrollment phase and its tallies."""

from __future__ import annotations

import collections
import dataclasses
import http.client
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator

import psycopg2
from django.contrib.auth.models import User
from django.core.management.base import CommandError
from django.urls import reverse

from trial.devtools.bench_enroll import HTTP_TIMEOUT, MAX_REQUESTS, PASSWORD
from trial.models import Trial

# --- Load generation ------------------------------------------------------------------------


@dataclasses.dataclass
class InProcess:
    count: int
    statements: int = 0
    locked_statements: int = 0
    request_ms: float = 0.0
    request_cpu_ms: float = 0.0
    service_ms: float = 0.0  # the trial row lock held, lock to COMMIT


@dataclasses.dataclass
class Runs:
    """Outcomes of client requests: (start, end, outcome) relative to the phase start,
    summed over phases (each phase's window added to `window`)."""

    window: float = 0.0
    elapsed: float = 0.0  # wall time of the phases, stragglers included
    client_cpu: float = 0.0  # this process's CPU time over the phases
    ok: int = 0
    ok_in_window: int = 0
    server_errors: int = 0
    ran_out: int = 0  # clients that had nothing left to do before the window ended
    failures: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    samples: list[tuple[float, float, str]] = dataclasses.field(default_factory=list)

    def add(self, other: Runs) -> None:
        self.window += other.window
        self.elapsed += other.elapsed
        self.client_cpu += other.client_cpu
        self.ok += other.ok
        self.ok_in_window += other.ok_in_window
        self.server_errors += other.server_errors
        self.ran_out += other.ran_out
        self.failures.update(other.failures)
        self.samples += other.samples

    @property
    def rate(self) -> float:
        return self.ok_in_window / self.window if self.window else 0.0

    @property
    def slowest(self) -> float:
        return max((end - start for start, end, _ in self.samples), default=0.0)

    def ok_between(self, start: float, end: float) -> int:
        return sum(
            1 for _, done, outcome in self.samples if outcome == "ok" and start <= done < end
        )

    def rate_between(self, start: float, end: float) -> float:
        return self.ok_between(start, end) / (end - start) if end > start else 0.0

    def slowest_between(self, start: float, end: float) -> float:
        """The slowest request that was in flight at any time in [start, end)."""
        return max((e - s for s, e, _ in self.samples if s < end and e >= start), default=0.0)

    def latency_text(self) -> str:
        times = sorted(end - start for start, end, outcome in self.samples if outcome == "ok")
        if not times:
            return "–"

        def ms(quantile: float) -> float:
            return times[min(len(times) - 1, int(quantile * len(times)))] * 1000

        return f"{ms(0.5):.0f} / {ms(0.95):.0f} / {times[-1] * 1000:.0f} ms"

    def failure_lines(self) -> list[str]:
        lines = [f"{count} × {what}" for what, count in self.failures.items()]
        if self.ran_out:
            # Not an anomaly, but the rate would be wrong: idle clients make it look lower.
            lines.append(f"{self.ran_out} clients ran out of participants; raise --participants")
        return lines


def is_trial_lock(sql: str) -> bool:
    """Is this randomization's trial row lock (the statement that starts its serial part)?"""
    return sql.endswith(("FOR UPDATE", "FOR NO KEY UPDATE")) and sql.split(" FROM ", 1)[
        1
    ].startswith('"trial_trial"')


def run_clients(jobs: list[Callable[[], str | None]], seconds: float, *,
                 side_job: Callable[[float], None] | None = None,
                 kinds: list[str] | None = None) -> dict[str, Runs]:  # fmt: skip
    """Call each job repeatedly from its own thread until `seconds` have passed, the job
    returns None (nothing left to do) or MAX_REQUESTS calls were made in all. A job returns
    "ok" or a short description of what went wrong. `side_job(t0)` runs beside them (the
    fault run's Redis killer). The outcomes are tallied per kind of job (default "main"),
    with times relative to the common start."""
    kinds = kinds or ["main"] * len(jobs)
    lock = threading.Lock()
    calls = [0]
    start = threading.Barrier(len(jobs) + 1)
    t0 = [0.0]
    samples: list[tuple[str, float, float, str]] = []
    ran_out: list[str] = []

    def loop(kind, job):
        start.wait(timeout=60)
        deadline = t0[0] + seconds
        while time.perf_counter() < deadline:
            with lock:
                if calls[0] >= MAX_REQUESTS:
                    return
                calls[0] += 1
            began = time.perf_counter()
            try:
                outcome = job()
            except (OSError, http.client.HTTPException, psycopg2.Error) as exc:
                outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
            if outcome is None:
                with lock:
                    ran_out.append(kind)
                return
            ended = time.perf_counter()
            with lock:
                samples.append((kind, began - t0[0], ended - t0[0], outcome))

    threads = [
        threading.Thread(target=loop, args=(kind, job), daemon=True)
        for kind, job in zip(kinds, jobs, strict=True)
    ]
    for thread in threads:
        thread.start()
    t0[0], cpu0 = time.perf_counter(), time.process_time()
    start.wait(timeout=60)
    side = None
    if side_job is not None:
        side = threading.Thread(target=side_job, args=(t0[0],), daemon=True)
        side.start()
    for thread in threads:
        thread.join(timeout=seconds + HTTP_TIMEOUT + 30)
    if side is not None:
        side.join(timeout=seconds + 60)
    if any(t.is_alive() for t in threads):
        raise CommandError("a client did not stop (hung request)")
    elapsed, cpu = time.perf_counter() - t0[0], time.process_time() - cpu0
    runs = {kind: Runs(window=seconds, elapsed=elapsed, client_cpu=cpu) for kind in kinds}
    for kind in ran_out:
        runs[kind].ran_out += 1
    for kind, began, ended, outcome in samples:
        tally = runs[kind]
        tally.samples.append((began, ended, outcome))
        if outcome == "ok":
            tally.ok += 1
            tally.ok_in_window += ended <= seconds
        else:
            tally.failures[outcome] += 1
            tally.server_errors += outcome.startswith("HTTP 5")
    return runs


class Browser:
    """One user's session over HTTP/1.1 on loopback: cookies, CSRF token, keep-alive where
    the server allows it (gunicorn's sync workers close every connection)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None
        self.token = ""

    def request(self, method: str, path: str, form: dict | None = None):
        headers = {
            "Host": f"127.0.0.1:{self.port}",
            # The production proxy's header: DEBUG off redirects plain http otherwise, and
            # the CSRF check then wants an https Origin of the same host.
            "X-Forwarded-Proto": "https",
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://127.0.0.1:{self.port}"
        reused = self.conn is not None
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            self.conn.request(method, path, body, headers)
            response = self.conn.getresponse()
            content = response.read()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.close()
            if not reused:
                raise
            # The server closed an idle keep-alive connection (gthread's keep-alive timeout)
            # before this request reached it: retry once on a new connection, as browsers
            # do. Safe for the randomize POST, which returns an existing allocation.
            return self.request(method, path, form)
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        if response.will_close:
            self.close()
        return response.status, response.headers, content

    def use(self, port: int) -> None:
        """Talk to the server on `port` from now on (the session cookie stays valid)."""
        self.close()
        self.port = port

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


TOKEN_RE = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def _log_in(port: int, trial: Trial, user: User, first_pk: int) -> Browser:
    """Log in as a browser does: GET the form, POST it with its token, then read a fresh
    token from a page's form (logging in rotates the CSRF secret)."""
    browser = Browser(port)
    status, _, page = browser.request("GET", reverse("login"))
    match = TOKEN_RE.search(page)
    if status != 200 or not match:
        raise CommandError(f"login page answered {status}")
    status, headers, _ = browser.request(
        "POST", reverse("login"),
        {"username": user.username, "password": PASSWORD,
         "csrfmiddlewaretoken": match.group(1).decode()},
    )  # fmt: skip
    if status != 302:
        raise CommandError(f"login as {user.username} answered {status}, not 302")
    # The first participant's review page: readable by every client, randomized by none.
    url = reverse("participant_review", kwargs={"code": trial.code, "pk": first_pk})
    status, _, page = browser.request("GET", url)
    match = TOKEN_RE.search(page)
    if status != 200 or not match:
        raise CommandError(f"review page answered {status} after login")
    browser.token = match.group(1).decode()
    return browser


def log_in_all(port: int, trial: Trial, users: list[User], first: int) -> list[Browser]:
    sessions: list[Browser | BaseException] = [None] * len(users)  # type: ignore[list-item]

    def one(i):
        try:
            sessions[i] = _log_in(port, trial, users[i], first)
        except BaseException as exc:  # noqa: BLE001 - raised below
            sessions[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for session in sessions:
        if not isinstance(session, Browser):
            raise CommandError(f"log in failed: {session}")
    return sessions  # type: ignore[return-value]


def enroll_phase(trial, sessions, queues, seconds, *, sms_client=None,
                  side_job=None) -> dict[str, Runs]:  # fmt: skip
    """Each session POSTs the randomize form for its own next participant, in a loop
    (tallied as "main"); with `sms_client`, one more client posts SMS replies ("sms")."""

    def client(browser: Browser, queue: Iterator[int]):
        def randomize_next() -> str | None:
            pk = next(queue, None)
            if pk is None:
                return None
            url = reverse("participant_review", kwargs={"code": trial.code, "pk": pk})
            status, headers, _ = browser.request(
                "POST", url, {"csrfmiddlewaretoken": browser.token, "confirm": "on"}
            )
            if status == 302 and headers.get("Location", "").endswith(f"/{pk}/allocation/"):
                return "ok"
            return f"HTTP {status} for a randomize POST"

        return randomize_next

    jobs = [client(s, q) for s, q in zip(sessions, queues, strict=True)]
    kinds = ["main"] * len(jobs)
    if sms_client is not None:
        jobs.append(sms_client)
        kinds.append("sms")
    return run_clients(jobs, seconds, side_job=side_job, kinds=kinds)
