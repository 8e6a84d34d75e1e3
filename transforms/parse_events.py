"""ParseEvents: (source, line) pairs into SegmentEvents, bad lines into dead letters."""

import apache_beam as beam

from schemas.dead_letter import DeadLetter
from transforms import parsing
from transforms.result import Result

DEAD_LETTER = "dead_letter"
STAGE = "parse"


class _ParseLine(beam.DoFn):
    def process(self, element: tuple[str, str | bytes]):
        source, line = element
        parsed = parsing.parse_line(line, source)
        if parsed is None:
            # ReadEvents drops blank lines before counting events; should one get here anyway,
            # it must still be accounted for.
            parsed = DeadLetter.of(STAGE, "blank_line", "line is blank", line, source=source)
        if isinstance(parsed, DeadLetter):
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, parsed)
        else:
            yield parsed


class ParseEvents(beam.PTransform):
    """Parses one Segment event per line; never fails on input, only dead-letters it."""

    def expand(self, lines: beam.PCollection):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        parsed = lines | "ParseLine" >> beam.ParDo(_ParseLine()).with_outputs(DEAD_LETTER, main="events")
        return Result(parsed.events, parsed[DEAD_LETTER])
