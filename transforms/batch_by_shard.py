"""Bounded input: operations merged per record, one shard at a time (MergePerShard), and cut into batches
(CutIntoBatches).

Each shard's records are merged by a combiner whose accumulator holds the shard's records (not its
events): runners fold operations in as they are read, so memory grows with the number of records and
only a few large accumulators cross the shuffle. Batches are for REST writes: full batches go straight
to the writer; the last, part-filled batch of each list is regrouped with the others' so that a small
run costs one lookup and one write per batch_size records, however many shards there are. Bulk writes
take the shards' lists as they are (transforms/write_records.py).
"""

import zlib
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import MergedOp, RecordOp, batch_order, target_key
from transforms import metrics
from transforms.coders import LocalHandleCoder, LocalList, ShardMergeCoder
from transforms.merging import RecordMerge
from transforms.tally import TALLY, Counts, collect

# Keys of the batches between splitting and filling: a full batch alone, or an sObject's part-filled ones.
FULL = "full"
PART = "part"


def shard_key(op: RecordOp | MergedOp, shards: int) -> str:
    """`<sobject>|<n>`, n from the op's target record (schemas.records.target_key), so that the records of
    several actions on one Salesforce record meet in one shard. crc32 is stable across processes and runs,
    unlike Python's salted hash()."""
    n = zlib.crc32(target_key(op).encode("utf-8", "surrogatepass")) % shards
    return f"{op.sobject}|{n}"


def cut(ops: list[MergedOp], size: int) -> list[list[MergedOp]]:
    """`ops` (in batch_order) in batches of `size`, never cut between two records of one target record: a
    batch grows by the few records other actions hold of its last one, and writes them one after the other."""
    batches = []
    start, end = 0, len(ops)
    while start < end:
        stop = min(start + size, end)
        while stop < end and target_key(ops[stop]) == target_key(ops[stop - 1]):
            stop += 1
        batches.append(ops[start:stop])
        start = stop
    return batches


class ShardMerge:
    """A combiner's accumulator: the records of one shard merged so far, by record key."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: dict[str, RecordMerge] = {}

    def __getstate__(self):
        return self.records

    def __setstate__(self, records) -> None:
        self.records = records


@beam.typehints.with_input_types(RecordOp)
@beam.typehints.with_output_types(tuple[list[MergedOp], int])
class MergeShard(beam.CombineFn):
    """Merges the operations of one shard per record: (MergedOps in batch_order, duplicates dropped).

    Its types are declared so that Beam measures a shard's output through MergedOp's coder (a count)
    instead of pickling all its records to sample their size. `local`: the runner runs every stage in
    this process (pipeline/runner_kind.py), so the accumulators go to the merge by reference.
    """

    def __init__(self, local: bool = False) -> None:
        self._local = local

    def get_accumulator_coder(self):
        return LocalHandleCoder() if self._local else ShardMergeCoder()

    def create_accumulator(self) -> ShardMerge:
        return ShardMerge()

    def add_input(self, shard: ShardMerge, op: RecordOp) -> ShardMerge:
        key = op.key
        merge = shard.records.get(key)
        if merge is None:
            merge = shard.records[key] = RecordMerge()
        merge.add(op)
        return shard

    def merge_accumulators(self, shards: Iterable[ShardMerge]) -> ShardMerge:
        shards = iter(shards)
        into = next(shards)
        for other in shards:
            for key, merge in other.records.items():
                mine = into.records.get(key)
                if mine is None:
                    into.records[key] = merge
                else:
                    mine.merge(merge)
        return into

    def extract_output(self, shard: ShardMerge) -> tuple[list[MergedOp], int]:
        # A stable order: the same batches from the same input, run after run.
        merged = sorted((m.result() for m in shard.records.values()), key=batch_order)
        return merged, sum(m.duplicates for m in shard.records.values())


class _CountDuplicates(beam.DoFn):
    """A shard's merged records on their own; the duplicate messageIds its merge dropped, counted."""

    def __init__(self) -> None:
        self.counts = Counts()

    def finish_bundle(self):
        yield from self.counts.emit()

    def process(self, element: tuple[str, tuple[list[MergedOp], int]]):
        _, (ops, duplicates) = element
        if duplicates:
            self.counts.inc(metrics.DEDUPLICATED, duplicates)
        yield ops


class _SplitIntoBatches(beam.DoFn):
    """A list of merged records into batches of one sObject: each full batch under a key of its own (its
    first record's, unique since every record is in one list only), the last, part-filled one of each
    sObject under the sObject's key, where the other lists' part-filled batches meet it."""

    def __init__(self, batch_size: int, local: bool) -> None:
        self._batch_size = batch_size
        self._local = local

    def process(self, ops: list[MergedOp]):
        by_object: dict[str, list[MergedOp]] = {}
        for op in ops:
            by_object.setdefault(op.sobject, []).append(op)
        size = self._batch_size
        for sobject, part in by_object.items():
            for batch in cut(part, size):
                if self._local:
                    batch = LocalList(batch)
                if len(batch) >= size:
                    yield f"{FULL}|{batch[0].key}", batch
                else:  # the last one
                    yield f"{PART}|{sobject}", batch


class _FillBatches(beam.DoFn):
    """Full batches as they are; the part-filled batches of one sObject's shards cut again into as few
    batches as they fill."""

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self.batch_sizes = Metrics.distribution(metrics.NAMESPACE, metrics.BATCH_SIZE)

    def process(self, element: tuple[str, Iterable[list[MergedOp]]]):
        key, parts = element
        if key.startswith(FULL):
            for batch in parts:
                self.batch_sizes.update(len(batch))
                yield batch
            return
        ops = sorted((op for part in parts for op in part), key=batch_order)
        for batch in cut(ops, self._batch_size):
            self.batch_sizes.update(len(batch))
            yield batch


def _key_by_shard(shards: int):
    def key(op: RecordOp) -> tuple[str, RecordOp]:
        return shard_key(op, shards), op

    return key


class MergePerShard(beam.PTransform):
    """Bounded input: RecordOps into lists of MergedOps, one per shard of each sObject, in batch_order.

    Records are spread over `shards` by a stable hash of their key, so that several workers merge at
    once; each record is in exactly one list. Duplicate messageIds dropped by the merge are counted.
    `local`: see MergeShard.
    """

    def __init__(self, shards: int = 8, local: bool = False) -> None:
        super().__init__()
        if shards < 1:
            raise ValueError(f"shards must be at least 1, not {shards}")
        self._shards = shards
        self._local = local

    def expand(self, ops: beam.PCollection) -> beam.PCollection:
        merged = (
            ops
            | "KeyByShard" >> beam.Map(_key_by_shard(self._shards)).with_output_types(tuple[str, RecordOp])
            | "MergePerShard"
            >> beam.CombinePerKey(MergeShard(self._local)).with_output_types(
                tuple[str, tuple[list[MergedOp], int]]
            )
            | "CountDuplicates"
            >> beam.ParDo(_CountDuplicates())
            .with_output_types(list[MergedOp])
            .with_outputs(TALLY, main="merged")
        )
        collect(merged[TALLY])
        return merged.merged


class CutIntoBatches(beam.PTransform):
    """Lists of merged records (each record in one list only; any sizes, any sObjects) into batches of one
    sObject and at most `batch_size` records, as few as they fill: full batches as they are, the
    part-filled rests of each sObject regrouped. `local`: see MergeShard (the batches are LocalLists)."""

    def __init__(self, batch_size: int = 1000, local: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self._batch_size = batch_size
        self._local = local

    def expand(self, lists: beam.PCollection) -> beam.PCollection:
        # One shuffle for full and part-filled batches alike: a Flatten of the two would encode every
        # record twice more on the in-process runner.
        batch = LocalList if self._local else list[MergedOp]
        return (
            lists
            | "SplitIntoBatches"
            >> beam.ParDo(_SplitIntoBatches(self._batch_size, self._local)).with_output_types(
                tuple[str, batch]
            )
            | "GroupBatches" >> beam.GroupByKey()
            | "FillBatches"
            >> beam.ParDo(_FillBatches(self._batch_size))
            .with_input_types(tuple[str, Iterable[batch]])
            .with_output_types(list[MergedOp])
        )
