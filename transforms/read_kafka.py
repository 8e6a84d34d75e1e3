"""ReadKafka: Kafka topics into EventLines, one splittable restriction per partition, at least once."""

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import Duration, Timestamp

from schemas.dead_letter import DeadLetter
from schemas.events import EventLine
from transforms import metrics, parsing
from transforms.read_events import _line_of  # one rule for blank lines, whatever the source
from transforms.result import Result
from transforms.tally import TALLY, Counts, collect

_LOG = logging.getLogger(__name__)

# The stop of an unbounded partition's range, as KafkaIO (Java) uses Long.MAX_VALUE.
UNBOUNDED_END = 2**63 - 1

# One read of the consumer's queue; it waits this long when fewer messages are there.
POLL_SECONDS = 0.1
POLL_MESSAGES = 500
# A read of one partition checkpoints after this many records or seconds, so that its bundle ends
# and its offsets are committed; an idle partition checkpoints after IDLE_CHECKPOINT_SECONDS.
CHECKPOINT_RECORDS = 10_000
CHECKPOINT_SECONDS = 5.0
IDLE_CHECKPOINT_SECONDS = 1.0
# The output of a read that ends: ((topic, partition), the next offset to read), committed at the end.
HANDLED = "handled"
# Metadata, committed offsets and end offsets at the start of a read.
METADATA_TIMEOUT_SECONDS = 30.0

# Settings this transform owns: the consumer is ours to configure, and offsets are ours to commit.
OWNED_SETTINGS = {
    "bootstrap.servers": "bootstrap_servers",
    "group.id": "group_id",
    "enable.auto.commit": "none: offsets are committed after each bundle",
    "enable.auto.offset.store": "none: offsets are committed after each bundle",
    "enable.partition.eof": "none: the reader needs it",
}
# A setting whose value is a secret must name where to read it (env:NAME or file:PATH), so that no
# secret sits in a flag, in the pickled graph or in its display data. (Java clients, as the xlang reader's,
# put the SASL password in sasl.jaas.config.)
_SECRET_SETTING = re.compile(r"password|secret|jaas|^ssl\.key\.pem$|^sasl\.oauthbearer\.config$")
_REFERENCE = re.compile(r"^(env|file):(.+)$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class KafkaPartition(NamedTuple):
    """One partition to read: offsets [start, stop), stop None when unbounded."""

    topic: str
    partition: int
    start: int
    stop: int | None


def parse_config(pairs: Iterable[str]) -> dict[str, str]:
    """`key=value` strings (--kafka_config, repeated) as a dict; a ValueError names the bad one."""
    config: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(
                f"--kafka_config {pair!r} is not KEY=VALUE: give one librdkafka setting, e.g. "
                "--kafka_config security.protocol=SASL_SSL"
            )
        config[key] = value
    return config


def parse_topics(values: Iterable[str]) -> list[str]:
    """--kafka_topic values, each one topic or several separated by commas, as one list in order."""
    return [topic.strip() for value in values for topic in value.split(",") if topic.strip()]


def check_topic(topic: Any) -> None:
    """A ValueError unless `topic` is a name Kafka accepts."""
    if not isinstance(topic, str) or not _TOPIC.match(topic) or topic in (".", ".."):
        raise ValueError(
            f"{topic!r} is not a Kafka topic name: give letters, digits, '.', '_' or '-' (at most 249)"
        )


def check_source(bootstrap_servers: str, topics: Sequence[str] | str, group_id: str) -> list[str]:
    """The topics as a list, once the servers, topics and group id are checked (ValueError otherwise)."""
    if not bootstrap_servers or not bootstrap_servers.strip():
        raise ValueError("Reading Kafka needs bootstrap servers, e.g. --kafka_bootstrap_servers broker:9092")
    topics = [topics] if isinstance(topics, str) else list(topics)
    if not topics:
        raise ValueError("Reading Kafka needs at least one topic, e.g. --kafka_topic segment-events")
    for topic in topics:
        check_topic(topic)
    if len(set(topics)) != len(topics):
        raise ValueError(f"Kafka topics {topics} name a topic twice: give each once")
    if not group_id or not group_id.strip():
        raise ValueError("Reading Kafka needs a consumer group id, e.g. --kafka_group_id beamforce")
    return topics


def validate_config(
    config: Mapping[str, Any], owned: Mapping[str, str] = OWNED_SETTINGS, owner: str = "ReadKafka"
) -> None:
    """Refuses settings `owner` sets itself (`owned`: setting -> what to use instead) and secrets given
    in clear (ValueError says what to change)."""
    for key, value in config.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"Kafka setting {key!r} is not a librdkafka setting name")
        if key in owned:
            raise ValueError(
                f"Kafka setting {key!r} cannot be given in the client settings: it is set by {owner} "
                f"(use: {owned[key]})"
            )
        if not isinstance(value, str | int | float | bool):
            raise ValueError(f"Kafka setting {key!r} must be text, a number or a boolean")
        if _SECRET_SETTING.search(key) and not (isinstance(value, str) and _REFERENCE.match(value)):
            raise ValueError(
                f"Kafka setting {key!r} holds a secret: give where to read it, {key}=env:NAME (an "
                f"environment variable of the workers) or {key}=file:PATH, never the value itself"
            )


def resolve_config(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The settings with every env:NAME and file:PATH value read, on the worker that uses them."""
    resolved: dict[str, Any] = {}
    for key, value in config.items():
        reference = _REFERENCE.match(value) if isinstance(value, str) else None
        if reference is None:
            resolved[key] = value
        elif reference.group(1) == "env":
            name = reference.group(2)
            if name not in environ:
                raise ValueError(
                    f"Kafka setting {key!r} names environment variable {name!r}, which is not set"
                )
            resolved[key] = environ[name]
        else:
            path = reference.group(2)
            try:
                with open(path, encoding="utf-8") as f:
                    resolved[key] = f.read().strip()
            except OSError as e:
                raise ValueError(
                    f"Kafka setting {key!r} names file {path!r}, which cannot be read: {e.strerror}"
                ) from None
    return resolved


def event_seconds(line: str | bytes) -> float | None:
    """When the event happened, in epoch seconds (transforms.parsing.line_event_micros)."""
    micros = parsing.line_event_micros(line)
    return None if micros is None else micros / 1e6


def source_of(topic: str, partition: int) -> str:
    return f"kafka://{topic}/{partition}"


def _consumer_settings(bootstrap_servers: str, group_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **resolve_config(config),
        "bootstrap.servers": bootstrap_servers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        # Only used when a start offset is gone (retention): then the oldest record left.
        "auto.offset.reset": "earliest",
    }


def _new_consumer(settings: dict[str, Any]):
    from confluent_kafka import Consumer

    return Consumer(settings)


class _WithConsumer(beam.DoFn):
    """A DoFn with a consumer of its own from setup() to teardown(), built from `_settings`."""

    _settings: tuple[str, str, dict[str, Any]]

    def setup(self) -> None:
        self._consumer = _new_consumer(_consumer_settings(*self._settings))

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class _ListPartitions(_WithConsumer):
    """Every partition of the topics, from the group's committed offset (else the earliest one) to the
    end offset present now (bounded) or without end."""

    def __init__(self, bootstrap_servers: str, topics: Sequence[str], group_id: str, config, bounded: bool):
        self._settings = (bootstrap_servers, group_id, dict(config))
        self._topics = tuple(topics)
        self._bounded = bounded
        self._consumer = None

    def process(self, _unused) -> Iterable[KafkaPartition]:
        from confluent_kafka import OFFSET_INVALID, TopicPartition

        consumer = self._consumer
        for topic in self._topics:
            metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_SECONDS).topics.get(topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                reason = metadata.error.str() if metadata is not None and metadata.error else "no partitions"
                raise ValueError(f"Kafka topic {topic!r} cannot be read ({reason}): check --kafka_topic")
            partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
            committed = consumer.committed(partitions, timeout=METADATA_TIMEOUT_SECONDS)
            for tp in committed:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, tp.partition), timeout=METADATA_TIMEOUT_SECONDS, cached=False
                )
                start = low if tp.offset == OFFSET_INVALID or tp.offset < 0 else tp.offset
                if start < low:
                    _LOG.warning(
                        "Kafka %s: the group's offset %d is older than the oldest record kept (%d): records "
                        "in between were removed by retention before they were read",
                        source_of(topic, tp.partition),
                        start,
                        low,
                    )
                    start = low
                if start > high:
                    _LOG.warning(
                        "Kafka %s: the group's offset %d is past the end (%d), the topic was recreated? "
                        "Reading from the end",
                        source_of(topic, tp.partition),
                        start,
                        high,
                    )
                    start = high
                yield KafkaPartition(topic, tp.partition, start, high if self._bounded else None)


class _PartitionTracker(OffsetRestrictionTracker):
    """Splits only to checkpoint (at the last offset claimed), never in the middle of what is left:
    a partition is then read in order by one reader at a time, so that a commit of "handled up to N"
    never passes offsets another reader has not handled yet."""

    def try_split(self, fraction_of_remainder):
        if fraction_of_remainder != 0:
            return None
        return super().try_split(fraction_of_remainder)

    def is_bounded(self) -> bool:
        return self._range.stop != UNBOUNDED_END


class _PartitionRanges(RestrictionProvider):
    def initial_restriction(self, element: KafkaPartition) -> OffsetRange:
        return OffsetRange(element.start, UNBOUNDED_END if element.stop is None else element.stop)

    def create_tracker(self, restriction: OffsetRange) -> _PartitionTracker:
        return _PartitionTracker(restriction)

    def restriction_size(self, element: KafkaPartition, restriction: OffsetRange) -> int:
        # Unknown backlog for an unbounded range: a nominal size rather than 2**63.
        return restriction.size() if restriction.stop != UNBOUNDED_END else 1

    def truncate(self, element: KafkaPartition, restriction: OffsetRange):
        # On drain an unbounded partition stops; what it did not commit is read by the next job.
        return restriction if restriction.stop != UNBOUNDED_END else None


_RANGES = beam.DoFn.RestrictionParam(_PartitionRanges())
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


def _partition_process(unbounded: bool):
    """The process method of a partition reader. Beam marks a method unbounded by giving it an attribute,
    whatever its value: the two readers need two functions, not one shared."""

    def process(
        self,
        element: KafkaPartition,
        # Before the restriction and watermark parameters: Beam passes this one by position.
        finalizer=beam.DoFn.BundleFinalizerParam,
        tracker=_RANGES,
        watermark=_WATERMARK,
    ):
        return self._read(element, tracker, watermark, finalizer)

    return beam.DoFn.unbounded_per_element()(process) if unbounded else process


class _ReadPartition(_WithConsumer):
    """The records of one partition as EventLines stamped with their event time; with `commit`, the
    offsets a bundle handled are committed for the group once the runner has finalized that bundle.

    Each call reads until CHECKPOINT_RECORDS or CHECKPOINT_SECONDS, then checkpoints: the bundle ends,
    its outputs are handled, its offsets committed, and the rest of the partition is read in the next.
    With `max_idle_seconds`, a partition with no new record for that long ends its read (tests, local runs).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        config: Mapping[str, Any],
        max_idle_seconds: float | None,
        checkpoint_records: int,
        checkpoint_seconds: float,
        clock: Callable[[], float],
        commit: bool = True,
    ) -> None:
        self._settings = (bootstrap_servers, group_id, dict(config))
        self._commits = commit
        self._max_idle = max_idle_seconds
        self._checkpoint_records = checkpoint_records
        self._checkpoint_seconds = checkpoint_seconds
        self._clock = clock
        self._consumer = None
        self._committed: dict[tuple[str, int], int] = {}
        self.counts = Counts()

    process = _partition_process(unbounded=False)

    def finish_bundle(self):
        yield from self.counts.emit()

    def _read(self, element: KafkaPartition, tracker, watermark, finalizer):
        last = _LastHandled()
        yield from self._records(element, tracker, watermark, finalizer, last)
        if not self._commits and last.offset is not None:
            # Reached only when the read ended well: the next offset to read, for commit_when_done.
            partition = (element.topic, element.partition)
            yield beam.pvalue.TaggedOutput(HANDLED, (partition, last.offset + 1))

    def _records(self, element: KafkaPartition, tracker, watermark, finalizer, last: "_LastHandled"):
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        topic, partition = element.topic, element.partition
        source = source_of(topic, partition)
        consumer = self._consumer
        expected = tracker.current_restriction().start
        consumer.assign([TopicPartition(topic, partition, expected)])
        started = last_record = self._clock()
        claimed = events = blanks = 0
        handled: int | None = None
        try:
            while True:
                stop = tracker.current_restriction().stop
                now = self._clock()
                if expected >= stop:
                    tracker.try_claim(stop)  # done, even when the last offsets were gaps
                    return
                if claimed >= self._checkpoint_records or (
                    claimed and now - started >= self._checkpoint_seconds
                ):
                    tracker.defer_remainder()
                    return
                if self._max_idle is not None:
                    if now - last_record >= self._max_idle:
                        tracker.try_claim(stop)  # ends this partition's read: nothing new for a while
                        return
                elif not claimed and now - started >= IDLE_CHECKPOINT_SECONDS:
                    tracker.defer_remainder(Duration(seconds=IDLE_CHECKPOINT_SECONDS))
                    return
                wanted = min(POLL_MESSAGES, self._checkpoint_records - claimed, stop - expected)
                got_record = False
                for message in consumer.consume(num_messages=wanted, timeout=POLL_SECONDS):
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            if error.fatal() or not error.retriable():
                                raise KafkaException(error)
                            _LOG.warning("Kafka %s: %s (retrying)", source, error.str())
                            continue
                        if message.partition() != partition or message.topic() != topic:
                            continue
                        # Caught up: every record before the end offset has been delivered.
                        if message.offset() >= stop:
                            tracker.try_claim(stop)
                            return
                        _advance(watermark, Timestamp.of(self._clock()))
                        continue
                    offset = message.offset()
                    if message.topic() != topic or message.partition() != partition or offset < expected:
                        continue  # left in the queue by an earlier assignment
                    if not tracker.try_claim(offset):
                        return
                    claimed += 1
                    handled = offset
                    expected = offset + 1
                    got_record = True
                    line = _line_of(message.value() or b"")
                    if line is None:
                        blanks += 1
                        continue
                    events += 1
                    stamp = Timestamp.of(self._stamp(line, message.timestamp()))
                    _advance(watermark, min(stamp, Timestamp.of(self._clock())))
                    yield beam.window.TimestampedValue(EventLine(source, offset, line), stamp)
                if got_record:
                    last_record = self._clock()
        finally:
            # Counted once per call: a counter update per record costs more than the record.
            self.counts.inc(metrics.EVENTS_READ, events)
            self.counts.inc(metrics.BLANK_LINES, blanks)
            last.offset = handled
            if handled is not None and self._commits:
                finalizer.register(lambda offset=handled + 1: self._commit(topic, partition, offset))

    def _stamp(self, line: str | bytes, kafka_timestamp: tuple[int, int]) -> float:
        """The event's own time, else the record's Kafka timestamp, else now."""
        seconds = event_seconds(line)
        if seconds is not None:
            return seconds
        kind, millis = kafka_timestamp
        if kind != 0 and millis >= 0:  # 0: TIMESTAMP_NOT_AVAILABLE
            return millis / 1000.0
        return self._clock()

    def _commit(self, topic: str, partition: int, offset: int) -> None:
        """Commits `offset` (the next record to read) for the group; a failure only means that a later job
        reads those records again, so it is logged, not raised."""
        from confluent_kafka import KafkaException, TopicPartition

        key = (topic, partition)
        if self._committed.get(key, -1) >= offset:
            return  # a bundle finalized late must not move the group back
        try:
            self._consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
        except KafkaException as e:
            _LOG.warning("Kafka %s: committing offset %d failed: %s", source_of(topic, partition), offset, e)
            return
        self._committed[key] = offset


class _ReadUnboundedPartition(_ReadPartition):
    process = _partition_process(unbounded=True)


def _advance(watermark, stamp: Timestamp) -> None:
    current = watermark.current_watermark()
    if current is None or stamp > current:
        watermark.set_watermark(stamp)


class _LastHandled:
    """The last offset a read of a partition claimed, once the read has ended (None: it claimed none)."""

    offset: int | None = None


class _CommitAtEnd(_WithConsumer):
    """Commits, for the group, the next offset to read of each partition a read that ends has read:
    applied with a side input complete only once the run has handled every event (commit_when_done)."""

    def __init__(self, bootstrap_servers: str, group_id: str, config: Mapping[str, Any]) -> None:
        self._settings = (bootstrap_servers, group_id, dict(config))
        self._consumer = None

    def process(self, element: tuple[tuple[str, int], int], done: int):
        from confluent_kafka import TopicPartition

        (topic, partition), offset = element
        self._consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
        _LOG.info(
            "Kafka %s: offset %d committed for the group, every event before it handled",
            source_of(topic, partition),
            offset,
        )


class ReadKafka(beam.PTransform):
    """Reads Kafka topics with the consumer group `group_id`, from its committed offsets (else the
    earliest), each record once at least.

    `bounded` reads to the end offsets present at the start (a backfill, a catch-up); with
    `max_idle_seconds`, a partition with no new record for that long stops. A read that ends so commits its
    offsets only once the run has handled every event: the graph calls commit_when_done with its last
    stages. An interrupted or failed run commits nothing, and the next reads the same events again (what
    was written is not duplicated). Otherwise the read never ends, and offsets are committed after the
    bundle that read them, once the runner has finalized it (Dataflow and Flink keep its outputs first).
    `config` is passed to librdkafka (SASL, SSL, ...); secret values are given as env:NAME or file:PATH,
    read by each worker when it starts, so that they are in neither the job's graph nor its display data.

    Each event is stamped with its own time (the parser's timestamp keys), else the record's Kafka
    timestamp; a partition's watermark follows those stamps, never ahead of the clock, and the clock once
    the partition is caught up. An event older than one read before it is behind the watermark, which
    the pipeline's globally windowed stages accept.

    Returns Result(output=EventLines (source kafka://topic/partition, seq the offset, the value as text, or
    bytes when not UTF-8), dead_letter=empty: a record the reader cannot deliver fails the read).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str] | str,
        group_id: str,
        config: Mapping[str, Any] | None = None,
        bounded: bool = False,
        max_idle_seconds: float | None = None,
        *,
        checkpoint_records: int = CHECKPOINT_RECORDS,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        topics = check_source(bootstrap_servers, topics, group_id)
        config = dict(config or {})
        validate_config(config)
        if max_idle_seconds is not None and not (0 < max_idle_seconds < float("inf")):
            raise ValueError(
                f"max_idle_seconds {max_idle_seconds!r} must be seconds above 0, or None for no limit"
            )
        if checkpoint_records < 1 or not checkpoint_seconds > 0:
            raise ValueError("checkpoint_records and checkpoint_seconds must be above 0")
        self._bootstrap_servers = bootstrap_servers.strip()
        self._topics = topics
        self._group_id = group_id
        self._config = config
        self._bounded = bounded
        self._max_idle = max_idle_seconds
        self._checkpoint = (checkpoint_records, checkpoint_seconds)
        self._clock = clock
        self._handled: beam.PCollection | None = None

    def display_data(self) -> dict:
        # Setting names only: a value could be a secret under a name no rule knows.
        return {
            "bootstrap_servers": self._bootstrap_servers,
            "topics": ",".join(self._topics),
            "group_id": self._group_id,
            "bounded": self._bounded,
            "config_keys": ",".join(sorted(self._config)),
        }

    def expand(self, pbegin: beam.pvalue.PBegin):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        # A read that stops when idle ends: its output is bounded, so that a batch graph (which groups
        # over all of it) can follow it on any runner.
        ends = self._bounded or self._max_idle is not None
        reader = _ReadPartition if ends else _ReadUnboundedPartition
        partitions = (
            pbegin
            | "Impulse" >> beam.Impulse()
            | "ListPartitions"
            >> beam.ParDo(
                _ListPartitions(
                    self._bootstrap_servers, self._topics, self._group_id, self._config, self._bounded
                )
            )
            # Without it a distributed runner fuses the listing with the reads: one worker for all.
            | "SpreadPartitions" >> beam.Reshuffle()
        )
        read = partitions | "ReadPartitions" >> beam.ParDo(
            reader(
                self._bootstrap_servers,
                self._group_id,
                self._config,
                self._max_idle,
                *self._checkpoint,
                clock=self._clock,
                commit=not ends,
            )
        ).with_output_types(EventLine).with_outputs(TALLY, HANDLED, main="lines")
        collect(read[TALLY])
        if ends:
            self._handled = read[HANDLED]
            # A tagged output's type is not declared by with_output_types: without it, the offsets' keys
            # would be pickled, which a grouping may not rely on.
            self._handled.element_type = beam.typehints.Tuple[beam.typehints.Tuple[str, int], int]
        lines = read.lines
        dead_letters = pbegin | "NoDeadLetters" >> beam.Create([]).with_output_types(DeadLetter)
        return Result(lines, dead_letters)

    def commit_when_done(self, done: Sequence[beam.PCollection]) -> None:
        """A read that ends: commits each partition's offsets once every PCollection of `done` (the run's
        last stages: its stages' tallies, its dead letters written) is complete. A batch runner computes a
        side input whole before the step that reads it, so the commit follows everything the run did."""
        if self._handled is None:
            return
        finished = (
            tuple(done) | "FlattenDone" >> beam.Flatten() | "CountDone" >> beam.combiners.Count.Globally()
        )
        _ = (
            self._handled
            | "LastOffsets" >> beam.CombinePerKey(max).with_output_types(tuple[tuple[str, int], int])
            | "CommitKafkaOffsets"
            >> beam.ParDo(
                _CommitAtEnd(self._bootstrap_servers, self._group_id, self._config),
                done=beam.pvalue.AsSingleton(finished),
            )
        )


# Kafka's own reference to a value that one of its configuration providers reads (config.providers), e.g.
# ${file:/run/secrets/kafka.properties:password}: what a Java client resolves on the worker.
_PROVIDER_REFERENCE = re.compile(r"\$\{[A-Za-z0-9_.-]+:[^}]+\}")
XLANG_OWNED_SETTINGS = {
    **OWNED_SETTINGS,
    "enable.auto.commit": "none: offsets are committed when a bundle is finalized",
}


def xlang_consumer_config(bootstrap_servers: str, group_id: str, config: Mapping[str, Any]) -> dict[str, str]:
    """The Java consumer's settings (text only) for ReadKafkaXlang; a ValueError says what to change.

    The Java workers get them inside the job's graph and cannot read env:NAME or file:PATH: a secret is
    given as a reference for Kafka's configuration providers instead, which the Java client resolves.
    """
    for key, value in config.items():
        if isinstance(value, str) and _REFERENCE.match(value):
            raise ValueError(
                f"Kafka setting {key!r}: the xlang reader cannot read {value.split(':', 1)[0]}: references "
                "(its settings go to Java workers): use --kafka_reader python, or a Kafka configuration "
                "provider reference such as ${file:/path/secrets.properties:password}"
            )
        if _SECRET_SETTING.search(key) and not (isinstance(value, str) and _PROVIDER_REFERENCE.search(value)):
            raise ValueError(
                f"Kafka setting {key!r} holds a secret: for the xlang reader give a Kafka configuration "
                "provider reference (config.providers, e.g. ${file:/path/secrets.properties:password}), "
                "never the value itself"
            )
    validate_config(
        {k: v for k, v in config.items() if not _SECRET_SETTING.search(k)},
        XLANG_OWNED_SETTINGS,
        "ReadKafkaXlang",
    )

    def text(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return {
        "auto.offset.reset": "earliest",
        **{key: text(value) for key, value in config.items()},
        "bootstrap.servers": bootstrap_servers,
        "group.id": group_id,
        "enable.auto.commit": "false",
    }


def record_to_line(record: Any, topics: Sequence[str]) -> EventLine | None:
    """A record of ReadFromKafka as an EventLine; None when its value is blank.

    A record with metadata (a Row with topic, partition, offset and value) gives source
    kafka://topic/partition and seq its offset, as ReadKafka does; a bare (key, value) pair gives
    kafka://<the topics> and seq 0. The text is kept inline: a stream cannot be read again for a dead letter.
    """
    if hasattr(record, "value"):
        value = record.value
        topic, partition, offset = (getattr(record, name, None) for name in ("topic", "partition", "offset"))
    else:
        _key, value = record
        topic = partition = offset = None
    if topic and isinstance(partition, int):
        source = source_of(topic, partition)
    else:
        source = f"kafka://{topic or ','.join(topics)}"
    line = _line_of(bytes(value or b""))
    if line is None:
        return None
    return EventLine(source, offset if isinstance(offset, int) else 0, line)


class _RecordsToLines(beam.DoFn):
    """ReadFromKafka's records as EventLines, each stamped with its event's own time when that is earlier
    than its Kafka timestamp (the Java reader's watermark follows Kafka timestamps; an earlier stamp is
    behind it, which the pipeline's globally windowed stages accept)."""

    def __init__(self, topics: Sequence[str]) -> None:
        self._topics = tuple(topics)
        self.counts = Counts()

    def finish_bundle(self):
        yield from self.counts.emit()

    def process(self, record, timestamp=beam.DoFn.TimestampParam):
        line = record_to_line(record, self._topics)
        if line is None:
            self.counts.inc(metrics.BLANK_LINES)
            return
        self.counts.inc(metrics.EVENTS_READ)
        seconds = event_seconds(line.line)
        if seconds is not None and Timestamp.of(seconds) < timestamp:
            yield beam.window.TimestampedValue(line, Timestamp.of(seconds))
            return
        yield line


class ReadKafkaXlang(beam.PTransform):
    """Reads Kafka topics through Beam's cross-language ReadFromKafka (Java KafkaIO), for Dataflow and
    Flink (--kafka_reader xlang): the same topics, group and client settings as ReadKafka, offsets committed
    when a bundle is finalized, Kafka timestamps as the watermark.

    It needs a Java expansion service when the pipeline is built: by default Beam downloads its IO
    expansion jar from Maven Central and runs it with a local Java; `expansion_service` (host:port) names
    one already running. This project's test machines have neither, so tests only build this transform and
    never run it; ReadKafka (the default, --kafka_reader python) is the reader tested against a broker.

    Unbounded only (--kafka_bounded needs ReadKafka). Secrets: the Java workers get the settings inside the
    job's graph, so a secret is a Kafka configuration provider reference (config.providers and, e.g.,
    sasl.jaas.config with ${file:/path/secrets.properties:password}), never env:NAME or file:PATH.

    Returns Result(output=EventLines (source kafka://topic/partition, seq the offset, the value as text,
    or bytes when not UTF-8), dead_letter=empty).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str] | str,
        group_id: str,
        config: Mapping[str, Any] | None = None,
        bounded: bool = False,
        *,
        expansion_service: str | None = None,
    ) -> None:
        super().__init__()
        if bounded:
            raise ValueError(
                "--kafka_bounded needs --kafka_reader python: Beam's ReadFromKafka cannot stop at the end "
                "offsets present at the start"
            )
        self._topics = check_source(bootstrap_servers, topics, group_id)
        self._bootstrap_servers = bootstrap_servers.strip()
        self._group_id = group_id
        self._consumer_config = xlang_consumer_config(self._bootstrap_servers, group_id, dict(config or {}))
        self._expansion_service = expansion_service

    def display_data(self) -> dict:
        return {
            "bootstrap_servers": self._bootstrap_servers,
            "topics": ",".join(self._topics),
            "group_id": self._group_id,
            "config_keys": ",".join(sorted(self._consumer_config)),
        }

    def kafka_read(self):
        """Beam's ReadFromKafka as this transform applies it (building it contacts no Java)."""
        from apache_beam.io.kafka import ReadFromKafka

        return ReadFromKafka(
            consumer_config=self._consumer_config,
            topics=self._topics,
            commit_offset_in_finalize=True,
            timestamp_policy=ReadFromKafka.create_time_policy,
            with_metadata=True,
            expansion_service=self._expansion_service,
        )

    def expand(self, pbegin: beam.pvalue.PBegin):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        read = (
            pbegin
            | "ReadFromKafka" >> self.kafka_read()
            | "ToEventLines"
            >> beam.ParDo(_RecordsToLines(self._topics))
            .with_output_types(EventLine)
            .with_outputs(TALLY, main="lines")
        )
        collect(read[TALLY])
        lines = read.lines
        dead_letters = pbegin | "NoDeadLetters" >> beam.Create([]).with_output_types(DeadLetter)
        return Result(lines, dead_letters)
