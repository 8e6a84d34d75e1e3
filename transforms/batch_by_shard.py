"""MergeIntoBatches (bounded input): operations merged per record and cut into batches, one shard at a time.

Each shard's records are merged by a combiner whose accumulator holds the shard's records (not its
events): runners fold operations in as they are read, so memory grows with the number of records and
only a few large accumulators cross the shuffle. Full batches go straight to the writer; the last,
part-filled batch of each shard is regrouped with the other shards' so that a small run costs one lookup
and one write per batch_size records, however many shards there are.
"""

import zlib
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import MergedOp, RecordOp
from transforms import metrics
from transforms.coders import ShardMergeCoder
from transforms.merging import RecordMerge
from transforms.tally import TALLY, Counts, collect

# Keys of the batches between splitting and filling: a full batch alone, or an sObject's part-filled ones.
FULL = "full"
PART = "part"


def shard_key(op: RecordOp | MergedOp, shards: int) -> str:
    """`<sobject>|<n>`: crc32 is stable across processes and runs, unlike Python's salted hash()."""
    n = zlib.crc32(op.key.encode("utf-8", "surrogatepass")) % shards
    return f"{op.sobject}|{n}"


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
    """Merges the operations of one shard per record: (MergedOps in key order, duplicates dropped).

    Its types are declared so that Beam measures a shard's output through MergedOp's coder (a count)
    instead of pickling all its records to sample their size.
    """

    def get_accumulator_coder(self):
        return ShardMergeCoder()

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
        # Key order: the same batches from the same input, run after run.
        merges = [shard.records[key] for key in sorted(shard.records)]
        return [m.result() for m in merges], sum(m.duplicates for m in merges)


class _SplitIntoBatches(beam.DoFn):
    """A shard's records into batches: each full batch under a key of its own, the last, part-filled
    one under its sObject's key, where the other shards' part-filled batches meet it."""

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self.counts = Counts()

    def finish_bundle(self):
        yield from self.counts.emit()

    def process(self, element: tuple[str, tuple[list[MergedOp], int]]):
        key, (ops, duplicates) = element
        if duplicates:
            self.counts.inc(metrics.DEDUPLICATED, duplicates)
        size = self._batch_size
        full = len(ops) - len(ops) % size
        for n, start in enumerate(range(0, full, size)):
            yield f"{FULL}|{key}|{n}", ops[start : start + size]
        if full < len(ops):
            yield f"{PART}|{key.rpartition('|')[0]}", ops[full:]


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
        ops = sorted((op for part in parts for op in part), key=lambda op: op.key)
        for start in range(0, len(ops), self._batch_size):
            batch = ops[start : start + self._batch_size]
            self.batch_sizes.update(len(batch))
            yield batch


def _key_by_shard(shards: int):
    def key(op: RecordOp) -> tuple[str, RecordOp]:
        return shard_key(op, shards), op

    return key


class MergeIntoBatches(beam.PTransform):
    """Bounded input: RecordOps into lists of at most `batch_size` MergedOps of one sObject.

    Records are spread over `shards` by a stable hash of their key, so that several workers merge and
    write at once; each record is in exactly one batch, so it is written at most once per run.
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
        # One shuffle after the merge, for full and part-filled batches alike: a Flatten of the two would
        # encode every record twice more on the in-process runner.
        split = (
            ops
            | "KeyByShard" >> beam.Map(_key_by_shard(self._shards)).with_output_types(tuple[str, RecordOp])
            | "MergePerShard"
            >> beam.CombinePerKey(MergeShard()).with_output_types(tuple[str, tuple[list[MergedOp], int]])
            | "SplitIntoBatches"
            >> beam.ParDo(_SplitIntoBatches(self._batch_size))
            .with_output_types(tuple[str, list[MergedOp]])
            .with_outputs(TALLY, main="batches")
        )
        collect(split[TALLY])
        return (
            split.batches
            | "GroupBatches" >> beam.GroupByKey()
            | "FillBatches" >> beam.ParDo(_FillBatches(self._batch_size)).with_output_types(list[MergedOp])
        )
