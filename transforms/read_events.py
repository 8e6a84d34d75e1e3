"""ReadEvents: JSON-lines event files (plain or gzip) into (source file, line) pairs."""

import bz2
import contextlib
import gzip
import zlib

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics

from schemas.dead_letter import DeadLetter
from transforms.result import Result

NAMESPACE = "beamforce"
DEAD_LETTER = "dead_letter"
STAGE = "read"

# What a damaged file raises part-way (a .gz that is not gzip, a truncated one, a vanished file).
READ_ERRORS = (OSError, EOFError, zlib.error)

# Python's own decompressors, not Beam's CompressedFile: they check the end-of-stream marker and
# the checksum, so a truncated .gz is reported instead of silently ending early.
DECOMPRESSORS = {".gz": lambda raw: gzip.GzipFile(fileobj=raw), ".bz2": bz2.BZ2File}


class _ReadLines(beam.DoFn):
    """Every line of one file, counted; a file that cannot be read to its end becomes a dead letter.

    A plain `ReadFromText` fails the whole run on one corrupt .gz; here the lines read before the
    damage go on, and the rest of the file is one dead letter (counted as one event read, so that
    the summary still adds up) naming the file, for the user to repair and replay.
    """

    def __init__(self) -> None:
        self.events_read = Metrics.counter(NAMESPACE, "events_read")
        self.blank_lines = Metrics.counter(NAMESPACE, "blank_lines")

    def process(self, readable: fileio.ReadableFile):
        source = readable.metadata.path
        lines = 0
        try:
            with _open(readable) as f:
                for raw in iter(f.readline, b""):
                    lines += 1
                    line = _line_of(raw)
                    if line is not None:
                        self.events_read.inc()
                        yield source, line
                    else:
                        self.blank_lines.inc()
        except READ_ERRORS as e:
            self.events_read.inc()
            message = f"file cannot be read after line {lines}: {type(e).__name__}: {e}"
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER, DeadLetter.of(STAGE, "unreadable_file", message, None, source=source)
            )


@contextlib.contextmanager
def _open(readable: fileio.ReadableFile):
    with readable.open(
        mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED
    ) as raw:
        path = readable.metadata.path
        for suffix, decompressor in DECOMPRESSORS.items():
            if path.endswith(suffix):
                with decompressor(raw) as decompressed:
                    yield decompressed
                return
        yield raw


def _line_of(raw: bytes) -> str | bytes | None:
    """The line without its ending (LF or CRLF); None when blank.

    Lines are read as bytes so that invalid UTF-8 reaches the parser (and becomes a dead letter)
    instead of failing the read. A lone byte-order mark (Windows editors) is as blank as an empty line.
    """
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    try:
        line: str | bytes = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None if not line.lstrip("\ufeff").strip() else line


class ReadEvents(beam.PTransform):
    """Reads every file matching `file_pattern`; `.gz`/`.bz2` are decompressed by extension.

    Returns Result(output=(source, line) pairs, dead_letter=files that could not be read).
    """

    def __init__(self, file_pattern: str) -> None:
        super().__init__()
        if not file_pattern:
            raise ValueError("ReadEvents needs a file pattern, e.g. 'events/*.jsonl'")
        self._file_pattern = file_pattern

    def expand(self, pbegin: beam.pvalue.PBegin):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        read = (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self._file_pattern)
            # Without it a distributed runner fuses the one matching step with the reads, and a
            # single worker reads every file in turn.
            | "SpreadFiles" >> beam.Reshuffle()
            | "OpenFiles" >> fileio.ReadMatches()
            | "ReadLines" >> beam.ParDo(_ReadLines()).with_outputs(DEAD_LETTER, main="lines")
        )
        return Result(read.lines, read[DEAD_LETTER])
