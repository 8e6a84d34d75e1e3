"""WriteDeadLetters: count dead letters by reason and write them as JSON lines for replay."""

import os
import time

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.textio import WriteToText
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration, Timestamp

from schemas.dead_letter import DeadLetter
from transforms import metrics


class _CountByReason(beam.DoFn):
    def __init__(self) -> None:
        self.retryable = Metrics.counter(metrics.NAMESPACE, metrics.DEAD_LETTER_RETRYABLE)

    def process(self, dead_letter: DeadLetter):
        Metrics.counter(metrics.NAMESPACE, metrics.dead_letter(dead_letter.reason)).inc()
        if dead_letter.retryable:
            self.retryable.inc()
        yield dead_letter


def to_json(dead_letter: DeadLetter) -> str:
    return dead_letter.to_json()


# A dead letter that reaches its window after the window closed still gets a file of its own (a late
# pane) for this long; past it, the runner would drop it, so it is kept generous.
ALLOWED_LATENESS_SECONDS = 7 * 24 * 3600


class _StampNow(beam.DoFn):
    """A dead letter is born when the failure happens: it is windowed by processing time, not by the
    time of the event it holds (a backfilled event from last year must not land in a closed window)."""

    def process(self, line: str, timestamp=beam.DoFn.TimestampParam):
        yield window.TimestampedValue(line, max(Timestamp.of(time.time()), timestamp))


def windowed_file_naming(prefix: str):
    """`<prefix>-<window start>-<window end>-<pane>-<shard>-of-<shards>.jsonl`: the pane index keeps a
    late firing from replacing the window's earlier file."""

    def name(window_, pane, shard_index, total_shards, compression, destination):
        start = window_.start.to_utc_datetime().strftime("%Y%m%dT%H%M%SZ")
        end = window_.end.to_utc_datetime().strftime("%Y%m%dT%H%M%SZ")
        index = pane.index if pane is not None else 0
        return f"{prefix}-{start}-{end}-{index:03d}-{shard_index or 0:05d}-of-{total_shards or 1:05d}.jsonl"

    return name


class WriteDeadLetters(beam.PTransform):
    """Counts `dead_letter:<reason>` and `dead_letter_retryable`, and writes every dead letter as a JSON
    line under `prefix`.

    Bounded input: `<prefix>-SSSSS-of-NNNNN.jsonl`, written when the run ends. Unbounded input
    (`window_seconds` set): one set of complete files per window of processing, named by the window,
    `<prefix>-<window start>-<window end>-...jsonl`, written once the window has closed. Either way the
    files are valid --input: a later run replays the events they hold.
    """

    def __init__(self, prefix: str, window_seconds: float | None = None) -> None:
        super().__init__()
        if not prefix or prefix.endswith(("/", os.sep)):
            raise ValueError(f"WriteDeadLetters needs a file prefix such as out/dead_letters, not {prefix!r}")
        if window_seconds is not None and not window_seconds > 0:
            raise ValueError(f"window_seconds must be more than 0, not {window_seconds!r}")
        self._prefix = prefix
        self._window_seconds = window_seconds

    def expand(self, dead_letters: beam.PCollection) -> beam.PCollection:
        lines = (
            dead_letters
            | "CountByReason" >> beam.ParDo(_CountByReason()).with_output_types(DeadLetter)
            | "ToJson" >> beam.Map(to_json).with_output_types(str)
        )
        if self._window_seconds is None:
            return lines | "WriteJsonLines" >> WriteToText(self._prefix, file_name_suffix=".jsonl")
        directory, name = os.path.split(os.path.abspath(self._prefix))
        return (
            lines
            | "StampNow" >> beam.ParDo(_StampNow()).with_output_types(str)
            | "WindowDeadLetters"
            >> beam.WindowInto(
                window.FixedWindows(self._window_seconds),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
                allowed_lateness=Duration(seconds=ALLOWED_LATENESS_SECONDS),
            )
            | "WriteWindowedFiles"
            >> fileio.WriteToFiles(path=directory, file_naming=windowed_file_naming(name), shards=1)
        )
