"""WriteDeadLetters: count dead letters by reason and write them as JSON lines for replay."""

import apache_beam as beam

from schemas.dead_letter import DeadLetter
from transforms import metrics
from transforms.json_lines import check_prefix, write_json_lines
from transforms.tally import TALLY, Counts, collect


class _CountByReason(beam.DoFn):
    def __init__(self) -> None:
        self.counts = Counts()

    def process(self, dead_letter: DeadLetter):
        self.counts.inc(metrics.dead_letter(dead_letter.reason))
        if dead_letter.retryable:
            self.counts.inc(metrics.DEAD_LETTER_RETRYABLE)
        yield dead_letter

    def finish_bundle(self):
        yield from self.counts.emit()


class CountByReason(beam.PTransform):
    """Counts `dead_letter:<reason>` and `dead_letter_retryable`; the dead letters go on unchanged."""

    def expand(self, dead_letters: beam.PCollection) -> beam.PCollection:
        counted = dead_letters | "Count" >> beam.ParDo(_CountByReason()).with_output_types(
            DeadLetter
        ).with_outputs(TALLY, main="dead_letters")
        collect(counted[TALLY])
        return counted.dead_letters


def to_json(dead_letter: DeadLetter) -> str:
    return dead_letter.to_json()


class WriteDeadLetters(beam.PTransform):
    """Counts `dead_letter:<reason>` and `dead_letter_retryable`, and writes every dead letter as a JSON
    line under `prefix`.

    Bounded input: `<prefix>-SSSSS-of-NNNNN.jsonl`, written when the run ends. Unbounded input
    (`window_seconds` set): one set of complete files per window of processing, named by the window,
    `<prefix>-<window start>-<window end>-...jsonl`, written once the window has closed. Either way the
    files are valid --input: a later run replays the events they hold.
    """

    def __init__(self, prefix: str, window_seconds: float | None = None, run: str | None = None) -> None:
        super().__init__()
        check_prefix(prefix, window_seconds)
        self._prefix = prefix
        self._window_seconds = window_seconds
        self._run = run

    def expand(self, dead_letters: beam.PCollection) -> beam.PCollection:
        lines = (
            dead_letters
            | "CountByReason" >> CountByReason()
            | "ToJson" >> beam.Map(to_json).with_output_types(str)
        )
        return write_json_lines(
            lines, self._prefix, self._window_seconds, window_label="WindowDeadLetters", run=self._run
        )
