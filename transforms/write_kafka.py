"""WriteDeadLettersToKafka: count dead letters by reason and produce each to a Kafka topic, as JSON."""

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import apache_beam as beam

from schemas.dead_letter import DeadLetter
from transforms.dead_letters import CountByReason
from transforms.read_kafka import check_topic, resolve_config, validate_config
from transforms.write_pubsub import MAX_ATTRIBUTE_CHARS, truncated_line

_LOG = logging.getLogger(__name__)

# librdkafka's default message.max.bytes: a producer refuses larger records unless told otherwise.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
# The smallest limit that leaves a truncated dead letter room for more than its framing.
MIN_MAX_MESSAGE_BYTES = 8_192
# Room in a message for what is not the value: record batch and record framing, the key and the headers
# (each header value at most MAX_ATTRIBUTE_CHARS).
FRAMING_BYTES = 2_048
# How long finish_bundle waits for the broker to acknowledge the bundle's dead letters.
FLUSH_TIMEOUT_SECONDS = 60.0
ADMIN_TIMEOUT_SECONDS = 10.0

# Settings this transform owns: where to write, and that a write counts only once every replica has it.
OWNED_SETTINGS = {
    "bootstrap.servers": "bootstrap_servers",
    "acks": "none: every dead letter waits for all in-sync replicas",
}


class KafkaRecord(NamedTuple):
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def to_record(dead_letter: DeadLetter, max_value_bytes: int, key_by_reason: bool = False) -> KafkaRecord:
    """The dead letter's JSON line as the value (valid --input for a replay, as the files are), keyed by its
    reason or by nothing, with `stage`, `reason` and `retryable` headers for consumers to filter on.

    A dead letter too large for a message keeps the first part of its event, as text, and says so in its
    message and a `truncated` header (as WriteDeadLettersToPubSub does): replayed, it comes back as a dead
    letter, never as a wrong event.
    """
    value = dead_letter.to_json().encode("utf-8")
    reason = dead_letter.reason[:MAX_ATTRIBUTE_CHARS].encode("utf-8")
    headers = [
        ("stage", dead_letter.stage[:MAX_ATTRIBUTE_CHARS].encode("utf-8")),
        ("reason", reason),
        ("retryable", b"true" if dead_letter.retryable else b"false"),
    ]
    if len(value) > max_value_bytes:
        headers.append(("truncated", b"true"))
        value = truncated_line(dead_letter, len(value), max_value_bytes, "a Kafka message")
    return KafkaRecord(reason if key_by_reason else None, value, headers)


def producer_settings(bootstrap_servers: str, config: Mapping[str, Any], max_message_bytes: int) -> dict:
    """The producer's settings: batches no larger than what the topic takes, acknowledged by all replicas."""
    settings = {**resolve_config(config), "bootstrap.servers": bootstrap_servers, "acks": "all"}
    # The broker's limit applies to a batch of records, not to one: a batch must fit it too.
    settings["batch.size"] = min(
        int(settings.get("batch.size", DEFAULT_MAX_MESSAGE_BYTES)), max_message_bytes
    )
    settings["message.max.bytes"] = max(
        int(settings.get("message.max.bytes", DEFAULT_MAX_MESSAGE_BYTES)), max_message_bytes
    )
    return settings


class _Produce(beam.DoFn):
    """Produces each dead letter; finish_bundle waits until the broker has every one of the bundle's, and
    fails the bundle otherwise, so that the runner retries it: nothing is lost, a retry may duplicate."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        config: Mapping[str, Any],
        key_by_reason: bool,
        max_message_bytes: int | None,
        flush_timeout: float,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._config = dict(config)
        self._key_by_reason = key_by_reason
        self._max_message_bytes = max_message_bytes
        self._flush_timeout = flush_timeout
        self._producer = None
        self._max_value_bytes = 0
        self._failures: list[str] = []

    def setup(self) -> None:
        from confluent_kafka import Producer

        limit = self._max_message_bytes or self._topic_limit()
        self._max_value_bytes = limit - FRAMING_BYTES
        self._producer = Producer(producer_settings(self._bootstrap_servers, self._config, limit))

    def _topic_limit(self) -> int:
        """The topic's max.message.bytes, at most what a producer takes by default; the default when the
        broker does not say (no such topic yet, or no right to describe it)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

        admin = AdminClient({**resolve_config(self._config), "bootstrap.servers": self._bootstrap_servers})
        resource = ConfigResource(ResourceType.TOPIC, self._topic)
        try:
            described = admin.describe_configs([resource])[resource].result(ADMIN_TIMEOUT_SECONDS)
            topic_limit = int(described["max.message.bytes"].value)
        except (KafkaException, KeyError, ValueError, TimeoutError) as e:
            _LOG.warning(
                "Kafka topic %r: its max.message.bytes cannot be read (%s); records are kept under %d bytes",
                self._topic,
                e,
                DEFAULT_MAX_MESSAGE_BYTES,
            )
            return DEFAULT_MAX_MESSAGE_BYTES
        return max(MIN_MAX_MESSAGE_BYTES, min(topic_limit, DEFAULT_MAX_MESSAGE_BYTES))

    def teardown(self) -> None:
        if self._producer is not None:
            # Left only by a failed bundle, which the runner retries: sending them too would duplicate.
            self._producer.purge()
            self._producer.flush(0)
            self._producer = None

    def start_bundle(self) -> None:
        self._failures = []

    def process(self, dead_letter: DeadLetter):
        record = to_record(dead_letter, self._max_value_bytes, self._key_by_reason)
        while True:
            try:
                self._producer.produce(
                    self._topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:  # the producer's queue is full: wait for room
                self._producer.poll(0.5)
        self._producer.poll(0)

    def _delivered(self, error, _message) -> None:
        if error is not None:
            self._failures.append(error.str())

    def finish_bundle(self) -> None:
        left = self._producer.flush(self._flush_timeout)
        failures, self._failures = self._failures, []
        if left or failures:
            problem = f"{failures[0]}" if failures else f"no answer within {self._flush_timeout:.0f}s"
            raise RuntimeError(
                f"WriteDeadLettersToKafka: {len(failures) + left} dead letters were not delivered to Kafka "
                f"topic {self._topic!r} ({problem}); the bundle fails so that the runner writes them again"
            )


class WriteDeadLettersToKafka(beam.PTransform):
    """Counts `dead_letter:<reason>` and `dead_letter_retryable`, and produces every dead letter to the Kafka
    `topic` as one record (see to_record), keyed by its reason when `key_by_reason` (one partition per
    reason), else by nothing. Bounded or unbounded input; each bundle waits for the broker's acknowledgement.

    `config` is passed to librdkafka (SASL, SSL, ...; secret values as env:NAME or file:PATH, read on the
    worker). Records are kept under the topic's max.message.bytes, read from the broker when the writer
    starts, unless `max_message_bytes` is given.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        config: Mapping[str, Any] | None = None,
        *,
        key_by_reason: bool = False,
        max_message_bytes: int | None = None,
        flush_timeout: float = FLUSH_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__()
        if not bootstrap_servers or not bootstrap_servers.strip():
            raise ValueError(
                "WriteDeadLettersToKafka needs bootstrap servers, e.g. --kafka_bootstrap_servers broker:9092"
            )
        check_topic(topic)
        config = dict(config or {})
        validate_config(config, OWNED_SETTINGS, "WriteDeadLettersToKafka")
        if max_message_bytes is not None and not max_message_bytes >= MIN_MAX_MESSAGE_BYTES:
            raise ValueError(
                f"max_message_bytes {max_message_bytes!r} must be at least {MIN_MAX_MESSAGE_BYTES}, or None "
                "to read the topic's max.message.bytes"
            )
        if not flush_timeout > 0:
            raise ValueError(f"flush_timeout {flush_timeout!r} must be seconds above 0")
        self._bootstrap_servers = bootstrap_servers.strip()
        self._topic = topic
        self._config = config
        self._key_by_reason = key_by_reason
        self._max_message_bytes = max_message_bytes
        self._flush_timeout = flush_timeout

    def display_data(self) -> dict:
        # Setting names only: a value could be a secret under a name no rule knows.
        return {
            "bootstrap_servers": self._bootstrap_servers,
            "topic": self._topic,
            "key": "reason" if self._key_by_reason else "none",
            "config_keys": ",".join(sorted(self._config)),
        }

    def expand(self, dead_letters: beam.PCollection) -> beam.PCollection:
        return (
            dead_letters
            | "CountByReason" >> CountByReason()
            | "Produce"
            >> beam.ParDo(
                _Produce(
                    self._bootstrap_servers,
                    self._topic,
                    self._config,
                    self._key_by_reason,
                    self._max_message_bytes,
                    self._flush_timeout,
                )
            )
        )
