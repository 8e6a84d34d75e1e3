"""MergeByRecord: all operations on one record merged into one, duplicate messageIds dropped."""

from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import MergedOp, RecordOp
from transforms import merging

NAMESPACE = "beamforce"


class _Merge(beam.DoFn):
    def __init__(self) -> None:
        self.deduplicated = Metrics.counter(NAMESPACE, "deduplicated")

    def process(self, element: tuple[str, Iterable[RecordOp]]):
        _, ops = element
        merged, duplicates = merging.merge_ops(ops)
        if duplicates:
            self.deduplicated.inc(duplicates)
        yield merged


def _key_by_record(op: RecordOp) -> tuple[str, RecordOp]:
    return op.key, op


class MergeByRecord(beam.PTransform):
    """Groups RecordOps by record key (bounded input) and merges each group in timestamp order."""

    def expand(self, ops: beam.PCollection) -> beam.PCollection:
        return (
            ops
            | "KeyByRecord" >> beam.Map(_key_by_record).with_output_types(tuple[str, RecordOp])
            | "GroupByRecord" >> beam.GroupByKey()
            | "Merge" >> beam.ParDo(_Merge()).with_output_types(MergedOp)
        )
