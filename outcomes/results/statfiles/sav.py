"""SPSS .sav (bytecode-compressed) writer."""

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
    _cut_bytes,
    _day,
    _fixed,
    _milliseconds,
    _number,
    _Writer,
)

# --- SPSS -----------------------------------------------------------------------------------

_SPSS_EPOCH = dt.date(1582, 10, 14).toordinal()
_SPSS_EPOCH_TIME = dt.datetime.fromisoformat("1582-10-14T00:00:00")
_SYSMIS = -struct.unpack("<d", bytes.fromhex("ffffffffffffef7f"))[0]  # -DBL_MAX
_HIGHEST = -_SYSMIS
_LOWEST = struct.unpack("<d", bytes.fromhex("feffffffffffefff"))[0]  # next above -DBL_MAX
_BIAS = 100
_SPACES = b" " * 8
_PACK_DOUBLE = struct.Struct("<d").pack
# Bytecode compression (PSPP guide, "Data Record"): a whole number -99..151 is one code,
# value + bias; 253 = an uncompressed 8-byte piece follows; 254 = 8 spaces; 255 = sysmis.
# The table maps a cell to (codes, data); int keys also match equal floats and Decimals.
_NUMBER_CODES: dict = {n: (bytes([n + _BIAS]), b"") for n in range(1 - _BIAS, 252 - _BIAS)}
_NUMBER_CODES[None] = (b"\xff", b"")
_CODE_RAW = 253

# Print/write formats: type << 16 | width << 8 | decimals (PSPP guide, "Variable Record").
_F8_2, _F8_0 = 5 << 16 | 8 << 8 | 2, 5 << 16 | 8 << 8
_DATE11, _DATETIME20 = 20 << 16 | 11 << 8, 22 << 16 | 20 << 8


def _a_format(width: int) -> int:
    return 1 << 16 | width << 8


def _segments(width: int) -> list[int]:
    """The widths of the variables an SPSS string is stored as (PSPP guide, "Very Long
    String Record"): one up to 255 bytes; longer, one per 252 bytes of width, each 255 wide
    except the last, which has the rest."""
    if width <= 255:
        return [width]
    n = (width + 251) // 252
    return [255] * (n - 1) + [width - (n - 1) * 252]


def _units(width: int) -> int:
    """8-byte data units taken by a string variable of `width` bytes."""
    return (width + 7) // 8


def _short_names(names: Sequence[str], segments: Sequence[int]) -> list[list[str]]:
    """Unique 8-byte upper-case short names, one per segment of each column.

    The first candidate is the name's first 8 characters; a clash (or a later segment of a
    very long string) takes a numeric suffix in place of the last characters:
    days_with_pain, days_with_leave, days_wit -> DAYS_WIT, DAYS_WI1, DAYS_WI2. The long
    names record (7/13) maps them back, so readers show the full names."""
    used: set[str] = set()
    result = []
    for name, count in zip(names, segments, strict=True):
        own = []
        for _ in range(count):
            base, n = name.upper(), 0
            candidate = base[:8]
            while candidate in used:
                n += 1
                suffix = str(n)
                candidate = base[: 8 - len(suffix)] + suffix
            used.add(candidate)
            own.append(candidate)
        result.append(own)
    return result


class SavWriter(_Writer):
    """Write a bytecode-compressed SPSS .sav file row by row (same protocol as DtaWriter).

    The dictionary (PSPP guide): file header with case count -1, a variable record per
    8-byte-wide piece, value labels (records 3 and 4), machine integer and floating-point
    info (7/3, 7/4), display parameters (7/11), long names (7/13), very long strings (7/14),
    encoding (7/20), then record 999 and the compressed cases. Compression codes are
    grouped in blocks of 8, each followed by the 8-byte pieces of its 253 codes; blocks run
    across cases. The case count is patched on close."""

    def _build_encoders(self) -> list[Callable]:
        cut = self._cut
        missing = _NUMBER_CODES[None]
        encoders: list[Callable] = []
        for index, column in enumerate(self.columns):
            if column.kind == "number":

                def encode(value, _codes=_NUMBER_CODES, _pack=_PACK_DOUBLE):
                    hit = _codes.get(value)
                    if hit is not None:
                        return hit
                    cls = value.__class__
                    if (cls is float or cls is int) and -LARGEST <= value <= LARGEST:
                        return b"\xfd", _pack(value)
                    x = _number(value)
                    return missing if x is None else (b"\xfd", _pack(x))

            elif column.kind == "date":

                def encode(value, _pack=_PACK_DOUBLE, _date=dt.date):
                    if value.__class__ is _date:
                        return b"\xfd", _pack((value.toordinal() - _SPSS_EPOCH) * 86_400.0)
                    if value is None:
                        return missing
                    return b"\xfd", _pack((_day(value) - _SPSS_EPOCH) * 86_400.0)

            elif column.kind == "datetime":

                def encode(value, _pack=_PACK_DOUBLE):
                    if value is None:
                        return missing
                    return b"\xfd", _pack(_milliseconds(value, _SPSS_EPOCH_TIME) / 1000)

            else:
                encode = self._string_encoder(column.width, index, cut)
            encoders.append(encode)
        return encoders

    @staticmethod
    def _string_encoder(width: int, index: int, cut: list[int]) -> Callable:
        widths = _segments(width)
        units = sum(_units(w) for w in widths)
        blank = (bytes([254]) * units, b"")
        # Short answers repeat ("2", "nej"): remember their encoding. Bounded, and only
        # short values that fit, so memory stays flat and every cut value is still counted.
        known: dict[str, tuple[bytes, bytes]] = {}

        def encode(value):
            hit = known.get(value)
            if hit is not None:
                return hit
            if value is None:
                return blank
            if not isinstance(value, str):
                raise TypeError(f"expected a str, got {type(value).__name__}")
            data = value.encode("utf-8")
            fits = len(data) <= width
            if not fits:
                cut.append(index)
                data = _cut_bytes(data, width)
            if len(widths) > 1:
                # Segments hold 255 bytes of the string each, in 256 bytes of storage (the
                # last in its own width rounded up to 8); the rest is padding.
                data = b"".join(
                    data[255 * i : 255 * i + 255].ljust(_units(w) * 8, b" ")
                    for i, w in enumerate(widths)
                )
            used = _units(len(data.rstrip(b" ")))
            data = data.ljust(used * 8, b" ")
            codes = bytearray()
            raw = bytearray()
            for at in range(0, used * 8, 8):
                piece = data[at : at + 8]
                if piece == _SPACES:
                    codes.append(254)
                else:
                    codes.append(_CODE_RAW)
                    raw += piece
            codes += bytes([254]) * (units - used)
            encoded = bytes(codes), bytes(raw)
            if fits and len(data) <= 32:
                if len(known) >= 1024:
                    known.clear()
                known[value] = encoded
            return encoded

        return encode

    def _start(self) -> None:
        self._codes = bytearray()
        self._data = bytearray()
        columns = self.columns
        widths = [_segments(c.width) if c.kind == "string" else [0] for c in columns]
        shorts = _short_names([c.name for c in columns], [len(w) for w in widths])
        case_units = sum(_units(w) if w else 1 for ws in widths for w in ws)

        created = self.created
        # Without a creation time the fields stay blank (readers accept that) rather than
        # carrying an invented date.
        date = f"{created.day:02d} {_MONTHS[created.month - 1]} {created:%y}" if created else ""
        time = created.strftime("%H:%M:%S") if created else ""
        header = struct.pack(
            "<4s60s5id9s8s64s3s",
            b"$FL2",
            _fixed("@(#) SPSS DATA FILE trialdesk outcomes.results.statfiles", 60, pad=b" "),
            2,  # layout code: little-endian integers
            case_units,
            1,  # bytecode compression
            0,  # no weight variable
            -1,  # case count: unknown until closed
            float(_BIAS),
            date.encode().ljust(9),
            time.encode().ljust(8),
            _fixed(self.label, 64, pad=b" "),
            bytes(3),
        )
        self._ncases_at = 80  # offset of `ncases` in the header above
        out = bytearray(header)

        index = 0  # 1-based dictionary index of each variable record, for value labels
        first_index = []
        display = []
        for column, segs, names in zip(columns, widths, shorts, strict=True):
            first_index.append(index + 1)
            for i, (width, short) in enumerate(zip(segs, names, strict=True)):
                if column.kind == "string":
                    type_, fmt = width, _a_format(width)
                else:
                    type_ = 0
                    fmt = {"date": _DATE11, "datetime": _DATETIME20}.get(
                        column.kind, _F8_0 if column.value_labels else _F8_2
                    )
                label = _clip(column.label, 255) if i == 0 else b""
                out += struct.pack(
                    "<6i8s", 2, type_, bool(label), 0, fmt, fmt, short.encode().ljust(8)
                )
                if label:
                    out += struct.pack("<i", len(label)) + label.ljust(-(-len(label) // 4) * 4)
                index += 1
                for _ in range(_units(width) - 1 if width else 0):
                    out += struct.pack("<6i8s", 2, -1, 0, 0, 0, 0, _SPACES)
                    index += 1
                measure = 1 if column.kind == "string" or column.value_labels else 3
                shown = {"date": 11, "datetime": 20, "string": min(width, 255)}
                display += [measure, shown.get(column.kind, 8), 0 if width else 1]

        for column, at in zip(columns, first_index, strict=True):
            if column.value_labels:
                out += _spss_value_labels(column.value_labels, at)

        info = (1, 0, 0, -1, 1, 1, 2, 65001)  # version 1.0.0, IEEE, little-endian, UTF-8
        out += struct.pack("<4i8i", 7, 3, 4, 8, *info)
        out += struct.pack("<4i3d", 7, 4, 8, 3, _SYSMIS, _HIGHEST, _LOWEST)
        out += struct.pack(f"<4i{len(display)}i", 7, 11, 4, len(display), *display)
        names = "\t".join(f"{s[0]}={c.name}" for c, s in zip(columns, shorts, strict=True))
        out += _record7(13, names.encode())
        very_long = "".join(
            f"{s[0]}={c.width:05d}\0\t"
            for c, s in zip(columns, shorts, strict=True)
            if c.kind == "string" and c.width > 255
        )
        if very_long:
            out += _record7(14, very_long.encode())
        out += _record7(20, b"UTF-8")
        out += struct.pack("<2i", 999, 0)
        self._file.write(out)

    def _write_encoded(self, encoded: list) -> None:
        codes, data = self._codes, self._data
        for code, raw in encoded:
            codes += code
            data += raw
        if len(codes) >= 1 << 16:
            self._flush_blocks()

    def _flush_blocks(self) -> None:
        """Write every complete block of 8 codes with the 8-byte pieces that follow it."""
        codes, data = self._codes, self._data
        out = bytearray()
        full = len(codes) - len(codes) % 8
        taken = 0
        for at in range(0, full, 8):
            block = codes[at : at + 8]
            size = 8 * block.count(_CODE_RAW)
            out += block
            out += data[taken : taken + size]
            taken += size
        self._file.write(out)
        del codes[:full]
        del data[:taken]

    def _write_chunk(self, chunk) -> None:
        from .arrays import SpssLayout, write_spss

        # Complete the row path's blocks first, so fewer than 8 codes carry over.
        self._flush_blocks()
        starts, segments, at = [], [], 0
        for column in self.columns:
            widths = _segments(column.width) if column.kind == "string" else []
            starts.append(at)
            segments.append(tuple(widths))
            at += sum(_units(w) for w in widths) if widths else 1
        layout = SpssLayout(units=at, starts=tuple(starts), segments=tuple(segments))
        write_spss(self._file, self.columns, chunk, layout, self._codes, self._data)

    def _finish(self) -> None:
        self._flush_blocks()
        if self._codes:
            # The last block is padded with code 0, which readers skip.
            self._codes += bytes(8 - len(self._codes))
            self._flush_blocks()
        f = self._file
        f.seek(self._ncases_at)
        f.write(struct.pack("<i", self.rows if self.rows < 2**31 else -1))


def _record7(subtype: int, data: bytes) -> bytes:
    """An extension record of single bytes (size 1, count = length)."""
    return struct.pack("<4i", 7, subtype, 1, len(data)) + data


def _spss_value_labels(labels: dict[int, str], variable: int) -> bytes:
    """Records 3 (codes and labels) and 4 (the 1-based index of the variable they label)."""
    out = bytearray(struct.pack("<2i", 3, len(labels)))
    for code, text in sorted(labels.items()):
        data = _clip(text, 120)
        entry = struct.pack("<dB", float(code), len(data)) + data
        out += entry.ljust(8 + -(-(len(data) + 1) // 8) * 8, b" ")
    out += struct.pack("<3i", 4, 1, variable)
    return bytes(out)


def write_sav(
    path: str | os.PathLike,
    columns: Sequence[Column],
    rows: Iterable[Sequence],
    *,
    label: str = "",
    created: dt.datetime | None = None,
) -> WriteResult:
    """Write `rows` to an SPSS .sav file at `path` (see SavWriter)."""
    with SavWriter(path, columns, label=label, created=created) as out:
        out.write_rows(rows)
    return out.result
