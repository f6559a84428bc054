"""manage.py bench_enroll: randomizations per second from concurrent HTTP clients, beside a
bare SQL loop, and (--fault) through a Redis outage. trial.devtools.bench_enroll describes
and holds the benchmark."""

from trial.devtools.bench_enroll.command import Command

__all__ = ["Command"]
