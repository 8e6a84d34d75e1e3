"""WriteDeadLetters: count dead letters by reason and write them as JSON lines for replay."""

import logging

import apache_beam as beam
from apache_beam.io.textio import WriteToText
from apache_beam.metrics import Metrics

from schemas.dead_letter import DeadLetter

NAMESPACE = "beamforce"

_log = logging.getLogger(__name__)


class _CountByReason(beam.DoFn):
    def __init__(self) -> None:
        self.retryable = Metrics.counter(NAMESPACE, "dead_letter_retryable")

    def process(self, dead_letter: DeadLetter):
        Metrics.counter(NAMESPACE, f"dead_letter:{dead_letter.reason}").inc()
        if dead_letter.retryable:
            self.retryable.inc()
        yield dead_letter


def to_json(dead_letter: DeadLetter) -> str:
    return dead_letter.to_json()


class WriteDeadLetters(beam.PTransform):
    """Counts `dead_letter:<reason>` and `dead_letter_retryable`; writes `<prefix>-SSSSS-of-NNNNN.jsonl`
    when a prefix is given."""

    def __init__(self, prefix: str | None = None) -> None:
        super().__init__()
        self._prefix = prefix or None

    def expand(self, dead_letters: beam.PCollection) -> beam.PCollection:
        counted = dead_letters | "CountByReason" >> beam.ParDo(_CountByReason())
        if self._prefix is None:
            # Logged once, when the graph is built, not per element.
            _log.warning("No --dead_letter_output: dead letters are only counted, not written")
            return counted
        return (
            counted
            | "ToJson" >> beam.Map(to_json)
            | "WriteJsonLines" >> WriteToText(self._prefix, file_name_suffix=".jsonl")
        )
