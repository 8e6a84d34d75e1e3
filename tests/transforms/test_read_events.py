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

    read = p | "Read" >> ReadEvents(str(tmp_path / "*.json*"))
    lines = read.output

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
    assert_that(read.dead_letter, equal_to([]), label="CheckNoDeadLetters")
    counts = run_and_count(p)
    assert counts == {"events_read": 5, "blank_lines": 3}


def test_needs_a_pattern():
    with pytest.raises(ValueError, match="file pattern"):
        ReadEvents("")


def test_output_feeds_on(tmp_path, p):
    (tmp_path / "x.jsonl").write_text('{"a": 1}\n')
    read = p | "Read" >> ReadEvents(str(tmp_path / "x.jsonl"))
    counted = read.output | "Count" >> beam.combiners.Count.Globally()
    assert_that(counted, equal_to([1]), label="CheckCount")
    run_and_count(p)


def test_a_file_that_is_not_gzip_is_one_dead_letter_and_the_others_are_read(tmp_path, p):
    good = tmp_path / "a.jsonl"
    good.write_bytes(b'{"n": 1}\n\n')
    bad = tmp_path / "b.jsonl.gz"
    bad.write_bytes(b"this is not gzip\n")

    read = p | "Read" >> ReadEvents(str(tmp_path / "*"))

    assert_that(read.output, equal_to([(str(good), '{"n": 1}')]), label="CheckLines")
    assert_that(
        read.dead_letter | "Shape" >> beam.Map(lambda d: (d.stage, d.reason, d.retryable, d.source, d.event)),
        equal_to([("read", "unreadable_file", False, str(bad), None)]),
        label="CheckDeadLetters",
    )
    # The unreadable file counts as one event read, so that the summary adds up.
    assert run_and_count(p) == {"events_read": 2, "blank_lines": 1}


def test_a_truncated_gzip_keeps_the_lines_before_the_damage(tmp_path, p):
    truncated = tmp_path / "c.jsonl.gz"
    truncated.write_bytes(gzip.compress(b"".join(b'{"n": %d}\n' % i for i in range(5000)))[:-30])

    read = p | "Read" >> ReadEvents(str(truncated))

    assert_that(
        read.dead_letter | "Shape" >> beam.Map(lambda d: (d.stage, d.reason, d.source)),
        equal_to([("read", "unreadable_file", str(truncated))]),
        label="CheckDeadLetter",
    )
    assert_that(
        read.output | "Count" >> beam.combiners.Count.Globally() | "SomeRead" >> beam.Map(lambda n: n > 0),
        equal_to([True]),
        label="CheckLinesBeforeTheDamage",
    )
    run_and_count(p)
