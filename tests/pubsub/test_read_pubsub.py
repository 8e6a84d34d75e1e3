"""ReadPubSub and WriteDeadLettersToPubSub, no broker: messages to EventLines, dead letters to messages."""

import datetime
import json

import apache_beam as beam
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from schemas.dead_letter import DeadLetter
from tests.transforms.conftest import RUNNER, run_and_count
from transforms.read_pubsub import ReadPubSub, _runner_dedups_by_id_label, _ToEventLine, event_time
from transforms.write_pubsub import WriteDeadLettersToPubSub, to_message

SOURCE = "pubsub://projects/beamforce-test/subscriptions/events"
PUBLISHED = datetime.datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=datetime.UTC)
PUBLISHED_US = 1_796_115_600_123_456
READ_US = PUBLISHED_US + 7  # the runner's stamp: the publish time, or a timestamp attribute


def _us(iso: str) -> int:
    return Timestamp.from_rfc3339(iso).micros


# (message data, publish time given, what comes out: (line, seq, element timestamp) or None if blank)
CASES = [
    (  # happened before it was published: stamped with its own time
        b'{"type": "identify", "timestamp": "2026-03-01T10:00:01.000Z"}',
        True,
        (
            '{"type": "identify", "timestamp": "2026-03-01T10:00:01.000Z"}',
            PUBLISHED_US,
            _us("2026-03-01T10:00:01Z"),
        ),
    ),
    (  # an offset is converted; a later key is used when the first holds no time
        b'{"timestamp": "soon", "originalTimestamp": "2026-03-01T12:00:00+02:00"}',
        True,
        (
            '{"timestamp": "soon", "originalTimestamp": "2026-03-01T12:00:00+02:00"}',
            PUBLISHED_US,
            _us("2026-03-01T10:00:00Z"),
        ),
    ),
    (  # dated after it was published (a client's clock ahead): never stamped later than the source did
        b'{"timestamp": "2027-01-01T00:00:00Z"}',
        True,
        ('{"timestamp": "2027-01-01T00:00:00Z"}', PUBLISHED_US, READ_US),
    ),
    (b'{"type": "group"}', True, ('{"type": "group"}', PUBLISHED_US, READ_US)),  # no time at all
    (b"not json", True, ("not json", PUBLISHED_US, READ_US)),  # left to the parser to dead-letter
    (b'{"n": "\xff"}', True, (b'{"n": "\xff"}', PUBLISHED_US, READ_US)),  # not UTF-8: bytes, for the parser
    (
        b'{\n  "type": "track"\n}',
        False,
        ('{\n  "type": "track"\n}', READ_US, READ_US),
    ),  # one message, one event
    (b"", True, None),
    (b"\xef\xbb\xbf \r\n", True, None),  # a lone byte-order mark is as blank as nothing
]


def _stamped(line, timestamp=beam.DoFn.TimestampParam):
    yield (line.source, line.seq, line.line, timestamp.micros)


@pytest.mark.parametrize("stamp_event_time", [True, False], ids=["event_time", "timestamp_attribute"])
def test_each_message_is_one_event_line_stamped_with_its_event_time(stamp_event_time):
    messages = [
        PubsubMessage(data, {"messageId": f"m{n}"}, publish_time=PUBLISHED if published else None)
        for n, (data, published, _) in enumerate(CASES)
    ]
    expected = [
        (SOURCE, seq, line, stamp if stamp_event_time else READ_US)
        for _, _, out in CASES
        if out is not None
        for line, seq, stamp in [out]
    ]
    p = beam.Pipeline(runner=RUNNER)
    lines = (
        p
        | "Messages" >> beam.Create(messages)
        | "StampAsRead"
        >> beam.Map(lambda m: TimestampedValue(m, Timestamp(micros=READ_US))).with_output_types(PubsubMessage)
        | "ToEventLines" >> beam.ParDo(_ToEventLine(SOURCE, stamp_event_time))
        | "Stamps" >> beam.FlatMap(_stamped)
    )
    assert_that(lines, equal_to(expected), label="CheckLines")

    assert run_and_count(p) == {"events_read": len(expected), "blank_lines": 2}


@pytest.mark.parametrize(
    "line, expected",
    [
        ('{"timestamp": "2026-03-01T10:00:01.5Z"}', "2026-03-01T10:00:01.500Z"),
        ('{"sentAt": "2026-03-01t10:00:01z", "receivedAt": "x"}', "2026-03-01T10:00:01.000Z"),
        ('{"timestamp": 1772359201}', None),  # a number is not a Segment time
        ("[1, 2]", None),
        ('{"timestamp": "0001-01-01T00:00:00+14:00"}', None),  # out of range: no time, and no crash
        (
            '{"timestamp": "9999-12-31T23:59:59-14:00", "sentAt": "2026-03-01T10:00:01Z"}',
            "2026-03-01T10:00:01Z",
        ),
        ("[" * 100_000, None),  # nested too deep for json: no time, and no crash
        (b'{"timestamp": "2026-03-01T10:00:01Z"}', None),  # bytes are not read as an event
    ],
)
def test_event_time_follows_the_parser_keys(line, expected):
    got = event_time(line)
    assert (got.micros if got is not None else None) == (_us(expected) if expected else None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "a subscription or a topic"),
        (
            {
                "subscription": "projects/beamforce-test/subscriptions/s",
                "topic": "projects/beamforce-test/topics/t",
            },
            "a subscription or a topic",
        ),
        ({"subscription": "beamforce-test/s"}, "projects/<project>/subscriptions/<subscription>"),
        ({"topic": "projects/beamforce-test/subscriptions/s"}, "projects/<project>/topics/<topic>"),
        ({"topic": "projects/beamforce-test/topics/t", "id_label": ""}, "attribute names or None"),
    ],
)
def test_settings_are_checked_when_it_is_built(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("<", ".").replace(">", ".")):
        ReadPubSub(**kwargs)


def test_the_id_label_goes_only_to_a_runner_that_deduplicates_by_it():
    assert _runner_dedups_by_id_label(DataflowRunner())
    assert not _runner_dedups_by_id_label(BundleBasedDirectRunner())
    read = ReadPubSub(subscription="projects/beamforce-test/subscriptions/events")
    assert read.source == SOURCE


def test_a_dead_letter_is_its_json_line_with_filterable_attributes():
    dead = DeadLetter("write", "STRING_TOO_LONG", "Title: too long", False, {"messageId": "m1"}, "t", "s")

    message = to_message(dead)

    assert json.loads(message.data) == json.loads(dead.to_json())
    assert message.attributes == {"stage": "write", "reason": "STRING_TOO_LONG", "retryable": "false"}


@pytest.mark.parametrize(
    "event, source, at_least",
    [
        ("x" * 5000, "file.jsonl", 2000),  # as much of it as fits
        ("é" * 3000, "file.jsonl", 1999),  # never half a character
        ("\ud800" + "x" * 5000, "file.jsonl", 2000),  # a lone surrogate, which UTF-8 cannot hold: "?"
        ({"traits": {"notes": '"\\' * 3000}}, "file.jsonl", 1994),  # never half an escape sequence
        ("é😀" * 3000, "in-\udcff.jsonl", 1988),  # a line of ASCII escapes: never half a surrogate pair
    ],
    ids=["line", "multibyte", "surrogate", "escapes", "ascii_line"],
)
def test_a_dead_letter_too_large_for_a_message_keeps_the_start_of_its_event(event, source, at_least):
    dead = DeadLetter("parse", "invalid_json", "bad", False, event, "t", source)

    message = to_message(dead, max_bytes=2000)

    assert at_least <= len(message.data) <= 2000
    assert message.attributes["truncated"] == "true"
    record = json.loads(message.data)
    assert isinstance(record["event"], str) and record["event"]
    text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
    assert text.replace("\ud800", "?").startswith(record["event"])
    assert record["message"].startswith("bad [event truncated from ")
    assert record["message"].endswith(" bytes to fit a Pub/Sub message]")
    assert (record["stage"], record["reason"], record["source"]) == ("parse", "invalid_json", source)


def test_a_dead_letter_topic_must_be_a_topic():
    with pytest.raises(ValueError, match="topics"):
        WriteDeadLettersToPubSub("projects/beamforce-test/subscriptions/dead")


@pytest.mark.parametrize(
    "attributes, stamp",
    [
        ({"ts": "2026-03-01T10:00:01Z"}, _us("2026-03-01T10:00:01Z")),
        ({"ts": "1772359201000"}, 1_772_359_201_000_000),  # epoch milliseconds
        ({"ts": "2027-01-01T00:00:00.5Z"}, _us("2027-01-01T00:00:00.5Z")),  # the publisher's word, even later
        # Found by a hostile review: Beam's local source failed the whole run on these.
        ({"ts": "yesterday"}, READ_US),
        ({"ts": ""}, READ_US),
        ({"ts": "9" * 40}, READ_US),
        ({}, READ_US),  # no attribute: the time the source gave
    ],
)
def test_a_timestamp_attribute_stamps_the_event_and_a_bad_one_does_not_stop_the_run(attributes, stamp):
    message = PubsubMessage(b'{"timestamp": "2026-01-01T00:00:00Z"}', attributes, publish_time=PUBLISHED)
    p = beam.Pipeline(runner=RUNNER)
    stamps = (
        p
        | "Messages" >> beam.Create([message])
        | "StampAsRead"
        >> beam.Map(lambda m: TimestampedValue(m, Timestamp(micros=READ_US))).with_output_types(PubsubMessage)
        | "ToEventLines" >> beam.ParDo(_ToEventLine(SOURCE, stamp_event_time=False, timestamp_attribute="ts"))
        | "Stamps" >> beam.FlatMap(_stamped)
    )
    assert_that(stamps | beam.Map(lambda s: s[3]), equal_to([stamp]))
    run_and_count(p)
