"""ZIP members deflated by ISA-L (python-isal) instead of zlib: the same DEFLATE format,
read by every unzip, about four times faster at the same or a better ratio.

At 100,000 participants the bundle's members are ~2.5 GB before compression (the SMS
table's CSV, .dta and .sav are 1.0, 1.0 and 0.6 GB), and compressing them with zlib at its
fastest level took ~14 s of the export's ~85 s on one core, ~28 s when the CSV's
compression thread competed for the GIL with the stat files (zipfile.write copies in
8 KB pieces, so the thread needed the GIL back every 8 KB). Measured on that table
(docs/PERFORMANCE.md, "Fifth round"): zlib level 1 5.2 s / 202 MB, ISA-L level 1
1.3 s / 181 MB for the CSV.

zipfile has no hook for another compressor: a member opened for writing deflates through
its `_compressor` (a zlib compressobj) and nothing else, so `open_member` replaces that
object, before the first byte, with ISA-L's compressobj of the same raw-DEFLATE settings.
If a Python version renames the attribute, the member is written by zlib as before (slower,
same content); tests/outcomes/test_export_deflate.py checks the members are ISA-L's and
that the stdlib reads them back with their CRCs.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import IO

from isal import isal_zlib

# ISA-L's levels are 0-3; 1 compresses better than zlib's 1 and almost as fast as ISA-L's 0.
LEVEL = 1
# Pieces copied into a member: large enough that compressing runs mostly without the GIL.
BLOCK = 1 << 20


def open_member(zf: zipfile.ZipFile, member: str | zipfile.ZipInfo) -> IO[bytes]:
    """`zf.open(member, "w")`, deflated by ISA-L (at LEVEL, whatever the archive's
    compresslevel) when the archive is ZIP_DEFLATED. A name: ZIP64-ready, the size not
    being known in advance; a ZipInfo with its file_size: ZIP64 only if that needs it."""
    if isinstance(member, zipfile.ZipInfo):
        member = zf.open(member, "w")
    else:
        member = zf.open(member, "w", force_zip64=True)
    if zf.compression == zipfile.ZIP_DEFLATED and hasattr(member, "_compressor"):
        member._compressor = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    return member


def add_file(zf: zipfile.ZipFile, path: Path, name: str) -> None:
    """`zf.write(path, name)` through open_member (the file's time, mode and size in the
    member's header, as zf.write puts them), copied in BLOCK pieces."""
    info = zipfile.ZipInfo.from_file(path, name)
    info.compress_type = zf.compression
    with open(path, "rb") as source:
        add_stream(zf, source, info)


def add_stream(zf: zipfile.ZipFile, source: IO[bytes], member: str | zipfile.ZipInfo) -> None:
    """A member holding what `source` gives until its end, copied in BLOCK pieces."""
    with open_member(zf, member) as handle:
        shutil.copyfileobj(source, handle, BLOCK)
