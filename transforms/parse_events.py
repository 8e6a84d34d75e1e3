"""ParseEvents: EventLines into SegmentEvents, bad lines into dead letters."""

import apache_beam as beam

from schemas.dead_letter import DeadLetter
from schemas.events import EventLine, SegmentEvent
from transforms import parsing
from transforms.result import Result

DEAD_LETTER = "dead_letter"
STAGE = "parse"


class _ParseLine(beam.DoFn):
    def __init__(self, keep_text: bool) -> None:
        self._keep_text = keep_text

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
