"""Stata .dta (format 118) writer."""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Callable, Iterable, Sequence

from .common import (
    _MONTHS,
    LARGEST,
    Column,
    WriteResult,
    _clip,
    _day,
    _fixed,
    _milliseconds,
    _number,
    _text,
    _Writer,
)

# --- Stata ----------------------------------------------------------------------------------

_STATA_EPOCH = dt.date(1960, 1, 1).toordinal()
_STATA_EPOCH_TIME = dt.datetime.fromisoformat("1960-01-01T00:00:00")
_STATA_MISSING = struct.unpack("<d", bytes.fromhex("000000000000e07f"))[0]  # '.'
_STATA_DOUBLE = 65526


class DtaWriter(_Writer):
    """Write a Stata 14+ (format 118) .dta file row by row.

        with DtaWriter(path, columns) as out:
            for row in rows:
                out.write(row)
        out.result  # WriteResult

    Layout (help dta, section 5): header with K and a placeholder N, a map of 14 section
    offsets, the per-variable sections, <data> (fixed-width rows), empty <strls>, then the
    value-label tables. N and the map are patched on close."""

    def _build_encoders(self) -> list[Callable]:
        cut = self._cut
        missing = _STATA_MISSING
        encoders: list[Callable] = []
        formats = []
        for index, column in enumerate(self.columns):
            if column.kind == "number":

                def encode(value):
                    if value is None:
                        return missing
                    # Fast path for plain ints and floats; _number handles the rest.
                    cls = value.__class__
                    if (cls is float or cls is int) and -LARGEST <= value <= LARGEST:
                        return value
                    x = _number(value)
                    return missing if x is None else x

                formats.append("d")
            elif column.kind == "date":

                def encode(value, _date=dt.date):
                    if value.__class__ is _date:
                        return float(value.toordinal() - _STATA_EPOCH)
                    return missing if value is None else float(_day(value) - _STATA_EPOCH)

                formats.append("d")
            elif column.kind == "datetime":

                def encode(value):
                    if value is None:
                        return missing
                    return float(_milliseconds(value, _STATA_EPOCH_TIME))

                formats.append("d")
            else:

                def encode(value, _width=column.width, _index=index):
                    return _text(value, _width, cut, _index)

                formats.append(f"{column.width}s")  # struct pads with NULs, as Stata does
            encoders.append(encode)
        self._pack = struct.Struct("<" + "".join(formats)).pack
        return encoders

    def _start(self) -> None:
        k = len(self.columns)
        out = bytearray()
        out += b"<stata_dta><header><release>118</release><byteorder>LSF</byteorder>"
        out += b"<K>" + struct.pack("<H", k) + b"</K><N>"
        self._n_at = len(out)
        out += struct.pack("<Q", 0) + b"</N>"
        label = self.label[:80].encode("utf-8")
        out += b"<label>" + struct.pack("<H", len(label)) + label + b"</label>"
        stamp = b""
        if self.created is not None:
            c = self.created
            stamp = f"{c.day:02d} {_MONTHS[c.month - 1]} {c.year:04d} {c:%H:%M}".encode()
        out += b"<timestamp>" + struct.pack("<B", len(stamp)) + stamp + b"</timestamp>"
        out += b"</header>"
        offsets = [0]
        offsets.append(len(out))
        self._map_at = len(out) + len(b"<map>")
        out += b"<map>" + bytes(14 * 8) + b"</map>"

        def section(tag: bytes, body: bytes) -> None:
            nonlocal out
            offsets.append(len(out))
            out += b"<" + tag + b">" + body + b"</" + tag + b">"

        def types(c: Column) -> int:
            return c.width if c.kind == "string" else _STATA_DOUBLE

        def display(c: Column) -> str:
            return {"date": "%td", "datetime": "%tc", "string": f"%{c.width}s"}.get(
                c.kind, "%10.0g"
            )

        cols = self.columns
        section(b"variable_types", b"".join(struct.pack("<H", types(c)) for c in cols))
        section(b"varnames", b"".join(_fixed(c.name, 129) for c in cols))
        section(b"sortlist", bytes(2 * (k + 1)))
        section(b"formats", b"".join(_fixed(display(c), 57) for c in cols))
        section(
            b"value_label_names",
            b"".join(_fixed(c.name if c.value_labels else "", 129) for c in cols),
        )
        # 80 characters of up to 4 bytes each, plus the terminating NUL.
        section(b"variable_labels", b"".join(_fixed(c.label[:80], 321) for c in cols))
        section(b"characteristics", b"")
        offsets.append(len(out))
        out += b"<data>"
        self._offsets = offsets
        self._file.write(out)

    def _write_encoded(self, encoded: list) -> None:
        self._file.write(self._pack(*encoded))

    def _write_chunk(self, chunk) -> None:
        from .arrays import write_stata

        write_stata(self._file, self.columns, chunk)

    def _finish(self) -> None:
        f = self._file
        f.write(b"</data>")
        offsets = self._offsets
        offsets.append(f.tell())
        f.write(b"<strls></strls>")
        offsets.append(f.tell())
        f.write(b"<value_labels>")
        for column in self.columns:
            if column.value_labels:
                f.write(_stata_label_table(column.name, column.value_labels))
        f.write(b"</value_labels>")
        offsets.append(f.tell())
        f.write(b"</stata_dta>")
        offsets.append(f.tell())
        f.seek(self._n_at)
        f.write(struct.pack("<Q", self.rows))
        f.seek(self._map_at)
        f.write(struct.pack("<14Q", *offsets))


def _stata_label_table(name: str, labels: dict[int, str]) -> bytes:
    """One <lbl> entry (help dta, 5.12): codes and NUL-terminated texts, sorted by code."""
    texts = bytearray()
    offsets, codes = [], []
    for code, text in sorted(labels.items()):
        offsets.append(len(texts))
        codes.append(code)
        texts += _clip(text, 32_000) + b"\0"
    n = len(codes)
    table = struct.pack(f"<ii{n}i{n}i", n, len(texts), *offsets, *codes) + bytes(texts)
    head = struct.pack("<i", len(table)) + _fixed(name, 129) + bytes(3)
    return b"<lbl>" + head + table + b"</lbl>"


def write_dta(
    path: str | os.PathLike,
    columns: Sequence[Column],
    rows: Iterable[Sequence],
    *,
    label: str = "",
    created: dt.datetime | None = None,
) -> WriteResult:
    """Write `rows` to a Stata .dta file at `path` (see DtaWriter)."""
    with DtaWriter(path, columns, label=label, created=created) as out:
        out.write_rows(rows)
    return out.result
