"""ParseEvents: EventLines into SegmentEvents, bad lines into dead letters."""

import dataclasses
import logging
import time
from collections.abc import Callable

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.dead_letter import DeadLetter
from schemas.events import EventLine, SegmentEvent
from transforms import metrics, parsing
from transforms.result import Result

DEAD_LETTER = "dead_letter"
STAGE = "parse"


_log = logging.getLogger(__name__)


class _ParseLine(beam.DoFn):
    """An event dated after it was received (its receivedAt, or now when it is read) is ordered as of its
    receipt, and counted: dated in the future, its values would outrank every later event of its record."""

    def __init__(self, keep_text: bool, clock: Callable[[], float] = time.time) -> None:
        self._keep_text = keep_text
        self._clock = clock
        self._future = Metrics.counter(metrics.NAMESPACE, metrics.FUTURE_TIMESTAMPS)
        self._warned = False
        self._second = -1
        self._ceiling_text = ""

    def _ceiling(self) -> str:
        """The end of the current second, as events' times are written: formatted once a second (formatting
        it for every event cost about 1% of a backfill's CPU)."""
        second = int(self._clock())
        if second != self._second:
            self._second, self._ceiling_text = second, parsing.utc_text(second + 1)
        return self._ceiling_text

    def process(self, element: EventLine):
        source, seq, line = element
        parsed = parsing.parse_line(line, source, seq, self._keep_text)
        if parsed is None:
            # ReadEvents drops blank lines before counting events; should one get here anyway,
            # it must still be accounted for.
            parsed = DeadLetter.of(STAGE, "blank_line", "line is blank", line, source=source)
        if isinstance(parsed, DeadLetter):
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, parsed)
            return
        received = self._ceiling()
        stated = parsing.received_at(parsed.raw)
        if stated is not None and stated < received:
            received = stated
        if parsed.timestamp > received:
            self._future.inc()
            if not self._warned:
                self._warned = True
                _log.warning(
                    "event %s is dated %s, after it was received: ordered as of %s (a client's clock is "
                    "ahead; the summary counts such events)",
                    parsed.message_id,
                    parsed.timestamp,
                    received,
                )
            parsed = dataclasses.replace(parsed, timestamp=received)
        yield parsed


class ParseEvents(beam.PTransform):
    """Parses one Segment event per line; never fails on input, only dead-letters it.

    `keep_text`: carry each event's JSON text along (see EventRef), for sources that cannot be read
    again to rebuild a dead letter (streams). Files are read again instead.
    """

    def __init__(self, keep_text: bool = False) -> None:
        super().__init__()
        self._keep_text = keep_text

    def expand(self, lines: beam.PCollection):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        parsed = lines | "ParseLine" >> beam.ParDo(_ParseLine(self._keep_text)).with_output_types(
            SegmentEvent
        ).with_outputs(DEAD_LETTER, main="events")
        return Result(parsed.events, parsed[DEAD_LETTER])
