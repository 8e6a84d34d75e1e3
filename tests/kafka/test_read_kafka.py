"""ReadKafka against a real broker: every record once, offsets committed when the run has handled them, runs
that resume."""

import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.display import DisplayData

from schemas.events import EventLine
from tests.kafka.conftest import Broker, pipeline, run_and_count
from transforms.read_kafka import ReadKafka, source_of

PARTITIONS = 3


def _event(n: int, **members) -> bytes:
    return json.dumps({"type": "identify", "messageId": f"m{n}", **members}).encode()


def _produce(broker: Broker, topic: str, first: int, count: int) -> list[EventLine]:
    """Events `first`.. spread over the partitions; the EventLines a read of them gives."""
    records = [(n % PARTITIONS, _event(n)) for n in range(first, first + count)]
    next_offset = broker.end_offsets(topic)
    broker.produce(topic, records)
    expected = []
    for partition, value in records:
        expected.append(EventLine(source_of(topic, partition), next_offset[partition], value.decode()))
        next_offset[partition] += 1
    return expected


def _read(broker: Broker, topic: str, group: str, bounded: bool = True, **kwargs):
    return ReadKafka(broker.bootstrap, [topic], group, {}, bounded=bounded, **kwargs)


def _run(broker: Broker, topic: str, group: str, expected: list[EventLine], **kwargs) -> dict[str, int]:
    p = pipeline()
    reader = _read(broker, topic, group, **kwargs)
    read = p | "ReadKafka" >> reader
    assert_that(read.output, equal_to(expected), label="Lines")
    assert_that(read.dead_letter, equal_to([]), label="DeadLetters")
    reader.commit_when_done([read.output])
    return run_and_count(p)


def test_bounded_read_gives_every_record_once_with_its_partition_and_offset(broker, topic, group):
    expected = _produce(broker, topic, 0, 30)

    counters = _run(broker, topic, group, expected, checkpoint_records=4)

    assert counters["events_read"] == 30
    assert broker.committed(group, topic) == {0: 10, 1: 10, 2: 10}


def test_second_bounded_run_with_the_same_group_reads_only_what_is_new(broker, topic, group):
    first = _produce(broker, topic, 0, 12)
    _run(broker, topic, group, first)

    _run(broker, topic, group, [])

    later = _produce(broker, topic, 12, 9)
    _run(broker, topic, group, later)
    assert broker.committed(group, topic) == {0: 7, 1: 7, 2: 7}


class _WriteAtBundleEnd(beam.DoFn):
    """A sink that writes a bundle's lines when the bundle ends, and fails the run at `crash_at`: the
    lines of a bundle that did not end are never written, as a real sink's would not be."""

    def __init__(self, path: str, crash_at: tuple[str, int] | None) -> None:
        self._path = path
        self._crash_at = crash_at
        self._lines: list[str] = []

    def start_bundle(self) -> None:
        self._lines = []

    def process(self, line: EventLine):
        if (line.source, line.seq) == self._crash_at:
            raise RuntimeError("the job stops here")
        self._lines.append(f"{line.source} {line.seq}\n")

    def finish_bundle(self) -> None:
        with open(self._path, "a", encoding="utf-8") as f:
            f.writelines(self._lines)


def _read_and_write(broker: Broker, topic: str, group: str, written: Path, crash_at) -> beam.Pipeline:
    p = pipeline()
    reader = _read(broker, topic, group, checkpoint_records=4)
    read = p | "ReadKafka" >> reader
    sunk = read.output | "Write" >> beam.ParDo(_WriteAtBundleEnd(str(written), crash_at))
    reader.commit_when_done([sunk])
    return p


def test_a_run_stopped_mid_way_commits_nothing_and_the_restart_loses_nothing(broker, topic, group, tmp_path):
    # Events a stopped run had read but not handled (held by a later stage) must not be committed: the
    # restart reads from where the group was, and the pipeline's writes do not duplicate what was written.
    expected = _produce(broker, topic, 0, 36)
    written = tmp_path / "written.txt"
    crash_at = (source_of(topic, 1), 9)  # in the third bundle of partition 1

    with pytest.raises(Exception, match="the job stops here"):
        _read_and_write(broker, topic, group, written, crash_at).run().wait_until_finish()
    first = written.read_text().splitlines()
    assert 0 < len(first) < 36
    assert broker.committed(group, topic) == {0: -1001, 1: -1001, 2: -1001}

    _read_and_write(broker, topic, group, written, None).run().wait_until_finish()
    lines = written.read_text().splitlines()
    assert sorted(set(lines)) == sorted(f"{e.source} {e.seq}" for e in expected)
    assert len(lines) == len(first) + 36
    assert broker.committed(group, topic) == {0: 12, 1: 12, 2: 12}


def test_unbounded_read_stops_when_idle_and_the_next_run_reads_only_what_is_new(broker, topic, group):
    first = _produce(broker, topic, 0, 9)
    _run(broker, topic, group, first, bounded=False, max_idle_seconds=0.3)

    later = _produce(broker, topic, 9, 6)
    counters = _run(broker, topic, group, later, bounded=False, max_idle_seconds=0.3)

    assert counters["events_read"] == 6
    assert broker.committed(group, topic) == {0: 5, 1: 5, 2: 5}


def test_value_that_is_not_utf8_is_read_as_bytes_and_an_empty_one_as_a_blank_line(broker, group):
    topic = broker.new_topic(partitions=1)
    broker.produce(topic, [(0, b"\xff\xfe{}"), (0, b""), (0, None), (0, b'{"ok": "\xc3\xa9"}')])
    source = source_of(topic, 0)

    p = pipeline()
    reader = _read(broker, topic, group)
    read = p | "ReadKafka" >> reader
    assert_that(
        read.output, equal_to([EventLine(source, 0, b"\xff\xfe{}"), EventLine(source, 3, '{"ok": "é"}')])
    )
    reader.commit_when_done([read.output])
    counters = run_and_count(p)

    assert counters["events_read"] == 2
    assert counters["blank_lines"] == 2
    assert broker.committed(group, topic, partitions=1) == {0: 4}


def test_elements_carry_the_event_timestamp_else_the_kafka_timestamp(broker, group):
    # Records stamped in 2023 are past the default retention (7 days, judged by record timestamps): the
    # broker deletes them when its retention check runs, and the read, rightly, finds nothing.
    topic = broker.new_topic(partitions=1, retention_ms="-1")
    kafka_ms = 1_700_000_000_123
    broker.produce(
        topic,
        [
            (0, _event(1, timestamp="2024-05-01T12:00:00.500Z")),
            (0, _event(2, timestamp="2024-05-01T14:00:00+02:00")),
            (0, _event(3)),
            (0, _event(4, timestamp="not a time")),
            (0, b"not json"),
        ],
        timestamp_ms=kafka_ms,
    )

    p = pipeline()
    read = p | "ReadKafka" >> _read(broker, topic, group)
    stamps = read.output | "Stamps" >> beam.Map(
        lambda line, ts=beam.DoFn.TimestampParam: (line.seq, float(ts.micros) / 1e6)
    )
    assert_that(
        stamps,
        equal_to(
            [
                (0, 1714564800.5),
                (1, 1714564800.0),
                (2, 1700000000.123),
                (3, 1700000000.123),
                (4, 1700000000.123),
            ]
        ),
    )
    run_and_count(p)


def test_a_topic_that_does_not_exist_fails_the_run_naming_it(broker, group):
    p = pipeline()
    _ = p | "ReadKafka" >> _read(broker, "no-such-topic", group)
    with pytest.raises(Exception, match="no-such-topic"):
        p.run().wait_until_finish()


SECRET_VARIABLE = "BEAMFORCE_TEST_KAFKA_PASSWORD"


def test_a_secret_setting_is_read_on_the_worker_never_pickled_or_displayed(broker, topic, group, monkeypatch):
    monkeypatch.setenv(SECRET_VARIABLE, "s3cret-value")
    expected = _produce(broker, topic, 0, 6)
    read = ReadKafka(
        broker.bootstrap, [topic], group, {"sasl.password": f"env:{SECRET_VARIABLE}"}, bounded=True
    )

    assert b"s3cret" not in cloudpickle.dumps(read)  # what Beam puts in the job's graph, before compressing
    shown = repr(DisplayData.create_from(read).items)
    assert "sasl.password" in shown and topic in shown and "s3cret" not in shown

    p = pipeline()
    lines = (p | "ReadKafka" >> read).output
    assert_that(lines, equal_to(expected))
    run_and_count(p)


def test_a_secret_the_worker_cannot_read_fails_the_run_naming_where_it_looked(
    broker, topic, group, monkeypatch
):
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)

    p = pipeline()
    _ = p | "ReadKafka" >> ReadKafka(
        broker.bootstrap, [topic], group, {"sasl.password": f"env:{SECRET_VARIABLE}"}
    )
    with pytest.raises(Exception, match=f"environment variable '{SECRET_VARIABLE}', which is not set"):
        p.run().wait_until_finish()


def test_several_topics_are_read_in_one_run(broker, group):
    first, second = broker.new_topic(partitions=2), broker.new_topic(partitions=1)
    broker.produce(first, [(0, _event(1)), (1, _event(2))])
    broker.produce(second, [(0, _event(3))])

    p = pipeline()
    read = p | "ReadKafka" >> ReadKafka(broker.bootstrap, [first, second], group, bounded=True)
    assert_that(
        read.output,
        equal_to(
            [
                EventLine(source_of(first, 0), 0, _event(1).decode()),
                EventLine(source_of(first, 1), 0, _event(2).decode()),
                EventLine(source_of(second, 0), 0, _event(3).decode()),
            ]
        ),
    )
    run_and_count(p)
