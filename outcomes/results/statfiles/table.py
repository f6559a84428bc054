"""The one interface the export uses: a table's .dta and .sav, written together, chunk by
chunk, from the same column arrays."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .common import Column, WriteResult
from .dta import DtaWriter
from .sav import SavWriter


class TableFiles:
    """`folder`/`table`.dta and .sav being written; see open_table."""

    def __init__(self, paths: tuple[Path, Path], dta: DtaWriter, sav: SavWriter):
        self.paths = paths
        self._writers = (dta, sav)

    def write_columns(self, arrays: Sequence) -> None:
        """Write a chunk of rows, one numpy array per column, to both files (the writers'
        chunk path, `_Writer.write_columns` in common.py)."""
        for writer in self._writers:
            writer.write_columns(arrays)

    @property
    def result(self) -> WriteResult:
        """The rows written and, per column, the strings cut (both files cut at the same
        width; where one counts none, the other's count)."""
        dta, sav = (writer.result for writer in self._writers)
        return WriteResult(
            rows=dta.rows,
            truncated={name: n or sav.truncated[name] for name, n in dta.truncated.items()},
        )


@contextmanager
def open_table(folder: Path, table: str, columns: Sequence[Column]) -> Iterator[TableFiles]:
    """`with open_table(folder, "visits", columns) as files: files.write_columns(arrays)`
    writes `folder`/visits.dta and visits.sav; both are finished when the block ends, and
    neither is left behind (half written) when it raises. `files.paths` and `files.result`
    stay readable afterwards."""
    paths = (Path(folder) / f"{table}.dta", Path(folder) / f"{table}.sav")
    with DtaWriter(paths[0], columns) as dta, SavWriter(paths[1], columns) as sav:
        yield TableFiles(paths, dta, sav)
