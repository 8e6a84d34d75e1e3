"""ReadKafkaXlang (--kafka_reader xlang): built, never run (it needs a Java expansion service), and its
records-to-EventLines step, run on its own."""

import apache_beam as beam
import pytest
from apache_beam.io.kafka import ReadFromKafka
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.display import DisplayData

from schemas.events import EventLine
from tests.kafka.conftest import pipeline, run_and_count
from transforms.read_kafka import ReadKafkaXlang, _RecordsToLines, record_to_line, xlang_consumer_config

JAAS = (
    'org.apache.kafka.common.security.scram.ScramLoginModule required username="beamforce" '
    'password="${file:/run/secrets/kafka.properties:password}";'
)


def test_it_is_built_without_java_and_says_what_it_needs():
    read = ReadKafkaXlang("b:9092", ["events", "more-events"], "beamforce", {"security.protocol": "SASL_SSL"})

    kafka_read = read.kafka_read()  # Beam's transform; expanding it is what needs Java

    assert isinstance(kafka_read, ReadFromKafka)
    assert "Java expansion service" in " ".join(ReadKafkaXlang.__doc__.split())
    shown = {item.key: item.value for item in DisplayData.create_from(read).items}
    assert shown["topics"] == "events,more-events" and shown["group_id"] == "beamforce"


def test_the_java_consumer_gets_the_same_group_and_settings_as_text():
    config = xlang_consumer_config(
        "b:9092",
        "beamforce",
        {"security.protocol": "SASL_SSL", "sasl.jaas.config": JAAS, "check.crcs": True, "fetch.min.bytes": 1},
    )

    assert config == {
        "auto.offset.reset": "earliest",
        "security.protocol": "SASL_SSL",
        "sasl.jaas.config": JAAS,
        "check.crcs": "true",
        "fetch.min.bytes": "1",
        "bootstrap.servers": "b:9092",
        "group.id": "beamforce",
        "enable.auto.commit": "false",
    }


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("b:9092", ["t"], "g", {}, True), {}, "--kafka_bounded needs --kafka_reader python"),
        (("b:9092", ["t"], "g", {"sasl.password": "env:KAFKA_PASSWORD"}), {}, "cannot read env: references"),
        (("b:9092", ["t"], "g", {"ssl.key.location": "file:/k.pem"}), {}, "cannot read file: references"),
        (("b:9092", ["t"], "g", {"sasl.password": "hunter2"}), {}, "holds a secret"),
        (("b:9092", ["t"], "g", {"sasl.jaas.config": 'x password="hunter2";'}), {}, "holds a secret"),
        (("b:9092", ["t"], "g", {"enable.auto.commit": "true"}), {}, "set by ReadKafkaXlang"),
        (("b:9092", ["bad topic"], "g"), {}, "not a Kafka topic name"),
        (("b:9092", ["t"], ""), {}, "consumer group id"),
    ],
)
def test_bad_settings_are_refused_at_construction(args, kwargs, message):
    with pytest.raises(ValueError, match=message) as raised:
        ReadKafkaXlang(*args, **kwargs)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "record, line",
    [
        (
            beam.Row(topic="events", partition=2, offset=41, timestamp=0, key=None, value=b'{"a": 1}'),
            EventLine("kafka://events/2", 41, '{"a": 1}'),
        ),
        ((b"key", b'{"a": 1}'), EventLine("kafka://events", 0, '{"a": 1}')),
        ((None, b"\xff{}"), EventLine("kafka://events", 0, b"\xff{}")),
        ((None, b"  \n"), None),
        ((None, None), None),
    ],
)
def test_a_record_becomes_an_event_line(record, line):
    assert record_to_line(record, ["events"]) == line


def test_an_event_is_stamped_with_its_own_time_only_when_earlier_than_the_kafka_timestamp():
    kafka_seconds = 1_714_564_800  # 2024-05-01T12:00:00Z
    earlier = b'{"timestamp": "2024-05-01T11:00:00Z"}'
    later = b'{"timestamp": "2024-05-01T13:00:00Z"}'

    p = pipeline()
    stamps = (
        p
        | beam.Create([(None, earlier), (None, later), (None, b"not json"), (None, b"")])
        | "KafkaTime" >> beam.Map(lambda r: beam.window.TimestampedValue(r, kafka_seconds))
        | "ToEventLines" >> beam.ParDo(_RecordsToLines(["events"]))
        | "Stamps" >> beam.Map(lambda line, ts=beam.DoFn.TimestampParam: (line.line, ts.micros // 1_000_000))
    )
    assert_that(
        stamps,
        equal_to(
            [
                (earlier.decode(), kafka_seconds - 3600),
                (later.decode(), kafka_seconds),
                ("not json", kafka_seconds),
            ]
        ),
    )
    assert run_and_count(p) == {"events_read": 3, "blank_lines": 1}
