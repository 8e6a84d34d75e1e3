"""ReadArchive: Segment archives (Avro files; gzipped JSON lines by source and day) into EventLines.

Segment's S3 destination (and its GCS one, which copies the same raw logs) writes
`<bucket>[/<prefix>]/segment-logs/<source-id>/<received-day>/<file>.gz`: gzipped JSON lines, one folder
per source and per UTC day the calls were received, the day named by its midnight as a Unix timestamp in
milliseconds (https://segment.com/docs/connections/storage/catalog/aws-s3/#data-format). Days are
selected by folder name: only the source folders and their day folders are listed, never the files of
days not wanted.

Avro files hold one event a record in schemas/segment_event.avsc; each record is turned back into the
event's JSON text, so that everything after reading is the same for every format. The conversion both
ways lives here (tools/avro_convert.py uses it too).
"""

import datetime
import importlib.resources
import json
import logging
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import apache_beam as beam
import fastavro
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from fastavro.schema import SchemaParseException

from schemas.dead_letter import DeadLetter
from schemas.events import EventLine
from transforms import metrics
from transforms.read_events import READ_ERRORS as LINE_READ_ERRORS
from transforms.read_events import _ReadLines, read_lines
from transforms.result import Result
from transforms.tally import TALLY, collect

_log = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter"
STAGE = "read"
UNREADABLE_FILE = "unreadable_file"
SCHEMA_MISMATCH = "schema_mismatch"

AVRO_SUFFIX = ".avro"
# Names that are files, not an archive root: with none of these and no glob character, a path is a root.
FILE_SUFFIXES = (AVRO_SUFFIX, ".gz", ".bz2", ".jsonl", ".json")
LOGS_FOLDER = "segment-logs"
_GLOB = re.compile(r"[*?[]")

# What fastavro raises on a damaged file, as seen by fuzzing truncated and bit-flipped files: a bad
# header (ValueError, JSONDecodeError, SchemaParseException, UnknownType), a block cut short (EOFError),
# a damaged deflate block (zlib.error), a bad union index or length (IndexError, KeyError, OverflowError),
# text that is not UTF-8 (UnicodeDecodeError). Broad, so caught only around fastavro's own reads.
_AVRO_ERRORS = (EOFError, zlib.error, ValueError, IndexError, KeyError, OverflowError, SchemaParseException)
# What makes a file (JSON lines or Avro) unreadable part-way when read again: read_archive_lines raises
# only these (Avro damage as EOFError), as read_events.read_lines does.
READ_ERRORS = LINE_READ_ERRORS


# ---------------------------------------------------------------------------------------------------
# The schema, and events <-> records.


def _schema_fields() -> list[dict[str, Any]]:
    text = importlib.resources.files("schemas").joinpath("segment_event.avsc").read_text(encoding="utf-8")
    return json.loads(text)["fields"]


def segment_event_schema() -> dict[str, Any]:
    """schemas/segment_event.avsc, parsed by fastavro (for writers)."""
    text = importlib.resources.files("schemas").joinpath("segment_event.avsc").read_text(encoding="utf-8")
    return fastavro.parse_schema(json.loads(text))


_FIELDS = _schema_fields()
# Read from the schema file, so that it stays the one definition: plain strings, members held as JSON
# text, and the one field of other members.
STRING_MEMBERS = tuple(f["name"] for f in _FIELDS if "json" not in f)
JSON_MEMBERS = tuple(f["name"] for f in _FIELDS if f.get("json") == "value")
(EXTRA,) = (f["name"] for f in _FIELDS if f.get("json") == "members")
FIELD_NAMES = frozenset(f["name"] for f in _FIELDS)

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class NotAnEvent(ValueError):
    """A line that is not one JSON object, so no record can hold it."""


class RecordMismatch(Exception):
    """An Avro record that does not fit schemas/segment_event.avsc; `field` names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field!r} {problem}")
        self.field = field


def _members(text: str) -> dict[str, tuple[Any, str]]:
    """The top-level members of the JSON object `text`: name -> (value, the value's JSON text as written).

    The last of repeated names wins, as with json.loads. Raises NotAnEvent.
    """
    text = text.lstrip("\ufeff")
    i = _WHITESPACE.match(text).end()
    if text[i : i + 1] != "{":
        raise NotAnEvent("not a JSON object (a Segment call)")
    i = _WHITESPACE.match(text, i + 1).end()
    members: dict[str, tuple[Any, str]] = {}
    try:
        if text[i : i + 1] == "}":
            i += 1
        else:
            while True:
                if text[i : i + 1] != '"':
                    raise NotAnEvent(f"expected a member name at character {i}")
                name, i = json.decoder.scanstring(text, i + 1)
                i = _WHITESPACE.match(text, i).end()
                if text[i : i + 1] != ":":
                    raise NotAnEvent(f"expected ':' at character {i}")
                start = _WHITESPACE.match(text, i + 1).end()
                value, i = _DECODER.raw_decode(text, start)
                members[name] = (value, text[start:i])
                i = _WHITESPACE.match(text, i).end()
                if text[i : i + 1] == ",":
                    i = _WHITESPACE.match(text, i + 1).end()
                    continue
                if text[i : i + 1] == "}":
                    i += 1
                    break
                raise NotAnEvent(f"expected ',' or '}}' at character {i}")
    except json.JSONDecodeError as e:
        raise NotAnEvent(f"not JSON: {e.msg} at character {e.pos}") from None
    except RecursionError:
        raise NotAnEvent("nests arrays or objects too deeply for Python's json") from None
    if _WHITESPACE.match(text, i).end() != len(text):
        raise NotAnEvent(f"not JSON: extra data at character {i}")
    return members


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a "\ud800" escape
        return False
    return True


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=not _utf8(text))


def event_to_record(line: str) -> dict[str, str | None]:
    """The Avro record (schemas/segment_event.avsc) of one event's JSON text. Raises NotAnEvent."""
    record: dict[str, str | None] = dict.fromkeys(f["name"] for f in _FIELDS)
    extra: list[str] = []
    for name, (value, text) in _members(line).items():
        if name in JSON_MEMBERS:
            record[name] = text
        elif name in STRING_MEMBERS and isinstance(value, str) and _utf8(value):
            record[name] = value
        else:
            extra.append(f"{_json_string(name)}:{text}")
    if extra:
        record[EXTRA] = "{" + ",".join(extra) + "}"
    return record


def _avro_kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "a long", float: "a double", bytes: "bytes", dict: "a record or map"}
    for cls, kind in kinds.items():
        if isinstance(value, cls):
            return kind
    return "an array" if isinstance(value, list) else f"a {type(value).__name__}"


def _check_json(name: str, text: Any) -> Any:
    if not isinstance(text, str):
        raise RecordMismatch(name, f"holds {_avro_kind(text)}, not JSON text (a string) or null")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordMismatch(name, f"is not JSON text: {e.msg} at character {e.pos}") from None
    except RecursionError:  # nested too deeply to check here; parsing gives it its own reason
        return None


def record_to_json(record: Mapping[str, Any]) -> str:
    """The event's JSON text from its Avro record; RecordMismatch names the first field that does not fit.

    Strings are written as JSON strings, JSON-text fields and the members of `extra` as they are stored.
    """
    for name, value in record.items():
        # A field of another schema that holds nothing loses nothing.
        if name not in FIELD_NAMES and value is not None:
            raise RecordMismatch(
                name, "is not a field of the Segment event schema (other members belong in 'extra', as JSON)"
            )
    parts = []
    for name in STRING_MEMBERS:
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RecordMismatch(name, f"holds {_avro_kind(value)}, not a string or null")
        parts.append(f'"{name}":{json.dumps(value, ensure_ascii=False)}')
    for name in JSON_MEMBERS:
        text = record.get(name)
        if text is not None:
            _check_json(name, text)
            parts.append(f'"{name}":{text.strip()}')
    extra = record.get(EXTRA)
    if extra is not None:
        members = _check_json(EXTRA, extra)
        if not isinstance(members, dict):
            raise RecordMismatch(EXTRA, "is not the JSON text of an object")
        for name in members:
            if name in FIELD_NAMES and record.get(name) is not None:
                raise RecordMismatch(EXTRA, f"holds member {name!r}, which its own field holds too")
        inner = extra.strip()[1:-1].strip()
        if inner:
            parts.append(inner)
    return "{" + ",".join(parts) + "}"


def _plain(value: Any) -> Any:
    """A value of any Avro record as plain JSON data (a dead letter's event)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # the values of logical types: datetimes, decimals, UUIDs


def record_as_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record that does not fit, as near to its event as it goes: JSON text parsed where it parses and
    extra's members merged in; so that its dead letter, replayed, is parsed as an event."""
    event: dict[str, Any] = {}
    for name, value in record.items():
        if value is None:
            continue
        if name in (*JSON_MEMBERS, EXTRA) and isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                pass
        if name == EXTRA and isinstance(value, dict):
            for member, member_value in value.items():
                event.setdefault(member, _plain(member_value))
        else:
            event[name] = _plain(value)
    return event


# ---------------------------------------------------------------------------------------------------
# The archive layout: sources, days, and listing folders without listing files.


def is_archive_root(path: str) -> bool:
    """A path without glob characters that does not name a file (by its suffix): the bucket or folder
    holding `segment-logs`, `segment-logs` itself, or one source's folder in it."""
    return not _GLOB.search(path) and not path.rstrip("/").endswith(FILE_SUFFIXES)


def parse_day(value: str | datetime.date | None) -> datetime.date | None:
    """A `YYYY-MM-DD` date (or a date, or None); None for text that is not one."""
    if value is None or isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


def day_of_folder(name: str) -> datetime.date | None:
    """The UTC day a day folder stands for: its name is the day's midnight as a Unix timestamp, in
    milliseconds as Segment writes it (seconds, below 10**11, are taken too). None for other names."""
    if not (name.isascii() and name.isdigit()):
        return None
    number = int(name)
    days = number // 86_400_000 if number >= 10**11 else number // 86_400
    try:
        return datetime.date(1970, 1, 1) + datetime.timedelta(days=days)
    except OverflowError:
        return None


def folder_of_day(day: datetime.date) -> str:
    """The day folder's name Segment gives a UTC day: its midnight in Unix milliseconds."""
    return str((day - datetime.date(1970, 1, 1)).days * 86_400_000)


def _name(path: str) -> str:
    return FileSystems.split(path)[1]


def _gcs_client(path: str):
    # The GCS client of the job's own filesystem, so that its credentials and project are the job's.
    return FileSystems.get_filesystem(path)._gcsIO().client


def _s3_client(path: str):
    from apache_beam.io.aws.clients.s3 import boto3_client

    # Beam's S3 options (endpoint, credentials, region) as the job's filesystem was given them.
    return boto3_client.Client(options=FileSystems.get_filesystem(path)._options).client


def _gcs_folders(path: str) -> list[str]:
    bucket, _, prefix = path.removeprefix("gs://").partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    blobs = _gcs_client(path).list_blobs(bucket, prefix=prefix, delimiter="/")
    found = set()
    for page in blobs.pages:
        found.update(page.prefixes)
    return [f"gs://{bucket}/{p.rstrip('/')}" for p in found]


def _s3_folders(path: str) -> list[str]:
    bucket, _, prefix = path.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    pages = (
        _s3_client(path)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
    )
    return [
        f"s3://{bucket}/{p['Prefix'].rstrip('/')}" for page in pages for p in page.get("CommonPrefixes", ())
    ]


def _folders_from_files(path: str) -> list[str]:
    """The child folders of `path` from a listing of every file under it: for filesystems without a
    folder listing; slow on a large archive."""
    _log.warning(
        "listing every file under %s to find its folders (no folder listing for this filesystem)", path
    )
    base = path.rstrip("/") + "/"
    found = set()
    for match in FileSystems.match([base + "**"])[0].metadata_list:
        child, sep, _ = match.path[len(base) :].partition("/")
        if sep:
            found.add(base + child)
    return list(found)


def list_folders(path: str) -> list[str]:
    """The folders directly in `path`, sorted, without listing the files below them.

    Beam's FileSystems.match lists files only, and every file under the pattern's fixed prefix (a
    directory glob such as `segment-logs/*/` matches nothing), so folders are listed as each store
    allows: the local filesystem by its directory, GCS and S3 by a listing with delimiter "/". Other
    filesystems, or S3 without boto3, fall back to listing every file below `path`.
    """
    scheme = FileSystems.get_scheme(path)
    if scheme is None:
        try:
            with os.scandir(path) as entries:
                return sorted(FileSystems.join(path, e.name) for e in entries if e.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []
    listers = {"gs": _gcs_folders, "s3": _s3_folders}
    if scheme in listers:
        try:
            return sorted(listers[scheme](path))
        except (ImportError, AttributeError) as e:  # the store's client library is not installed
            _log.warning("no folder listing for %s:// (%s)", scheme, type(e).__name__)
    return sorted(_folders_from_files(path))


def source_folders(root: str) -> list[str]:
    """The source folders of an archive root (see is_archive_root), by the folders' names alone."""
    root = root.rstrip("/") or root
    if _name(root) == LOGS_FOLDER:
        return list_folders(root)
    if _name(FileSystems.split(root)[0]) == LOGS_FOLDER:
        return [root]  # one source's folder
    return list_folders(FileSystems.join(root, LOGS_FOLDER))


def day_folders(
    source: str, since: datetime.date | None = None, until: datetime.date | None = None
) -> list[str]:
    """The day folders of one source whose UTC day is within [since, until] (either open)."""
    selected = []
    for folder in list_folders(source):
        day = day_of_folder(_name(folder))
        if day is None:
            _log.warning("skipping %s: not a day folder of Segment's layout (a Unix time in ms)", folder)
        elif (since is None or since <= day) and (until is None or day <= until):
            selected.append(folder)
    return selected


def archive_day_folders(
    root: str, since: datetime.date | None = None, until: datetime.date | None = None
) -> list[str]:
    """Every day folder ReadArchive(root, since, until) reads, e.g. to refuse a run that would read none."""
    return [day for source in source_folders(root) for day in day_folders(source, since, until)]


def _files_in(folder: str) -> str:
    return FileSystems.join(folder, "*")


class _ListDayFiles(beam.PTransform):
    """An archive root into the metadata of the files of its selected days."""

    def __init__(self, root: str, since: datetime.date | None, until: datetime.date | None) -> None:
        super().__init__()
        self._root, self._since, self._until = root, since, until

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Root" >> beam.Create([self._root])
            | "ListSources" >> beam.FlatMap(source_folders).with_output_types(str)
            # One worker per source for its day listing, rather than one for all.
            | "SpreadSources" >> beam.Reshuffle()
            | "ListDays" >> beam.FlatMap(day_folders, self._since, self._until).with_output_types(str)
            | "DayFiles" >> beam.Map(_files_in).with_output_types(str)
            | "MatchDayFiles" >> fileio.MatchAll()
        )


# ---------------------------------------------------------------------------------------------------
# Reading files.


class UnreadableAvro(Exception):
    """An Avro file damaged part-way (or not Avro at all); the message says what fastavro found."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")


def avro_records(f) -> Iterator[dict[str, Any]]:
    """The records of an Avro file (binary stream), as written (its own schema, no resolution: a record
    that does not fit ours is told apart by record_to_json, with the field named). Damage raises
    UnreadableAvro."""
    try:
        records = iter(fastavro.reader(f))
    except _AVRO_ERRORS as e:
        raise UnreadableAvro(e) from e
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except _AVRO_ERRORS as e:
            raise UnreadableAvro(e) from e
        yield record


class _ReadArchiveFile(beam.DoFn):
    """Every event of one file: Avro records by number, other files as JSON lines (gzip or bzip2 by
    suffix) as ReadEvents reads them. A record that does not fit the schema is a dead letter naming the
    field; a file that cannot be read to its end is one dead letter, after the events read before."""

    def __init__(self) -> None:
        self._json_lines = _ReadLines()
        self.counts = self._json_lines.counts  # one tally for both kinds of file

    def process(self, readable: fileio.ReadableFile):
        if readable.metadata.path.endswith(AVRO_SUFFIX):
            yield from self._avro(readable)
        else:
            yield from self._json_lines.process(readable)

    def _avro(self, readable: fileio.ReadableFile):
        source = readable.metadata.path
        seq = events = 0
        try:
            with readable.open(
                mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED
            ) as f:
                for seq, record in enumerate(avro_records(f), 1):
                    events += 1
                    try:
                        yield EventLine(source, seq, record_to_json(record))
                    except RecordMismatch as e:
                        message = f"Avro record {seq} does not fit the Segment event schema: {e}"
                        yield beam.pvalue.TaggedOutput(
                            DEAD_LETTER,
                            DeadLetter.of(
                                STAGE, SCHEMA_MISMATCH, message, record_as_event(record), source=source
                            ),
                        )
        except (UnreadableAvro, *LINE_READ_ERRORS) as e:
            events += 1
            message = (
                f"file cannot be read after record {seq}: {e}"
                if seq
                else f"file is not an Avro file, or is damaged from its start (its name ends in .avro): {e}"
            )
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER, DeadLetter.of(STAGE, UNREADABLE_FILE, message, None, source=source)
            )
        finally:
            self.counts.inc(metrics.EVENTS_READ, events)

    def finish_bundle(self):
        yield from self.counts.emit()


def read_archive_lines(path: str, wanted: set[int]) -> Iterator[tuple[int, str | bytes]]:
    """The events of `path` whose numbers are in `wanted`, as ReadArchive read them: an Avro file's
    records by number (as JSON text), other files' lines (read_events.read_lines). Stops after the last
    wanted one. Raises READ_ERRORS (Avro damage as one of them) when the file cannot be read."""
    if not path.endswith(AVRO_SUFFIX):
        yield from read_lines(path, wanted)
        return
    last = max(wanted, default=0)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        try:
            for seq, record in enumerate(avro_records(f), 1):
                if seq in wanted:
                    try:
                        yield seq, record_to_json(record)
                    except RecordMismatch:
                        pass  # a dead letter when read; it never went further
                if seq >= last:
                    return
        except UnreadableAvro as e:
            raise EOFError(f"Avro file damaged: {e}") from e


class ReadArchive(beam.PTransform):
    """Reads a Segment archive, or the files of a glob; Avro (`.avro`) and JSON lines (`.gz`/`.bz2`
    decompressed by suffix) alike.

    `pattern_or_root`: a glob of files (`gs://b/exports/*.avro`), or an archive root (no glob character,
    not a file name: see is_archive_root): the bucket or folder holding `segment-logs/`, that folder, or
    one source's folder in it. `since`/`until` (dates, `YYYY-MM-DD`, inclusive, either open) select the
    received days of a root by their folders' names.

    Returns Result(output=EventLines (an Avro record's line is its event's JSON text, its seq the record's
    number from 1), dead_letter=records that do not fit the schema and files that cannot be read).
    """

    def __init__(
        self,
        pattern_or_root: str,
        since: str | datetime.date | None = None,
        until: str | datetime.date | None = None,
    ) -> None:
        super().__init__()
        if not pattern_or_root:
            raise ValueError(
                "ReadArchive needs a file pattern or an archive root, e.g. 'gs://bucket' or 'events/*.avro'"
            )
        self._since, self._until = parse_day(since), parse_day(until)
        for what, given, day in (("since", since, self._since), ("until", until, self._until)):
            if given is not None and day is None:
                raise ValueError(f"{what} {given!r} is not a date: give YYYY-MM-DD, e.g. 2024-03-01")
        if self._since and self._until and self._since > self._until:
            raise ValueError(f"since {self._since} is after until {self._until}: give since <= until")
        self._root = is_archive_root(pattern_or_root)
        if not self._root and (self._since or self._until):
            raise ValueError(
                f"since/until select the day folders of an archive root, and {pattern_or_root!r} is a "
                "glob or a file: give the root instead, e.g. 'gs://bucket' or 'archive/segment-logs'"
            )
        self._path = pattern_or_root

    def expand(self, pbegin: beam.pvalue.PBegin):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        listing = (
            _ListDayFiles(self._path, self._since, self._until)
            if self._root
            else fileio.MatchFiles(self._path)
        )
        read = (
            pbegin
            | "ListFiles" >> listing
            | "SpreadFiles" >> beam.Reshuffle()
            | "OpenFiles" >> fileio.ReadMatches()
            | "ReadRecords"
            >> beam.ParDo(_ReadArchiveFile())
            .with_output_types(EventLine)
            .with_outputs(DEAD_LETTER, TALLY, main="lines")
        )
        collect(read[TALLY])
        return Result(read.lines, read[DEAD_LETTER])
