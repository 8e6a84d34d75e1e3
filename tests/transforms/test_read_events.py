"""ReadEvents: lines of plain and gzip files with their source, blank lines counted apart."""

import gzip

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.transforms.conftest import run_and_count
from transforms.read_events import ReadEvents


def test_reads_plain_and_gzip_files_and_counts_blank_lines(tmp_path, p):
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b'{"n": 1}\n\n   \n{"n": 2}\r\n')
    packed = tmp_path / "b.json.gz"
    packed.write_bytes(gzip.compress('\ufeff{"n": 3}\n{"n": "\u00e9"}\n'.encode()))
    bad = tmp_path / "c.jsonl"
    bad.write_bytes(b'{"n": "\xff"}\n\xef\xbb\xbf\n')

    lines = p | "Read" >> ReadEvents(str(tmp_path / "*.json*"))

    assert_that(
        lines,
        equal_to(
            [
                (str(plain), '{"n": 1}'),
                (str(plain), '{"n": 2}'),
                (str(packed), '\ufeff{"n": 3}'),
                (str(packed), '{"n": "\u00e9"}'),
                (str(bad), b'{"n": "\xff"}'),  # not UTF-8: left to the parser to dead-letter
            ]
        ),
        label="CheckLines",
    )
    counts = run_and_count(p)
    assert counts == {"events_read": 5, "blank_lines": 3}


def test_needs_a_pattern():
    with pytest.raises(ValueError, match="file pattern"):
        ReadEvents("")


def test_output_feeds_on(tmp_path, p):
    (tmp_path / "x.jsonl").write_text('{"a": 1}\n')
    counted = p | "Read" >> ReadEvents(str(tmp_path / "x.jsonl")) | "Count" >> beam.combiners.Count.Globally()
    assert_that(counted, equal_to([1]), label="CheckCount")
    run_and_count(p)
