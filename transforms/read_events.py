"""ReadEvents: JSON-lines event files (plain or gzip) into (source file, line) pairs."""

import apache_beam as beam
from apache_beam.coders import BytesCoder
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.textio import ReadFromTextWithFilename
from apache_beam.metrics import Metrics

NAMESPACE = "beamforce"


class _DropBlankLines(beam.DoFn):
    """Counts every non-blank line as an event read; blank lines are not events."""

    def __init__(self) -> None:
        self.events_read = Metrics.counter(NAMESPACE, "events_read")
        self.blank_lines = Metrics.counter(NAMESPACE, "blank_lines")

    def process(self, element: tuple[str, bytes]):
        source, raw = element
        # Lines are read as bytes so that invalid UTF-8 reaches the parser (and becomes a dead
        # letter) instead of failing the read.
        try:
            line: str | bytes = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw
        # A lone byte-order mark (Windows editors) is as blank as an empty line for the parser.
        if isinstance(line, str) and not line.lstrip("\ufeff").strip():
            self.blank_lines.inc()
            return
        self.events_read.inc()
        yield source, line


class ReadEvents(beam.PTransform):
    """Reads every file matching `file_pattern`; `.gz`/`.bz2` are decompressed by extension."""

    def __init__(self, file_pattern: str) -> None:
        super().__init__()
        if not file_pattern:
            raise ValueError("ReadEvents needs a file pattern, e.g. 'events/*.jsonl'")
        self._file_pattern = file_pattern

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "ReadLines"
            >> ReadFromTextWithFilename(
                self._file_pattern, compression_type=CompressionTypes.AUTO, coder=BytesCoder()
            )
            | "DropBlankLines" >> beam.ParDo(_DropBlankLines())
        )
