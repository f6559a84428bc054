"""Text folding for participant search, pure (no Django).

"ødeg" must find "Ødegård" on both databases. SQLite's LIKE and lower() fold ASCII letters
only, and PostgreSQL's follow the server's locale, so neither can be trusted to fold the
same way. The name is therefore stored folded, by Python, beside the name
(Participant.search_name), and the search folds the query the same way: a plain LIKE on
that column then behaves identically on both backends.

Folding is Unicode NFKC case folding (Unicode §3.13, "NFKC_Casefold" less the removal of
default-ignorable characters): compatibility forms are unified ("ﬁ" → "fi", full-width
letters → ASCII), case is folded fully ("ß" → "ss", "Ø" → "ø"), and a letter typed with a
combining mark equals its precomposed form ("a" + U+030A = "å").
"""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """The search form of `text`: NFKC, case-folded, NFKC again (folding can denormalise)."""
    once = unicodedata.normalize("NFKC", text or "").casefold()
    return unicodedata.normalize("NFKC", once)
