"""WriteJsonLines: text lines into JSON-lines files, bounded (written when the run ends) or unbounded
(one set of complete files per window of processing time). The dead letters, a read action's records
(--read_output) and a dry run's plan (--dry_run_output) are written this way."""

import contextlib
import json
import os
import time
import uuid

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.textio import WriteToText
from apache_beam.options.value_provider import StaticValueProvider
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration, Timestamp

# A line that reaches its window after the window closed still gets a file of its own (a late
# pane) for this long; past it, the runner would drop it, so it is kept generous.
ALLOWED_LATENESS_SECONDS = 7 * 24 * 3600


class _StampNow(beam.DoFn):
    """A line (a dead letter, a record read) is born when it is made: it is windowed by processing time,
    not by the time of the event it comes from (a backfilled event from last year must not land in a
    closed window)."""

    def process(self, line: str, timestamp=beam.DoFn.TimestampParam):
        yield window.TimestampedValue(line, max(Timestamp.of(time.time()), timestamp))


def windowed_file_naming(prefix: str, clock=time.time, run: str | None = None):
    """`<prefix>-<window start>-<window end>-<pane>-<run>-<shard>-of-<shards>.jsonl`: the pane index keeps
    a late firing from replacing the window's earlier file, and `run` (8 random hex digits, drawn when the
    graph is built unless given) an earlier run's: a job restarted within the minute, or two jobs given
    one prefix, would otherwise write the same window's file, and the last would replace the first.

    Lines flushed when the input ends or the job drains are stamped at the end of time, where the
    watermark then is (transforms/stateful_batching.py), and their window lies past any date: that file
    is named `<prefix>-<when it is written>-end-...`.
    """

    run = run or new_run_id()

    def name(window_, pane, shard_index, total_shards, compression, destination):
        start, end = _utc_text(window_.start), _utc_text(window_.end)
        if start is None or end is None:
            start, end = _utc_text(Timestamp.of(clock())), "end"
        index = pane.index if pane is not None else 0
        return _file_name(prefix, start, end, index, run, shard_index or 0, total_shards or 1)

    return name


def _file_name(
    prefix: str, start: str, end: str, pane: int, run: str, shard: int = 0, shards: int = 1
) -> str:
    return f"{prefix}-{start}-{end}-{pane:03d}-{run}-{shard:05d}-of-{shards:05d}.jsonl"


def _utc_text(moment: Timestamp) -> str | None:
    """`moment` as 20261202T181500Z, or None past the last date Python's datetime can hold."""
    try:
        return moment.to_utc_datetime().strftime("%Y%m%dT%H%M%SZ")
    except (OverflowError, ValueError):
        return None


def split_prefix(prefix: str) -> tuple[str, str]:
    """(folder, file name start) of a prefix: a local one made absolute, a URL (gs://, s3://) as it is."""
    if "://" in prefix:
        directory, _, name = prefix.rpartition("/")  # every URL filesystem Beam has separates with "/"
        return directory, name
    return os.path.split(os.path.abspath(prefix))


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def temp_directory(prefix: str, run: str) -> str:
    """Where a streaming run's lines wait for their window to close: `<folder>/.temp-<name>-<run>`, named
    by the run so that the lines of a stopped local run can be kept (keep_unfinished)."""
    directory, name = split_prefix(prefix)
    return (
        f"{directory}/.temp-{name}-{run}"
        if "://" in prefix
        else os.path.join(directory, f".temp-{name}-{run}")
    )


def keep_unfinished(prefix: str, run: str, clock=time.time) -> tuple[str, int] | None:
    """After a local streaming run was stopped (Ctrl-C) before its window closed: moves the lines waiting
    in its temporary files into `<prefix>-<now>-stopped-000-<run>-00000-of-00001.jsonl`, a file like the
    windows' (valid --input), and returns (that file, its lines); None when none waited. A line cut short
    by the stop is left out: it was never counted as written."""
    if "://" in prefix:
        return None  # remote runners drain their windows themselves
    folder = temp_directory(prefix, run)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return None
    data = b""
    for entry in names:
        try:
            with open(os.path.join(folder, entry), "rb") as f:
                chunk = f.read()
        except (FileNotFoundError, IsADirectoryError):
            continue  # moved to its window's file meanwhile
        data += chunk[: chunk.rfind(b"\n") + 1]
    target = None
    if data:
        target = _file_name(prefix, _utc_text(Timestamp.of(clock())), "stopped", 0, run)
        with open(target, "xb") as f:
            f.write(data)
    for entry in names:
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, entry))
    with contextlib.suppress(OSError):
        os.rmdir(folder)
    return (target, data.count(b"\n")) if target else None


def check_prefix(prefix: str, window_seconds: float | None = None) -> None:
    if not prefix or prefix.endswith(("/", os.sep)):
        raise ValueError(f"WriteJsonLines needs a file prefix such as out/dead_letters, not {prefix!r}")
    if window_seconds is not None and not window_seconds > 0:
        raise ValueError(f"window_seconds must be more than 0, not {window_seconds!r}")


def write_json_lines(
    lines: beam.PCollection,
    prefix: str,
    window_seconds: float | None = None,
    single_file: bool = False,
    window_label: str = "WindowLines",
    run: str | None = None,
) -> beam.PCollection:
    """Writes each line under `prefix`; its steps are applied in the caller's transform, with the labels
    they had there (Dataflow's update matches steps by label).

    Bounded input: `<prefix>-SSSSS-of-NNNNN.jsonl`, written when the run ends (`single_file`: exactly the
    file `prefix`). Unbounded input (`window_seconds` set): one set of complete files per window of
    processing, `<prefix>-<window start>-<window end>-<pane>-<run>-...jsonl`, written once the window
    closed; `run` (8 hex digits, drawn here unless given) names them and their temporary folder.
    """
    check_prefix(prefix, window_seconds)
    if single_file and window_seconds is not None:
        raise ValueError("single_file is for bounded input; unbounded input is written per window")
    if single_file:
        return lines | "WriteFile" >> WriteToText(prefix, shard_name_template="", num_shards=1)
    if window_seconds is None:
        return lines | "WriteJsonLines" >> WriteToText(prefix, file_name_suffix=".jsonl")
    directory, name = split_prefix(prefix)
    run = run or new_run_id()
    return (
        lines
        | "StampNow" >> beam.ParDo(_StampNow()).with_output_types(str)
        | window_label
        >> beam.WindowInto(
            window.FixedWindows(window_seconds),
            trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
            accumulation_mode=trigger.AccumulationMode.DISCARDING,
            allowed_lateness=Duration(seconds=ALLOWED_LATENESS_SECONDS),
        )
        | "WriteWindowedFiles"
        >> fileio.WriteToFiles(
            path=directory,
            file_naming=windowed_file_naming(name, run=run),
            shards=1,
            # A ValueProvider: Beam's own default is one, and its writer calls .get() on it.
            temp_directory=StaticValueProvider(str, temp_directory(prefix, run)),
        )
    )


class WriteJsonLines(beam.PTransform):
    """write_json_lines as a transform of its own: JSON values (dicts) written one a line."""

    def __init__(
        self,
        prefix: str,
        window_seconds: float | None = None,
        single_file: bool = False,
        run: str | None = None,
    ) -> None:
        super().__init__()
        check_prefix(prefix, window_seconds)
        self._args = (prefix, window_seconds, single_file)
        self._run = run

    def expand(self, values: beam.PCollection) -> beam.PCollection:
        lines = values | "ToJson" >> beam.Map(_json_line).with_output_types(str)
        return write_json_lines(lines, *self._args, run=self._run)


def _json_line(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
