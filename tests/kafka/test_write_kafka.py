"""WriteDeadLettersToKafka: records made of dead letters (pure), and a real broker that gets each one."""

import json

import apache_beam as beam
import pytest
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.display import DisplayData

from schemas.dead_letter import DeadLetter
from tests.kafka.conftest import Broker, pipeline, run_and_count
from transforms.parse_events import ParseEvents
from transforms.read_kafka import ReadKafka
from transforms.write_kafka import FRAMING_BYTES, WriteDeadLettersToKafka, to_record

IDENTIFY = {"type": "identify", "messageId": "m1", "userId": "u1", "traits": {"email": "a@example.com"}}
DEAD = [
    DeadLetter("parse", "invalid_json", "not JSON", False, "{oops", "2026-12-01T09:00:00.000Z", "in.jsonl"),
    DeadLetter("write", "REQUEST_LIMIT_EXCEEDED", "limit", True, IDENTIFY, "2026-12-01T09:00:01.000Z"),
    DeadLetter("map", "missing_email", "no email", False, {"type": "identify"}, "2026-12-01T09:00:02.000Z"),
]


def _headers(dead: DeadLetter) -> list[tuple[str, bytes]]:
    return [
        ("stage", dead.stage.encode()),
        ("reason", dead.reason.encode()),
        ("retryable", b"true" if dead.retryable else b"false"),
    ]


@pytest.mark.parametrize("key_by_reason, key", [(False, None), (True, b"REQUEST_LIMIT_EXCEEDED")])
def test_a_record_is_the_json_line_with_filterable_headers(key_by_reason, key):
    record = to_record(DEAD[1], 10_000, key_by_reason)

    assert record.value == DEAD[1].to_json().encode()
    assert record.key == key
    assert record.headers == [
        ("stage", b"write"),
        ("reason", b"REQUEST_LIMIT_EXCEEDED"),
        ("retryable", b"true"),
    ]


@pytest.mark.parametrize("event", ["x" * 5000, {"traits": {"notes": '"\\' * 3000}}], ids=["line", "event"])
def test_a_dead_letter_too_large_for_a_record_keeps_the_start_of_its_event(event):
    dead = DeadLetter("parse", "invalid_json", "bad", False, event, "t", "file.jsonl")

    record = to_record(dead, 2000)

    assert len(record.value) <= 2000
    assert record.headers[-1] == ("truncated", b"true")
    kept = json.loads(record.value)
    text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
    assert kept["event"] and text.startswith(kept["event"])
    assert kept["message"].startswith("bad [event truncated from ")
    assert kept["message"].endswith(" bytes to fit a Kafka message]")
    assert (kept["stage"], kept["reason"], kept["source"]) == ("parse", "invalid_json", "file.jsonl")


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("", "dead"), {}, "bootstrap servers"),
        (("b:9092", "bad topic"), {}, "not a Kafka topic name"),
        (("b:9092", "dead", {"acks": "1"}), {}, "set by WriteDeadLettersToKafka"),
        (("b:9092", "dead", {"bootstrap.servers": "c:9092"}), {}, "set by WriteDeadLettersToKafka"),
        (("b:9092", "dead", {"sasl.password": "hunter2"}), {}, "holds a secret"),
        (("b:9092", "dead"), {"max_message_bytes": 100}, "max_message_bytes"),
        (("b:9092", "dead"), {"flush_timeout": 0}, "flush_timeout"),
    ],
)
def test_bad_settings_are_refused_at_construction(args, kwargs, message):
    with pytest.raises(ValueError, match=message) as raised:
        WriteDeadLettersToKafka(*args, **kwargs)
    assert "hunter2" not in str(raised.value)


def test_secrets_stay_out_of_the_pickled_graph_and_display_data(monkeypatch):
    monkeypatch.setenv("BEAMFORCE_TEST_KAFKA_PASSWORD", "s3cret-value")
    write = WriteDeadLettersToKafka("b:9092", "dead", {"sasl.password": "env:BEAMFORCE_TEST_KAFKA_PASSWORD"})

    shown = repr(DisplayData.create_from(write).items)
    assert "sasl.password" in shown and "s3cret" not in shown
    assert b"s3cret" not in cloudpickle.dumps(write)


def _write(broker: Broker, topic: str, dead: list[DeadLetter], **kwargs) -> dict[str, int]:
    p = pipeline()
    _ = (
        p
        | beam.Create(dead)
        | "WriteDeadLetters" >> WriteDeadLettersToKafka(broker.bootstrap, topic, **kwargs)
    )
    return run_and_count(p)


def test_every_dead_letter_arrives_as_its_json_line_and_replays(broker, group):
    topic = broker.new_topic(partitions=1)

    counters = _write(broker, topic, DEAD, key_by_reason=True)

    records = broker.consume_all(topic, len(DEAD))
    assert sorted((r.value(), r.key(), r.headers()) for r in records) == sorted(
        (d.to_json().encode(), d.reason.encode(), _headers(d)) for d in DEAD
    )
    assert counters == {
        "dead_letter:invalid_json": 1,
        "dead_letter:REQUEST_LIMIT_EXCEEDED": 1,
        "dead_letter:missing_email": 1,
        "dead_letter_retryable": 1,
    }
    # The topic is --input for a replay: the event comes back, the bad line as the same dead letter, and
    # the event without a user as the parser's dead letter.
    p = pipeline()
    parsed = (
        p | "ReadKafka" >> ReadKafka(broker.bootstrap, [topic], group, bounded=True)
    ).output | ParseEvents()
    assert_that(parsed.output | "Ids" >> beam.Map(lambda e: e.message_id), equal_to(["m1"]), label="Events")
    assert_that(
        parsed.dead_letter | "Reasons" >> beam.Map(lambda d: (d.reason, d.event)),
        equal_to([("invalid_json", "{oops"), ("missing_user_id", {"type": "identify"})]),
        label="DeadLetters",
    )
    run_and_count(p)


SMALL_TOPIC_LIMIT = 20_000


def test_a_dead_letter_too_large_for_the_topic_arrives_truncated_to_its_limit(broker):
    topic = broker.new_topic(partitions=1, max_message_bytes=str(SMALL_TOPIC_LIMIT))
    large = DeadLetter("parse", "invalid_json", "bad", False, "x" * 50_000, "2026-12-01T09:00:00.000Z")

    _write(broker, topic, [large, DEAD[0]])

    records = broker.consume_all(topic, 2)
    by_reason = {json.loads(r.value())["event"][:5]: r for r in records}
    kept = by_reason["xxxxx"]
    assert len(kept.value()) <= SMALL_TOPIC_LIMIT - FRAMING_BYTES
    assert dict(kept.headers())["truncated"] == b"true"
    record = json.loads(kept.value())
    assert record["event"] == "x" * len(record["event"])
    assert record["message"].startswith("bad [event truncated from 50")
    assert by_reason["{oops"].value() == DEAD[0].to_json().encode()


def test_a_dead_letter_the_broker_refuses_fails_the_run_naming_the_topic(broker):
    topic = broker.new_topic(partitions=1, max_message_bytes=str(SMALL_TOPIC_LIMIT))
    large = DeadLetter("parse", "invalid_json", "bad", False, "x" * 50_000, "2026-12-01T09:00:00.000Z")

    # Told a larger limit than the topic's, the writer sends what the broker refuses.
    with pytest.raises(
        Exception, match=f"1 dead letters were not delivered to Kafka topic '{topic}'.*too large"
    ):
        _write(broker, topic, [large], max_message_bytes=100_000)
