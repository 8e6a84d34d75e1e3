"""ReadEvents: JSON-lines event files (plain, gzip or bzip2) into EventLines (file, line number, text)."""

import bz2
import contextlib
import gzip
import zlib
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.dead_letter import DeadLetter
from schemas.events import EventLine
from transforms import metrics
from transforms.result import Result
from transforms.tally import TALLY, Counts, collect

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
        self.counts = Counts()

    def process(self, readable: fileio.ReadableFile):
        source = readable.metadata.path
        lines = 0
        events = blanks = 0
        try:
            with _open(readable) as f:
                for lines, raw in numbered_lines(f):
                    line = _line_of(raw)
                    if line is not None:
                        events += 1
                        yield EventLine(source, lines, line)
                    else:
                        blanks += 1
        except READ_ERRORS as e:
            events += 1
            message = f"file cannot be read after line {lines}: {type(e).__name__}: {e}"
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER, DeadLetter.of(STAGE, "unreadable_file", message, None, source=source)
            )
        finally:
            # Counted once per file: a counter update per line costs more than reading the line.
            self.counts.inc(metrics.EVENTS_READ, events)
            self.counts.inc(metrics.BLANK_LINES, blanks)

    def finish_bundle(self):
        yield from self.counts.emit()


def numbered_lines(f) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every line of a binary file; LF, CRLF and a lone CR all end a line.

    Line numbers count every line, blank ones too, so that they name the line a user sees in an editor,
    and a later reading of the same file (to rebuild a dead letter) finds the same line by its number.
    """
    number = 0
    for chunk in iter(f.readline, b""):
        body = chunk.removesuffix(b"\n").removesuffix(b"\r") if chunk.endswith(b"\n") else chunk
        if b"\r" in body:
            # Classic Mac OS line endings: without this, a whole file would be one opaque line.
            parts = body.split(b"\r")
            if not chunk.endswith(b"\n") and parts[-1] == b"":
                parts.pop()  # the file ends with a CR
            for part in parts:
                number += 1
                yield number, part
            continue
        number += 1
        yield number, body


def read_lines(path: str, wanted: set[int]) -> Iterator[tuple[int, str | bytes]]:
    """The lines of `path` whose numbers are in `wanted`, as ReadEvents read them (text, or bytes when
    not UTF-8). Stops after the last wanted line."""
    last = max(wanted, default=0)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        with _decompressed(raw, path) as f:
            for number, body in numbered_lines(f):
                if number in wanted:
                    yield number, _text_of(body)
                if number >= last:
                    return


@contextlib.contextmanager
def _open(readable: fileio.ReadableFile):
    with readable.open(
        mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED
    ) as raw:
        with _decompressed(raw, readable.metadata.path) as f:
            yield f


@contextlib.contextmanager
def _decompressed(raw, path: str):
    for suffix, decompressor in DECOMPRESSORS.items():
        if path.endswith(suffix):
            with decompressor(raw) as decompressed:
                yield decompressed
            return
    yield raw


def _text_of(body: bytes) -> str | bytes:
    """Lines are read as bytes so that invalid UTF-8 reaches the parser (and becomes a dead letter)
    instead of failing the read."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body


def _line_of(body: bytes) -> str | bytes | None:
    """The line (without its ending); None when blank. A lone byte-order mark (Windows editors) is as
    blank as an empty line."""
    line = _text_of(body)
    if isinstance(line, str) and not line.lstrip("\ufeff").strip():
        return None
    return line


class ReadEvents(beam.PTransform):
    """Reads every file matching `file_pattern`; `.gz`/`.bz2` are decompressed by extension.

    Returns Result(output=EventLines, dead_letter=files that could not be read).
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
            | "ReadLines"
            >> beam.ParDo(_ReadLines())
            .with_output_types(EventLine)
            .with_outputs(DEAD_LETTER, TALLY, main="lines")
        )
        collect(read[TALLY])
        return Result(read.lines, read[DEAD_LETTER])
