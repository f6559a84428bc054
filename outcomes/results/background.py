"""Work in a thread beside the request or task that starts it.

`Background` runs any work (compressing a ZIP member, a COPY on a connection of its own);
`Beside` runs a database read that the caller may equally run itself, and does so only
where another connection sees the same rows."""

from __future__ import annotations

import threading

from django.db import OperationalError, connection


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
    """`function(*args, **kwargs)`, a read, run in a thread on a database connection of its
    own while the caller goes on with other work; `result()` waits for it and returns its
    value (or raises its exception). Reads that wait on the server overlap this way: the
    server's work runs on the second core while this process parses.

    It runs at once in the caller's thread instead inside a transaction (another connection
    would not see the transaction's own rows; the tests run inside one) and on SQLite (it
    gains nothing there). If the thread fails with an OperationalError (no connection to be
    had: max_connections, a pooler's limit), the read is run again in the caller's thread,
    on its connection: a read can be repeated. A caller that may stop before `result()`
    calls `wait()` on the way out, so no thread outlives it."""

    def __init__(self, function, /, *args, **kwargs) -> None:
        self._call = (function, args, kwargs)
        self._value = None
        self._thread: Background | None = None

        def work():
            self._value = function(*args, **kwargs)

        if (
            connection.in_atomic_block
            or not connection.get_autocommit()
            or connection.vendor != "postgresql"
        ):
            work()
        else:
            self._thread = Background(work, name=f"beside-{function.__name__}")

    def result(self):
        if self._thread is not None:
            thread, self._thread = self._thread, None
            try:
                thread.join()
            except OperationalError:
                function, args, kwargs = self._call
                self._value = function(*args, **kwargs)
        return self._value

    def wait(self) -> None:
        """Wait for the thread, if any, without its value or its error."""
        if self._thread is not None:
            self._thread.wait()
