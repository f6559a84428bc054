"""Work in a thread beside the request or task that starts it.

`Background` runs any work (compressing a ZIP member, a COPY on a connection of its own);
`Beside` runs a database read that the caller may equally run itself, and does so only
where another connection sees the same rows."""

from __future__ import annotations

import threading

from django.db import connection


class Background:
    """Run `work` in a thread; join() waits and re-raises what it raised (wait() only
    waits). A thread that uses the database gets a connection of its own, closed here when
    the work ends."""

    def __init__(self, work, *, name: str):
        self.error: BaseException | None = None

        def run():
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - re-raised in join()
                self.error = exc
            finally:
                connection.close()  # this thread's, if it opened one

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def wait(self) -> None:
        self.thread.join()

    def join(self) -> None:
        self.wait()
        if self.error is not None:
            raise self.error


class Beside:
    """`function(*args, **kwargs)` run in a thread on a database connection of its own,
    while the caller goes on with other work; `result()` waits for it and returns its value
    (or raises its exception). Reads that wait on the server overlap this way: the server's
    work runs on the second core while this process parses. Inside a transaction, and on
    SQLite, it runs at once in the caller's thread instead: another connection would not
    see the transaction's own rows (tests run inside one), and SQLite gains nothing."""

    def __init__(self, function, /, *args, **kwargs) -> None:
        self._value = None
        self._thread: Background | None = None

        def work():
            self._value = function(*args, **kwargs)

        if connection.in_atomic_block or connection.vendor != "postgresql":
            work()
        else:
            self._thread = Background(work, name=f"beside-{function.__name__}")

    def result(self):
        if self._thread is not None:
            self._thread.join()
        return self._value
