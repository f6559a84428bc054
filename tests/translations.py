"""A real gettext catalogue for tests that check a string is translatable.

`catalogue(tmp_path, "da", {"Skip to main content": "Spring til indholdet"})` writes
<tmp>/locale/da/LC_MESSAGES/django.mo and returns the locale directory, for
`settings.LOCALE_PATHS`; Django clears its translation caches when that setting changes.
A string shows translated only if the code passes it through gettext, which is the point.
"""

from __future__ import annotations

import struct
from pathlib import Path

_HEADER = "Content-Type: text/plain; charset=UTF-8\n"


def catalogue(root: Path, language: str, messages: dict[str, str]) -> Path:
    """Write a compiled GNU gettext catalogue (.mo) with `messages` for `language`."""
    entries = sorted({"": _HEADER, **messages}.items())
    ids = [key.encode() for key, _ in entries]
    strs = [value.encode() for _, value in entries]
    count = len(entries)
    # Layout (GNU gettext manual, "The Format of GNU MO Files"): header of 7 words, the
    # table of original strings, the table of translations (length, offset pairs), then
    # the strings themselves, NUL-terminated; no hash table.
    ids_table = 7 * 4
    strs_table = ids_table + count * 8
    offset = strs_table + count * 8
    tables, data = [], b""
    for strings in (ids, strs):
        table = []
        for s in strings:
            table.append((len(s), offset + len(data)))
            data += s + b"\0"
        tables.append(table)
    mo = struct.pack("<7I", 0x950412DE, 0, count, ids_table, strs_table, 0, 0)
    for table in tables:
        mo += b"".join(struct.pack("<2I", length, start) for length, start in table)
    mo += data
    locale = root / "locale"
    target = locale / language / "LC_MESSAGES"
    target.mkdir(parents=True, exist_ok=True)
    (target / "django.mo").write_bytes(mo)
    return locale
