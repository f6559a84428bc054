"""Streaming writers for Stata (.dta) and SPSS (.sav) files, by row or by chunk of columns.

The export calls one interface: `open_table(folder, table, columns)`, which writes a table's
.dta and .sav together, a chunk of column arrays at a time (table.py).

Why these are kept rather than pyreadstat (which the tests use to read the files back):
pyreadstat writes a whole DataFrame at once and cannot append, and the export must stay
within its memory budget at 100,000 participants (peak RSS < 500 MB, docs/PERFORMANCE.md).
There the weekly SMS table has ~12 million rows (sms.dta 971 MB, sms.sav 568 MB, "Fifth
round"); the export streams it and peaks at 386-426 MB, while pandas holding the same tables
peaks at 744-773 MB (the benchmark's baseline rows, "Fifth round" and "Sixth round"), before
any DataFrame handed to pyreadstat. These writers take rows one by one (or a chunk of column
arrays), encode each into a pre-built layout and write it through a buffered file; memory
does not depend on the number of rows. The row count, which these formats keep in their
headers, is written as a placeholder and patched when the writer is closed.

Both formats are written from their published specifications, not from another library:

- Stata: "dta format 118" (Stata 14 and later, UTF-8), in Stata's own help file `help dta`.
  Little-endian; numbers, %td dates and %tc date-times as doubles; strings as fixed-width
  str# (null-padded UTF-8); a value-label table per labelled variable, named after it.
- SPSS: "System File Format" in the GNU PSPP Developers Guide. Bytecode compression (bias
  100: whole numbers -99..151 take one byte, blank 8-byte string pieces one byte, missing
  one byte), so the mostly small-integer SMS table stays small. UTF-8 (records 7/3 and 7/20),
  long variable names (7/13) behind generated 8-byte short names, very long strings (7/14,
  widths 256..2045 as 255-byte segments), variable labels and numeric value labels.

Values, per `Column.kind` (None is missing everywhere):

    number    int, float, Decimal, bool; NaN is missing. Infinity and magnitudes above
              8.988e307 (Stata's largest number) are refused. Stata: double, '.' if missing.
              SPSS: double, system-missing if missing.
    date      datetime.date (not a datetime). Stata %td: days since 1960-01-01. SPSS DATE11:
              seconds since 1582-10-14.
    datetime  naive datetime.datetime, to the millisecond (Stata's %tc counts milliseconds;
              the sub-millisecond part is dropped in both files). Stata %tc: ms since
              1960-01-01 00:00, exact. SPSS DATETIME20: seconds since 1582-10-14 00:00 as a
              double, exact to the second and to a few microseconds below it (readers that
              truncate may show 18:00:05.122999 for 18:00:05.123).
    string    str, at most `width` UTF-8 bytes; longer values are cut at a character boundary
              and counted in `WriteResult.truncated`. Neither format has a missing string, so
              None is written as "". Stata ends a string at a NUL character; SPSS pads with
              spaces, so readers drop trailing spaces.

The writers themselves (tested against the specifications in tests/outcomes/test_statfiles.py),
e.g. CSV, .dta and .sav of the same rows in one pass over a cursor:

    with DtaWriter(dta_path, columns) as dta, SavWriter(sav_path, columns) as sav:
        for row in cursor:
            dta.write(row)
            sav.write(row)
    dta.result.truncated  # {column name: strings cut to the column's width}

or `write_dta(path, columns, rows)` / `write_sav(...)` for an iterable. For millions of
rows, `writer.write_columns(arrays)` takes a chunk as one numpy array per column (float64,
datetime64[D], datetime64[ms], object str/None or 'S' UTF-8 bytes; see `_Writer` in
common.py) and writes it vectorised (arrays.py), giving byte for byte the file `write`
gives; both may be mixed on one writer. Both take the
keyword options `label` (dataset label) and `created` (naive datetime stamped in the header;
omitted when None). The paths must be seekable files; a writer that fails or is left by an
exception removes its half-written file.

Labels: variable labels are cut to 80 characters (Stata) or 255 bytes (SPSS); value labels
to 32,000 bytes (Stata) or 120 bytes (SPSS, its documented maximum), at a character boundary.
"""

from .common import Column, WriteResult, check_columns, reserved
from .dta import DtaWriter, write_dta
from .sav import SavWriter, write_sav
from .table import TableFiles, open_table

__all__ = [
    "reserved",
    "open_table",
    "Column",
    "DtaWriter",
    "SavWriter",
    "TableFiles",
    "WriteResult",
    "check_columns",
    "write_dta",
    "write_sav",
]
