"""The physical lines of a CSV file, as both explaining readers count them
(pipelines/ingest/csv_lines.py): a line ends at CR, LF or CR LF."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from pipelines.ingest import csv_lines
from pipelines.ingest.csv_lines import LineTooLong, physical_lines, read_error_reason


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_a_line_ends_at_cr_lf_or_cr_lf_wherever_a_chunk_ends(monkeypatch, chunk):
    """A CR LF split between two reads is one ending, not two."""
    monkeypatch.setattr(csv_lines, "_CHUNK", chunk)
    data = b"a,b\r\nc,d\re,f\ng,h\r\n\ri,j"
    assert list(physical_lines(io.BytesIO(data))) == [
        b"a,b\r\n", b"c,d\r", b"e,f\n", b"g,h\r\n", b"\r", b"i,j",
    ]


def test_a_file_of_cr_ended_lines_longer_than_the_limit_is_read_line_by_line(monkeypatch):
    """No line feed anywhere: a reader that looked for one read the whole file as its first
    line and named "line 1: longer than the limit"."""
    monkeypatch.setattr(csv_lines, "_CHUNK", 64)
    data = b"".join(b"u%d,Name %d\r" % (i, i) for i in range(1000))
    lines = list(physical_lines(io.BytesIO(data), limit=40))
    assert len(lines) == 1000 and lines[999] == b"u999,Name 999\r"


def test_a_line_beyond_the_limit_is_named_by_its_number_without_being_held(monkeypatch):
    monkeypatch.setattr(csv_lines, "_CHUNK", 16)
    data = b"short\nshort\r" + b"x" * 1000 + b"\nafter\n"
    with pytest.raises(LineTooLong) as caught:
        list(physical_lines(io.BytesIO(data), limit=100))
    assert caught.value.args == (3,)


def test_why_a_file_cannot_be_read_names_neither_its_path_nor_its_bytes(tmp_path):
    missing = tmp_path / "landing" / "contacts.csv"
    with pytest.raises(OSError) as gone:
        missing.read_bytes()
    assert read_error_reason(gone.value) == "No such file or directory"  # str() names the path
    not_gzip = tmp_path / "users.csv.gz"
    not_gzip.write_bytes(b"id,name\n")
    with pytest.raises(gzip.BadGzipFile) as caught, gzip.open(not_gzip) as handle:
        handle.read()
    assert read_error_reason(caught.value) == "not a gzip file"  # gzip quotes b'id'
    assert read_error_reason(EOFError()) == "the compressed data ends before its end"
    assert read_error_reason(zlib.error("Error -3")).startswith("damaged compressed data")
