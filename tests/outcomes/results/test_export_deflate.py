"""outcomes.results.export.deflate: ZIP members deflated by ISA-L, read back by the stdlib."""

import random
import zipfile
import zlib

import pytest
from isal import isal_zlib

from outcomes.results.export import deflate


def _content(size: int) -> bytes:
    # Text-like and repetitive, as the tables are, with some noise so it is not trivial.
    rng = random.Random(7)
    words = [b"1234,17,2026-03-04,pain_days,1,2026-03-04T18:01:00,", b"3,answer\n", b"\xc3\xa6"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + str(rng.randrange(10**6)).encode()
    return bytes(out[:size])


def _isal(data: bytes) -> bytes:
    compressor = isal_zlib.compressobj(deflate.LEVEL, isal_zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("size", [0, 1, deflate.BLOCK * 3 + 17])
def test_a_file_added_is_deflated_by_isal_and_read_back_by_the_stdlib(tmp_path, size):
    data = _content(size)
    source = tmp_path / "table.csv"
    source.write_bytes(data)
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        deflate.add_file(zf, source, "table.csv")
        with deflate.open_member(zf, "streamed.csv") as member:
            for start in range(0, size, 1000):
                member.write(data[start : start + 1000])
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None  # every member's CRC checks
        assert zf.read("table.csv") == data and zf.read("streamed.csv") == data
        info = zf.getinfo("table.csv")
        assert info.compress_type == zipfile.ZIP_DEFLATED and info.file_size == size
        # ISA-L's stream, not zlib's (they differ for any non-empty input).
        with open(archive, "rb") as raw:
            raw.seek(info.header_offset + 26)
            skip = int.from_bytes(raw.read(2), "little") + int.from_bytes(raw.read(2), "little")
            raw.seek(skip, 1)
            stored = raw.read(info.compress_size)
    assert stored == _isal(data)
    if size > deflate.BLOCK:  # (a byte or two come out the same from both)
        zlib_stream = zlib.compressobj(1, zlib.DEFLATED, -15)
        assert stored != zlib_stream.compress(data) + zlib_stream.flush()


def test_a_stored_archive_keeps_its_members_stored(tmp_path):
    data = _content(5000)
    source = tmp_path / "t.csv"
    source.write_bytes(data)
    with zipfile.ZipFile(tmp_path / "b.zip", "w", compression=zipfile.ZIP_STORED) as zf:
        deflate.add_file(zf, source, "t.csv")
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert zf.getinfo("t.csv").compress_type == zipfile.ZIP_STORED
        assert zf.read("t.csv") == data and zf.testzip() is None
