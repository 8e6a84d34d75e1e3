"""MergeByRecord: the operations on each record merged into one, duplicate messageIds dropped (bounded)."""

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import MergedOp, RecordOp
from transforms import metrics
from transforms.merging import RecordMerge


class MergeRecordOps(beam.CombineFn):
    """Folds a record's operations as they arrive: runners combine before shuffling, so memory and
    shuffled bytes grow with the number of records, not of events."""

    def create_accumulator(self) -> RecordMerge:
        return RecordMerge()

    def add_input(self, merge: RecordMerge, op: RecordOp) -> RecordMerge:
        return merge.add(op)

    def merge_accumulators(self, merges) -> RecordMerge:
        merges = iter(merges)
        first = next(merges)
        for other in merges:
            first.merge(other)
        return first

    def extract_output(self, merge: RecordMerge) -> tuple[MergedOp, int]:
        return merge.result(), merge.duplicates


class _CountDuplicates(beam.DoFn):
    def __init__(self) -> None:
        self.deduplicated = Metrics.counter(metrics.NAMESPACE, metrics.DEDUPLICATED)

    def process(self, element: tuple[str, tuple[MergedOp, int]]):
        _, (merged, duplicates) = element
        if duplicates:
            self.deduplicated.inc(duplicates)
        yield merged


def _key_by_record(op: RecordOp) -> tuple[str, RecordOp]:
    return op.key, op


class MergeByRecord(beam.PTransform):
    """Merges RecordOps per record key over the whole (bounded) input, in event order, field by field."""

    def expand(self, ops: beam.PCollection) -> beam.PCollection:
        return (
            ops
            | "KeyByRecord" >> beam.Map(_key_by_record).with_output_types(tuple[str, RecordOp])
            | "MergePerRecord" >> beam.CombinePerKey(MergeRecordOps())
            | "CountDuplicates" >> beam.ParDo(_CountDuplicates()).with_output_types(MergedOp)
        )
