"""ReadEvents: lines of plain and gzip files with their source, blank lines counted apart."""

import gzip
import io

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.transforms.conftest import run_and_count
from transforms.read_events import ReadEvents, numbered_lines, read_lines


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
                # Line numbers count blank lines too: they name the line a user sees in an editor.
                (str(plain), 1, '{"n": 1}'),
                (str(plain), 4, '{"n": 2}'),
                (str(packed), 1, '\ufeff{"n": 3}'),
                (str(packed), 2, '{"n": "\u00e9"}'),
                (str(bad), 1, b'{"n": "\xff"}'),  # not UTF-8: left to the parser to dead-letter
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

    assert_that(read.output, equal_to([(str(good), 1, '{"n": 1}')]), label="CheckLines")
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


@pytest.mark.parametrize(
    "data, lines",
    [
        (b"a\nb\n", [(1, b"a"), (2, b"b")]),
        (b"a\r\nb\r\n", [(1, b"a"), (2, b"b")]),
        # Classic Mac OS: CR alone ends a line, so that several events are not one opaque line.
        (b"a\rb\rc", [(1, b"a"), (2, b"b"), (3, b"c")]),
        (b"a\rb\r", [(1, b"a"), (2, b"b")]),
        (b"a\r\rb\n", [(1, b"a"), (2, b""), (3, b"b")]),
        (b"a\rb\r\nc\n\nd", [(1, b"a"), (2, b"b"), (3, b"c"), (4, b""), (5, b"d")]),
        (b"", []),
        (b"\n", [(1, b"")]),
    ],
)
def test_numbered_lines_end_at_lf_crlf_and_lone_cr(data, lines):
    assert list(numbered_lines(io.BytesIO(data))) == lines


def test_cr_only_files_give_one_event_a_line(tmp_path, p):
    mac = tmp_path / "mac.jsonl"
    mac.write_bytes(b'{"n": 1}\r{"n": 2}\r\r{"n": 3}\r')
    read = p | "Read" >> ReadEvents(str(mac))
    assert_that(
        read.output,
        equal_to([(str(mac), 1, '{"n": 1}'), (str(mac), 2, '{"n": 2}'), (str(mac), 4, '{"n": 3}')]),
    )
    assert run_and_count(p) == {"events_read": 3, "blank_lines": 1}


@pytest.mark.parametrize("name, compress", [("x.jsonl", bytes), ("x.jsonl.gz", gzip.compress)])
def test_read_lines_finds_lines_again_by_number(tmp_path, name, compress):
    path = tmp_path / name
    path.write_bytes(compress(b'{"n": 1}\r\n\n{"n": "\xff"}\r{"n": 4}\n{"n": 5}\n'))
    assert list(read_lines(str(path), {1, 3, 4})) == [(1, '{"n": 1}'), (3, b'{"n": "\xff"}'), (4, '{"n": 4}')]
    assert list(read_lines(str(path), {99})) == []
