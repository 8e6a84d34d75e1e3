"""ReadKafka's settings and pure helpers: client settings, secrets by reference, event times (no broker)."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from tests.kafka.conftest import RUNNER
from transforms.read_kafka import ReadKafka, event_seconds, parse_config, resolve_config, validate_config


@pytest.mark.parametrize(
    "pairs, config",
    [
        ([], {}),
        (["security.protocol=SASL_SSL"], {"security.protocol": "SASL_SSL"}),
        (["sasl.mechanism=PLAIN", "client.id=a=b"], {"sasl.mechanism": "PLAIN", "client.id": "a=b"}),
        ([" fetch.min.bytes =1"], {"fetch.min.bytes": "1"}),
    ],
)
def test_parse_config(pairs, config):
    assert parse_config(pairs) == config


@pytest.mark.parametrize("pair", ["security.protocol", "=SASL_SSL", ""])
def test_parse_config_refuses_what_is_not_key_value(pair):
    with pytest.raises(ValueError, match="is not KEY=VALUE"):
        parse_config([pair])


@pytest.mark.parametrize(
    "config, message",
    [
        ({"group.id": "other"}, "set by ReadKafka"),
        ({"bootstrap.servers": "b:9092"}, "set by ReadKafka"),
        ({"enable.auto.commit": "true"}, "set by ReadKafka"),
        ({"sasl.password": "hunter2"}, "holds a secret"),
        ({"ssl.key.password": "hunter2"}, "holds a secret"),
        ({"sasl.oauthbearer.client.secret": "s"}, "holds a secret"),
        ({"ssl.key.pem": "-----BEGIN PRIVATE KEY-----"}, "holds a secret"),
        ({"fetch.min.bytes": [1]}, "must be text"),
    ],
)
def test_validate_config_refuses(config, message):
    with pytest.raises(ValueError, match=message) as raised:
        validate_config(config)
    assert "hunter2" not in str(raised.value)


def test_validate_config_takes_secrets_by_reference():
    validate_config(
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "beamforce",
            "sasl.password": "env:KAFKA_PASSWORD",
            "ssl.key.password": "file:/run/secrets/key-password",
            "fetch.min.bytes": 1,
        }
    )


def test_resolve_config_reads_references_on_the_worker(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    config = {"sasl.password": "env:KAFKA_PASSWORD", "ssl.key.password": f"file:{secret}", "client.id": "x"}

    resolved = resolve_config(config, environ={"KAFKA_PASSWORD": "from-the-env"})

    assert resolved == {"sasl.password": "from-the-env", "ssl.key.password": "from-a-file", "client.id": "x"}


@pytest.mark.parametrize(
    "config, message",
    [
        ({"sasl.password": "env:KAFKA_PASSWORD"}, "'KAFKA_PASSWORD', which is not set"),
        ({"sasl.password": "file:/no/such/file"}, "'/no/such/file', which cannot be read"),
    ],
)
def test_resolve_config_says_which_reference_is_missing(config, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(config, environ={})


@pytest.mark.parametrize(
    "line, seconds",
    [
        ('{"timestamp": "2024-05-01T12:00:00.500Z"}', 1714564800.5),
        ('{"timestamp": "2024-05-01t12:00:00z"}', 1714564800.0),
        ('{"timestamp": "2024-05-01T14:00:00+02:00"}', 1714564800.0),
        ('{"timestamp": "2024-05-01T12:00:00"}', 1714564800.0),  # no offset: UTC
        ('{"timestamp": "yesterday"}', None),
        ('{"timestamp": "yesterday", "originalTimestamp": "2024-05-01T12:00:01Z"}', 1714564801.0),
        ('{"sentAt": "2024-05-01T12:00:02Z", "receivedAt": "2024-05-01T12:00:03Z"}', 1714564803.0),
        ('{"timestamp": "0001-01-01T00:00:00+01:00"}', None),  # before year 1 in UTC
        ('{"timestamp": 1714564800}', None),
        ('{"properties": {"timestamp": "2024-05-01T12:00:00Z"}}', None),  # only the event's own member
        ('["timestamp"]', None),
        ("not json", None),
        (b"\xff\xfe", None),
    ],
)
def test_event_seconds(line, seconds):
    assert event_seconds(line) == seconds


@pytest.mark.parametrize(
    "args, message",
    [
        (("", ["t"], "g"), "bootstrap servers"),
        (("b:9092", [], "g"), "at least one topic"),
        (("b:9092", ["bad topic"], "g"), "not a Kafka topic name"),
        (("b:9092", ["t", "t"], "g"), "name a topic twice"),
        (("b:9092", ["t"], ""), "consumer group id"),
        (("b:9092", ["t"], "g", {"group.id": "h"}), "set by ReadKafka"),
        (("b:9092", ["t"], "g", {}, False, 0), "max_idle_seconds"),
        (("b:9092", ["t"], "g", {}, False, float("inf")), "max_idle_seconds"),
    ],
)
def test_read_kafka_refuses_bad_settings_at_construction(args, message):
    with pytest.raises(ValueError, match=message):
        ReadKafka(*args)


def test_secrets_are_not_read_when_the_graph_is_built():
    ReadKafka("b:9092", "t", "g", {"sasl.password": "env:BEAMFORCE_TEST_UNSET_VARIABLE"})


@pytest.mark.parametrize("bounded", [True, False])
def test_output_is_bounded_only_in_bounded_mode(bounded):
    p = TestPipeline(runner=RUNNER)
    read = p | "ReadKafka" >> ReadKafka("b:9092", ["t"], "g", {}, bounded=bounded)
    assert read.output.is_bounded is bounded
    assert isinstance(read.dead_letter, beam.PCollection)
