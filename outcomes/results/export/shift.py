"""Optional date shift: each participant's dates (and date-times) move by the same number of
days, -SHIFT_DAYS..+SHIFT_DAYS, taken from an HMAC of the participant id under a random salt
made for this export and never stored. Intervals within a participant are kept, calendar
dates are hidden, and two exports shift differently (so they cannot be differenced to
recover the offset). Pure: no Django."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from outcomes.results.export.codebook import missing

SHIFT_DAYS = 180


class Shifter:
    """Per-participant date offsets from an HMAC under a random per-export salt."""

    def __init__(self, enabled: bool, salt: bytes | None = None):
        self.enabled = enabled
        self.salt = salt or secrets.token_bytes(32)

    def offset(self, key) -> int:
        if not self.enabled:
            return 0
        digest = hmac.new(self.salt, str(key).encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") % (2 * SHIFT_DAYS + 1) - SHIFT_DAYS

    def shift(self, value, key):
        if missing(value):
            return None
        days = self.offset(key)
        return value + dt.timedelta(days=days) if days else value
