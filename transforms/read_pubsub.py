"""ReadPubSub: Segment events from a Pub/Sub subscription or topic, as EventLines stamped with event time."""

import datetime
import logging

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub, parse_subscription, parse_topic
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MAX_TIMESTAMP, MIN_TIMESTAMP, Timestamp

from schemas.dead_letter import DeadLetter
from schemas.events import EventLine
from transforms import metrics, parsing
from transforms.read_events import _line_of as line_of
from transforms.result import Result

_log = logging.getLogger(__name__)

SOURCE_SCHEME = "pubsub://"
# The attribute publishers set to the event's messageId; runners that can deduplicate by it do.
ID_LABEL = "messageId"


def attribute_time(value: str) -> Timestamp | None:
    """A timestamp attribute's value (epoch milliseconds or RFC 3339, as Pub/Sub's sources read it), or
    None when it is neither."""
    try:
        stamp = Timestamp(micros=int(value) * 1000)
    except (TypeError, ValueError, OverflowError):
        try:
            stamp = Timestamp.from_rfc3339(value)
        except (TypeError, ValueError, OverflowError):
            return None
    return stamp if MIN_TIMESTAMP <= stamp <= MAX_TIMESTAMP else None


def _runner_dedups_by_id_label(runner: object) -> bool:
    """Only Dataflow's Pub/Sub source deduplicates by an attribute; the DirectRunner refuses the setting
    (NotImplementedError). DeduplicateByMessageId does the same job on every runner anyway."""
    return "Dataflow" in type(runner).__name__


def publish_micros(message: PubsubMessage) -> int | None:
    """The message's publish time in microseconds since the epoch; None when the runner did not give it."""
    published = message.publish_time
    if isinstance(published, datetime.datetime):
        return Timestamp.from_utc_datetime(published.astimezone(datetime.UTC)).micros
    if hasattr(published, "seconds") and hasattr(published, "nanos"):  # a protobuf Timestamp
        return (published.seconds * 1_000_000 + published.nanos // 1000) or None
    return None


def event_time(line: str | bytes) -> Timestamp | None:
    """When the event happened (transforms.parsing.line_event_micros); None when the line has no time."""
    micros = parsing.line_event_micros(line)
    return None if micros is None else Timestamp(micros=micros)


class _ToEventLine(beam.DoFn):
    """One message, one event: its data as one line (a pretty-printed event keeps its newlines).

    Messages without data (blank or a lone byte-order mark) are counted as blank lines, as in files.
    With `stamp_event_time`, an event is re-stamped with its own time when that is earlier than the time
    the source gave it (its publish time): never later, because the source's watermark follows publish
    time and a future-dated event (a client's clock running ahead) would hold later stages' windows open.
    An earlier stamp is behind the watermark, which the pipeline's globally windowed stages accept.

    With `timestamp_attribute` (runners other than Dataflow, whose source reads the attribute itself), an
    event is stamped with that attribute's time where it has one; a value that is no time is logged and
    the event keeps the time the source gave it: Beam's local source would fail the whole run on it.
    """

    def __init__(self, source: str, stamp_event_time: bool, timestamp_attribute: str | None = None) -> None:
        self._source = source
        self._stamp_event_time = stamp_event_time
        self._timestamp_attribute = timestamp_attribute
        self._told = False
        self.events_read = Metrics.counter(metrics.NAMESPACE, metrics.EVENTS_READ)
        self.blank_lines = Metrics.counter(metrics.NAMESPACE, metrics.BLANK_LINES)

    def process(self, message: PubsubMessage, timestamp=beam.DoFn.TimestampParam):
        line = line_of(message.data or b"")
        if line is None:
            self.blank_lines.inc()
            return
        self.events_read.inc()
        out = EventLine(self._source, publish_micros(message) or timestamp.micros, line)
        value = (
            (message.attributes or {}).get(self._timestamp_attribute) if self._timestamp_attribute else None
        )
        if value is not None:
            stamp = attribute_time(value)
            if stamp is not None:
                yield TimestampedValue(out, stamp)
                return
            if not self._told:
                self._told = True
                _log.warning(
                    "Pub/Sub attribute %s=%r is no time (RFC 3339 or epoch milliseconds): such events are "
                    "stamped with their publish time",
                    self._timestamp_attribute,
                    value[:40],
                )
        if self._stamp_event_time:
            happened = event_time(line)
            if happened is not None and happened < timestamp:
                yield TimestampedValue(out, happened)
                return
        yield out


class ReadPubSub(beam.PTransform):
    """Reads Segment events, one per message, from a subscription `projects/P/subscriptions/S` or a topic
    `projects/P/topics/T` (through a subscription of its own that the runner creates, which sees only
    messages published after it exists). Unbounded: run with --streaming.

    Returns Result(output=EventLines, dead_letter=empty): source `pubsub://<subscription or topic>`, seq
    the publish time in microseconds, the line as text, or bytes when not UTF-8 (the parser says so).

    `id_label`: the attribute holding a unique id per event (publishers set it to the messageId), which
    the runner deduplicates redeliveries by where it can (Dataflow); elsewhere it is not passed on.
    `timestamp_attribute`: an attribute every publisher sets to the event time (RFC 3339 or epoch
    milliseconds), by which elements are stamped: on Dataflow its source does it (and tracks its watermark
    by it); elsewhere _ToEventLine does, since Beam's local source fails the whole run on a value that is
    no time. Without it, events are stamped with their own time when earlier than their publish time.
    """

    def __init__(
        self,
        subscription: str | None = None,
        topic: str | None = None,
        id_label: str | None = ID_LABEL,
        timestamp_attribute: str | None = None,
    ) -> None:
        super().__init__()
        if (subscription is None) == (topic is None):
            raise ValueError(
                "ReadPubSub reads a subscription or a topic: give one of them, e.g. "
                "subscription='projects/my-project/subscriptions/segment-events'"
            )
        try:
            if subscription is not None:
                parse_subscription(subscription)
            else:
                parse_topic(topic)
        except ValueError as e:
            raise ValueError(f"ReadPubSub: {e}") from None
        if id_label == "" or timestamp_attribute == "":
            raise ValueError("ReadPubSub: id_label and timestamp_attribute are attribute names or None")
        try:
            from google.cloud import pubsub  # noqa: F401  (only checked for)
        except ImportError:
            raise ImportError("ReadPubSub needs the Pub/Sub client: pip install 'apache-beam[gcp]'") from None
        self._subscription = subscription
        self._topic = topic
        self._id_label = id_label
        self._timestamp_attribute = timestamp_attribute

    @property
    def source(self) -> str:
        return SOURCE_SCHEME + (self._subscription or self._topic or "")

    def expand(self, pbegin: beam.pvalue.PBegin):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        on_dataflow = _runner_dedups_by_id_label(pbegin.pipeline.runner)
        id_label = self._id_label if on_dataflow else None
        attribute = self._timestamp_attribute
        lines = (
            pbegin
            | "ReadFromPubSub"
            >> ReadFromPubSub(
                topic=self._topic,
                subscription=self._subscription,
                id_label=id_label,
                with_attributes=True,
                timestamp_attribute=attribute if on_dataflow else None,
            )
            | "ToEventLines"
            >> beam.ParDo(
                _ToEventLine(self.source, attribute is None, None if on_dataflow else attribute)
            ).with_output_types(EventLine)
        )
        none = lines | "NoDeadLetters" >> beam.FlatMap(lambda _: ()).with_output_types(DeadLetter)
        return Result(lines, none)
