"""BatchByShard: merged operations into lists of one sObject, spread over as many shards as fill batches."""

import zlib
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import MergedOp
from transforms import metrics


def shard_key(op: MergedOp, shards: int) -> str:
    """`<sobject>|<n>`: crc32 is stable across processes and runs, unlike Python's salted hash()."""
    n = zlib.crc32(op.key.encode("utf-8")) % shards
    return f"{op.sobject}|{n}"


def shard_count(records: int, shards: int, batch_size: int) -> int:
    """Shards for `records` of one sObject: enough to fill batches, at most `shards`.

    Every batch costs a lookup and at least one write call, so a small run is one batch per
    sObject; only runs with more records than fit in one batch spread over several shards.
    """
    return max(1, min(shards, -(-records // batch_size)))


def _sobject_of(op: MergedOp) -> str:
    return op.sobject


class _KeyByShard(beam.DoFn):
    def __init__(self, shards: int, batch_size: int) -> None:
        self._shards = shards
        self._batch_size = batch_size

    def process(self, op: MergedOp, counts: dict[str, int]):
        yield shard_key(op, shard_count(counts.get(op.sobject, 1), self._shards, self._batch_size)), op


class _SplitIntoBatches(beam.DoFn):
    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self.batch_sizes = Metrics.distribution(metrics.NAMESPACE, metrics.BATCH_SIZE)

    def process(self, element: tuple[str, Iterable[MergedOp]]):
        _, ops = element
        batch: list[MergedOp] = []
        for op in ops:
            batch.append(op)
            if len(batch) == self._batch_size:
                self.batch_sizes.update(len(batch))
                yield batch
                batch = []
        if batch:
            self.batch_sizes.update(len(batch))
            yield batch


class BatchByShard(beam.PTransform):
    """Bounded input: one GroupByKey per (sobject, shard), cut into lists of at most `batch_size`.

    `shards` is an upper bound: an sObject with N records uses ceil(N / batch_size) of them, so
    that API calls are not spent on part-filled batches.

    Seam for streaming (a later issue): replace GroupByShard + SplitIntoBatches with
    GroupIntoBatches(batch_size, max_buffering_duration_secs) on the same shard keys; the writer
    takes lists of MergedOps of one sObject either way.
    """

    def __init__(self, shards: int = 8, batch_size: int = 1000) -> None:
        super().__init__()
        if shards < 1:
            raise ValueError(f"shards must be at least 1, not {shards}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self._shards = shards
        self._batch_size = batch_size

    def expand(self, ops: beam.PCollection) -> beam.PCollection:
        counts = (
            ops
            | "SObjectOf" >> beam.Map(_sobject_of).with_output_types(str)
            | "CountPerSObject" >> beam.combiners.Count.PerElement()
        )
        return (
            ops
            | "KeyByShard"
            >> beam.ParDo(
                _KeyByShard(self._shards, self._batch_size), counts=beam.pvalue.AsDict(counts)
            ).with_output_types(tuple[str, MergedOp])
            | "GroupByShard" >> beam.GroupByKey()
            | "SplitIntoBatches"
            >> beam.ParDo(_SplitIntoBatches(self._batch_size)).with_output_types(list[MergedOp])
        )
