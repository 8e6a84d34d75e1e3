"""Streaming dead letters: complete files per window of processing time, valid input for a replay."""

import glob
import json
import os
import re

import pytest
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.transforms.window import GlobalWindow, TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from schemas.dead_letter import DeadLetter
from tests.streaming.conftest import run_and_count, streaming_pipeline
from transforms.dead_letters import WriteDeadLetters
from transforms.json_lines import keep_unfinished, split_prefix, temp_directory, windowed_file_naming
from transforms.parsing import parse_line


def _letter(n: int) -> DeadLetter:
    event = {"type": "identify", "messageId": f"m{n}", "userId": "u", "traits": {"email": f"e{n}@x.com"}}
    return DeadLetter("write", "REQUEST_LIMIT_EXCEEDED", "limit", True, event, "t", "topic")


def test_dead_letters_are_written_per_window_and_replay(tmp_path):
    prefix = str(tmp_path / "dl" / "dead_letters")
    stream = (
        EventStream()
        .add_elements([TimestampedValue(_letter(n), 10) for n in range(3)])
        .advance_watermark_to(100)
        .add_elements([TimestampedValue(_letter(n), 110) for n in range(3, 5)])
        # Flushed when the input ends: stamped at the end of time, as BufferByShard's drain stamps it.
        .add_elements([TimestampedValue(_letter(5), GlobalWindow().max_timestamp())])
        .advance_watermark_to_infinity()
    )
    p = streaming_pipeline()
    _ = p | stream | WriteDeadLetters(prefix, window_seconds=60)
    counts = run_and_count(p)

    files = sorted(glob.glob(prefix + "-*.jsonl"))
    lines = [line for f in files for line in open(f, encoding="utf-8")]
    assert counts["dead_letter:REQUEST_LIMIT_EXCEEDED"] == 6
    assert len(lines) == 6
    assert len(files) == 3
    assert [f for f in files if re.search(r"-end-000-[0-9a-f]{8}-00000-of-00001\.jsonl$", f)] == [files[-1]]
    # Each line is a dead letter whose replay gives its event back.
    replayed = [parse_line(line.rstrip("\n"), "replay") for line in lines]
    assert sorted(e.message_id for e in replayed) == [f"m{n}" for n in range(6)]
    assert all(json.loads(line)["retryable"] for line in lines)


def test_file_names_carry_the_window_and_the_pane():
    class _Window:
        def __init__(self, start, end):
            from apache_beam.utils.timestamp import Timestamp

            self.start, self.end = Timestamp(start), Timestamp(end)

    class _Pane:
        index = 2

    name = windowed_file_naming("dead_letters", run="0a1b2c3d")(_Window(0, 60), _Pane(), 0, 1, None, None)
    assert name == "dead_letters-19700101T000000Z-19700101T000100Z-002-0a1b2c3d-00000-of-00001.jsonl"


def test_two_runs_name_the_same_window_apart():
    # A job restarted within the minute (or two jobs given one prefix) must not replace the first's file.
    first, second = windowed_file_naming("dead_letters"), windowed_file_naming("dead_letters")

    class _Window:
        start, end = Timestamp(0), Timestamp(60)

    names = {naming(_Window(), None, 0, 1, None, None) for naming in (first, second, first)}
    assert len(names) == 2
    assert all(
        re.fullmatch(
            r"dead_letters-19700101T000000Z-19700101T000100Z-000-[0-9a-f]{8}-00000-of-00001\.jsonl", n
        )
        for n in names
    )


def test_the_window_at_the_end_of_time_is_named_by_when_it_is_written():
    class _Window:
        start = GlobalWindow().max_timestamp()
        end = GlobalWindow().max_timestamp() + 60

    name = windowed_file_naming("dead_letters", clock=lambda: 1_764_698_100.0, run="0a1b2c3d")(
        _Window(), None, 0, 1, None, None
    )
    assert name == "dead_letters-20251202T175500Z-end-000-0a1b2c3d-00000-of-00001.jsonl"


@pytest.mark.parametrize(
    "prefix, folder, name",
    [
        # Found in review: a URL went through os.path.abspath, so a Dataflow job's streaming dead letters
        # went to "<worker cwd>/gs:/bucket/..." on the worker's disk.
        ("gs://bucket/beamforce/dead_letters", "gs://bucket/beamforce", "dead_letters"),
        ("s3://bucket/dl", "s3://bucket", "dl"),
        ("out/dead_letters", os.path.abspath("out"), "dead_letters"),
        ("/var/beamforce/dl", "/var/beamforce", "dl"),
    ],
)
def test_a_prefix_splits_into_its_folder_and_name(prefix, folder, name):
    assert split_prefix(prefix) == (folder, name)
    assert temp_directory(prefix, "0a1b2c3d") == f"{folder}/.temp-{name}-0a1b2c3d"


def test_a_stopped_runs_waiting_lines_are_kept_as_a_window_file(tmp_path):
    prefix = str(tmp_path / "dead_letters")
    folder = tmp_path / ".temp-dead_letters-0a1b2c3d"
    folder.mkdir()
    (folder / "1_a").write_bytes(b'{"n":1}\n{"n":2}\n')
    (folder / "2_b").write_bytes(b'{"n":3}\n{"n":')  # cut short by the stop: never counted as written
    (tmp_path / ".temp-dead_letters-ffffffff").mkdir()  # another run's: not touched
    (tmp_path / ".temp-dead_letters-ffffffff" / "1_c").write_bytes(b'{"n":9}\n')

    kept = keep_unfinished(prefix, "0a1b2c3d", clock=lambda: 1_700_000_000)

    target = prefix + "-20231114T221320Z-stopped-000-0a1b2c3d-00000-of-00001.jsonl"
    assert kept == (target, 3)
    assert open(target, "rb").read() == b'{"n":1}\n{"n":2}\n{"n":3}\n'
    assert not folder.exists()
    assert (tmp_path / ".temp-dead_letters-ffffffff" / "1_c").exists()
    assert keep_unfinished(prefix, "0a1b2c3d") is None  # nothing waits any more
    assert keep_unfinished("gs://bucket/dl", "0a1b2c3d") is None  # remote runners drain their windows
