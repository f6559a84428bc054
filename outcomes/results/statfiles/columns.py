"""What a column is, and the little the row path (common.py) and the chunk path (arrays.py)
both need about values; importing nothing of the package, so neither path imports the other."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Stata's largest non-missing double (0x7fdfffffffffffff); larger values are its missing
# codes. SPSS reserves -DBL_MAX (system-missing) and the next one up; one common range keeps
# the two files of a table identical.
LARGEST = struct.unpack("<d", bytes.fromhex("ffffffffffffdf7f"))[0]


@dataclass(frozen=True)
class Column:
    """One variable: a valid Stata/SPSS name, a label, a kind (see the package docstring),
    the width in UTF-8 bytes of a string, and labels for the integer codes of a number."""

    name: str
    label: str
    kind: str
    width: int = 0
    value_labels: dict[int, str] | None = None


def _cut_bytes(data: bytes, width: int) -> bytes:
    """The longest prefix of UTF-8 `data` of at most `width` bytes ending on a character."""
    end = width
    while end and data[end] & 0xC0 == 0x80:  # a continuation byte: the character straddles
        end -= 1
    return data[:end]
