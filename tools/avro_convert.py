"""Converts Segment events between JSON lines and Avro files (schemas/segment_event.avsc), both ways.

    python -m tools.avro_convert to-avro IN.jsonl OUT.avro     (IN may be .gz or .bz2)
    python -m tools.avro_convert to-jsonl IN.avro OUT.jsonl    (OUT may end in .gz)

Paths go through Beam's filesystems (local, gs://, s3:// where their extras are installed). A line that
is not a JSON object, or a record that does not fit the schema, is skipped and named on stderr, with
its line or record number; the exit status is then 1. Blank lines are skipped silently.
"""

import argparse
import contextlib
import sys
import zlib
from collections.abc import Iterator, Sequence
from typing import TextIO

import fastavro
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.read_archives import (
    NotAnEvent,
    RecordMismatch,
    UnreadableAvro,
    avro_records,
    event_to_record,
    record_to_json,
    segment_event_schema,
)
from transforms.read_events import DECOMPRESSORS, numbered_lines

CODECS = ("deflate", "null")  # the ones fastavro writes without extra packages


# What reading or writing a damaged or missing file raises (a truncated .gz, a file that is not Avro).
FILE_ERRORS = (OSError, EOFError, zlib.error, UnreadableAvro)


@contextlib.contextmanager
def _open_lines(path: str):
    # Python's decompressors rather than Beam's, as ReadEvents: they notice a truncated .gz.
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        suffix = next((s for s in DECOMPRESSORS if path.endswith(s)), None)
        if suffix is None:
            yield raw
        else:
            with DECOMPRESSORS[suffix](raw) as f:
                yield f


def _records(f, path: str, problems: list[str]) -> Iterator[dict]:
    for number, body in numbered_lines(f):
        try:
            line = body.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"{path}:{number}: not UTF-8 ({e.reason} at byte {e.start})")
            continue
        if not line.lstrip("\ufeff").strip():
            continue
        try:
            yield event_to_record(line)
        except NotAnEvent as e:
            problems.append(f"{path}:{number}: {e}")


def to_avro(source: str, target: str, codec: str = "deflate") -> tuple[int, list[str]]:
    """Writes the events of the JSON-lines file `source` to the Avro file `target`: (records, problems)."""
    problems: list[str] = []
    count = 0

    def counted(records: Iterator[dict]) -> Iterator[dict]:
        nonlocal count
        for record in records:
            count += 1
            yield record

    # The input is opened first, so that a missing one leaves no empty output behind.
    with (
        _open_lines(source) as f,
        FileSystems.create(target, compression_type=CompressionTypes.UNCOMPRESSED) as out,
    ):
        fastavro.writer(out, segment_event_schema(), counted(_records(f, source, problems)), codec=codec)
    return count, problems


def to_jsonl(source: str, target: str) -> tuple[int, list[str]]:
    """Writes the records of the Avro file `source` as JSON lines to `target`: (lines, problems)."""
    problems: list[str] = []
    count = 0
    with (
        FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as f,
        FileSystems.create(target, compression_type=CompressionTypes.AUTO) as out,
    ):
        for number, record in enumerate(avro_records(f), 1):
            try:
                line = record_to_json(record)
            except RecordMismatch as e:
                problems.append(f"{source}: record {number}: {e}")
                continue
            out.write(line.encode("utf-8") + b"\n")
            count += 1
    return count, problems


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.avro_convert",
        description="Convert Segment events between JSON lines and Avro (schemas/segment_event.avsc).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    avro = commands.add_parser("to-avro", help="JSON lines (plain, .gz or .bz2) to an Avro file")
    avro.add_argument("source", metavar="IN", help="JSON-lines file, one Segment event a line")
    avro.add_argument("target", metavar="OUT", help="Avro file to write (replaced if it exists)")
    avro.add_argument(
        "--codec", choices=CODECS, default="deflate", help="Avro block compression (default deflate)"
    )
    jsonl = commands.add_parser("to-jsonl", help="an Avro file to JSON lines")
    jsonl.add_argument("source", metavar="IN", help="Avro file of Segment events")
    jsonl.add_argument("target", metavar="OUT", help="JSON-lines file to write; gzip when it ends in .gz")
    return parser


def main(argv: Sequence[str] | None = None, stderr: TextIO = sys.stderr) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "to-avro":
            count, problems = to_avro(args.source, args.target, args.codec)
        else:
            count, problems = to_jsonl(args.source, args.target)
    except FILE_ERRORS as e:
        print(f"cannot convert {args.source}: {type(e).__name__}: {e}", file=stderr)
        return 2
    for problem in problems:
        print(f"skipped {problem}", file=stderr)
    print(f"{count} events written to {args.target}, {len(problems)} skipped", file=stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
