"""The summary of a bounded run, computed inside the pipeline and written to --summary_output by a worker.

A launcher that does not wait for its job (a Dataflow Flex Template) never sees the job's metrics, and
a remote runner's workers cannot write to the launching machine. So the counting stages also hand their
counts on as tallies (transforms/tally.py); this stage totals them once the input has been handled,
builds the same Summary the launcher builds from the metrics, and writes its JSON through Beam's
filesystems (a local path, gs://, s3://, ...). Streaming runs never end: they do not use it.
"""

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.summary import Summary
from transforms.tally import MergeTallies, Tally


class _WriteFile(beam.DoFn):
    """Writes its one element (text) to `path`, replacing the file: a retried bundle writes it again."""

    def __init__(self, path: str) -> None:
        self._path = path

    def process(self, text: str):
        write_text(self._path, text)
        yield self._path


class WriteSummary(beam.PTransform):
    """Totals the stages' tallies (a PCollection of Tally) into the run's Summary and writes it as JSON
    to `path`.

    `launcher_api_calls` are the calls the launching process made before the job (its login and
    describes), which no stage counts; `dead_letter_output` and `dry_run` go into the summary as the
    launcher's would.
    """

    def __init__(
        self, path: str, launcher_api_calls: int, dead_letter_output: str | None, dry_run: bool
    ) -> None:
        super().__init__()
        self._path = path
        self._summary = (launcher_api_calls, dead_letter_output, dry_run)

    def expand(self, tallies: beam.PCollection) -> beam.PCollection:
        return (
            tallies
            | "TotalTallies" >> beam.CombineGlobally(MergeTallies()).with_output_types(Tally)
            | "ToSummary" >> beam.Map(summary_json, *self._summary).with_output_types(str)
            | "WriteSummary" >> beam.ParDo(_WriteFile(self._path)).with_output_types(str)
        )


def write_text(path: str, text: str) -> None:
    """Writes `text` to `path` (any Beam filesystem), replacing what was there."""
    with FileSystems.create(
        path, mime_type="application/json", compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
        f.write(text.encode("utf-8"))


def summary_json(tally: Tally, launcher_api_calls: int, dead_letter_output: str | None, dry_run: bool) -> str:
    """The summary file's text, as the launcher writes it."""
    summary = Summary.from_metrics(
        tally.counters, tally.string_sets, launcher_api_calls, dead_letter_output, dry_run
    )
    return summary.to_json() + "\n"
