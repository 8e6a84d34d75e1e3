"""BufferByShard: the streaming batcher, a stateful buffer per shard flushed by size, by age and at drain."""

import math
import time
from collections.abc import Callable, Iterable

import apache_beam as beam
from apache_beam.coders import FastPrimitivesCoder, FloatCoder, StrUtf8Coder, TupleCoder, VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    SetStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from schemas.records import MergedOp, RecordOp, batch_order
from transforms import metrics
from transforms.batch_by_shard import cut, shard_key
from transforms.merging import RecordMerge


def merge_buffered(ops: Iterable[RecordOp], batch_size: int) -> tuple[list[list[MergedOp]], int]:
    """One MergedOp per record of `ops`, in lists of at most `batch_size`, and the duplicates dropped.

    Records come out in batch_order, so that the lists do not depend on the order the buffer returns
    its ops in; RecordMerge makes each record's merge independent of that order too.
    """
    merges: dict[str, RecordMerge] = {}
    for op in ops:
        merge = merges.get(op.key)
        if merge is None:
            merge = merges[op.key] = RecordMerge()
        merge.add(op)
    merged = sorted((merge.result() for merge in merges.values()), key=batch_order)
    duplicates = sum(merge.duplicates for merge in merges.values())
    return cut(merged, batch_size), duplicates


def refire_at(deadline: float | None, now: float) -> float | None:
    """When a firing age timer must fire again, or None when the buffer is due (or already flushed).

    Runners may fire processing-time timers before their time (the FnApiRunner does at bundle ends),
    so the deadline stored in state, not the firing, decides.
    """
    if deadline is not None and now < deadline:
        return deadline
    return None


class _KeyByShard(beam.DoFn):
    def __init__(self, shards: int) -> None:
        self._shards = shards

    def process(self, op: RecordOp):
        yield shard_key(op, self._shards), op


_SIZE, _AGE, _DRAIN = metrics.BUFFER_FLUSH_REASONS


class _BufferByShardFn(beam.DoFn):
    """Buffers the ops of one shard and emits them merged per record: see BufferByShard for the rules.

    Bag entries are (event timestamp in microseconds, op), so that a flush can stamp its lists
    without a state read per element.
    """

    OPS = BagStateSpec("ops", TupleCoder([VarIntCoder(), FastPrimitivesCoder()]))
    RECORDS = SetStateSpec("records", StrUtf8Coder())  # distinct record keys buffered
    DEADLINE = ReadModifyWriteStateSpec("deadline", FloatCoder())  # processing time the buffer is due
    AGE = TimerSpec("age", TimeDomain.REAL_TIME)
    DRAIN = TimerSpec("drain", TimeDomain.WATERMARK)

    def __init__(self, batch_size: int, max_buffering_seconds: float, clock: Callable[[], float]) -> None:
        self._batch_size = batch_size
        self._max_buffering_seconds = max_buffering_seconds
        self._clock = clock
        self.deduplicated = Metrics.counter(metrics.NAMESPACE, metrics.DEDUPLICATED)
        self.batch_sizes = Metrics.distribution(metrics.NAMESPACE, metrics.BATCH_SIZE)
        self.flushes = {
            reason: Metrics.counter(metrics.NAMESPACE, metrics.buffer_flushed(reason))
            for reason in metrics.BUFFER_FLUSH_REASONS
        }

    def process(
        self,
        element: tuple[str, RecordOp],
        timestamp=beam.DoFn.TimestampParam,
        window=beam.DoFn.WindowParam,
        buffered=beam.DoFn.StateParam(OPS),
        records=beam.DoFn.StateParam(RECORDS),
        deadline=beam.DoFn.StateParam(DEADLINE),
        age_timer=beam.DoFn.TimerParam(AGE),
        drain_timer=beam.DoFn.TimerParam(DRAIN),
    ):
        _, op = element
        if deadline.read() is None:
            # The first op of a buffer: its arrival starts the age limit. The timer is set once per
            # buffer, so its watermark hold (on runners that hold at the setting element) stays put.
            due = self._clock() + self._max_buffering_seconds
            deadline.write(due)
            age_timer.set(due)
            drain_timer.set(window.max_timestamp())
        buffered.add((timestamp.micros, op))
        records.add(op.key)
        if len(set(records.read())) >= self._batch_size:
            yield from self._flush(_SIZE, buffered, records, deadline, age_timer, drain_timer)

    @on_timer(AGE)
    def on_age(
        self,
        buffered=beam.DoFn.StateParam(OPS),
        records=beam.DoFn.StateParam(RECORDS),
        deadline=beam.DoFn.StateParam(DEADLINE),
        age_timer=beam.DoFn.TimerParam(AGE),
        drain_timer=beam.DoFn.TimerParam(DRAIN),
    ):
        again = refire_at(deadline.read(), self._clock())
        if again is not None:
            age_timer.set(again)
            return
        yield from self._flush(_AGE, buffered, records, deadline, age_timer, drain_timer)

    @on_timer(DRAIN)
    def on_drain(
        self,
        timestamp=beam.DoFn.TimestampParam,
        buffered=beam.DoFn.StateParam(OPS),
        records=beam.DoFn.StateParam(RECORDS),
        deadline=beam.DoFn.StateParam(DEADLINE),
        age_timer=beam.DoFn.TimerParam(AGE),
        drain_timer=beam.DoFn.TimerParam(DRAIN),
    ):
        # Stamped at the window's end, where the watermark already is: an earlier stamp would be late
        # data, which a GroupByKey downstream drops once the window has expired.
        yield from self._flush(_DRAIN, buffered, records, deadline, age_timer, drain_timer, timestamp)

    def _flush(self, reason, buffered, records, deadline, age_timer, drain_timer, stamp=None):
        """Emits the buffer merged per record, stamped `stamp` or else with the newest event time held."""
        held = list(buffered.read())
        buffered.clear()
        records.clear()
        deadline.clear()
        age_timer.clear()
        drain_timer.clear()
        if not held:
            return
        # One list, unless an update of the pipeline lowered batch_size below what a buffer holds.
        batches, duplicates = merge_buffered((op for _, op in held), self._batch_size)
        if duplicates:
            self.deduplicated.inc(duplicates)
        self.flushes[reason].inc()
        if stamp is None:
            # Not before the op being processed (a size flush), nor before the op that set the age timer,
            # where portable runners hold the watermark until that timer fires; and an event time, not
            # the age timer's own time, which is a wall-clock reading.
            stamp = Timestamp(micros=max(micros for micros, _ in held))
        for batch in batches:
            self.batch_sizes.update(len(batch))
            yield TimestampedValue(batch, stamp)


class BufferByShard(beam.PTransform[beam.PCollection[RecordOp], beam.PCollection[list[MergedOp]]]):
    """Unbounded input: RecordOps buffered per shard, emitted as lists of MergedOps (one per record).

    Ops are keyed `<sobject>|<n>` (n = crc32 of the record key % `shards`, batch_by_shard's key): every
    op of a record reaches one buffer, and each list holds one sObject, so that a full buffer is one
    lookup and one write call. A buffer is flushed when it holds `batch_size` distinct records (fifty
    events of one email are one record), when its oldest op has waited `max_buffering_seconds` of
    processing time, and when the watermark passes the window's end (end of input, or drain).
    At a flush the ops of each record merge in event order, field by field (RecordMerge); repeated
    messageIds found there are counted in `deduplicated`, list sizes in `batch_size`.

    State per shard and window: the buffered ops, the set of their record keys and the flush deadline,
    all cleared at every flush. So a buffer holds at most `batch_size` distinct records (plus the
    events of those records) for at most `max_buffering_seconds`; the whole transform holds at most
    sObjects x `shards` such buffers. Apply it to globally windowed input.

    A list flushed by size or age is stamped with the newest event time among its ops; one flushed at
    drain with the window's end, where the watermark already is. `clock` gives processing time in
    seconds; it must be picklable (a module-level function or a small class) and agree with the
    runner's processing time, as time.time does: an age timer that fires before the stored deadline
    sets itself again.
    """

    def __init__(
        self,
        shards: int = 8,
        batch_size: int = 200,
        max_buffering_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shards must be a whole number of at least 1 (e.g. 8), not {shards!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"batch_size must be a whole number of records, at least 1 (e.g. 200, one sObject "
                f"Collections call), not {batch_size!r}"
            )
        if (
            isinstance(max_buffering_seconds, bool)
            or not isinstance(max_buffering_seconds, int | float)
            or not 0 < max_buffering_seconds < math.inf
        ):
            raise ValueError(
                f"max_buffering_seconds must be a positive, finite number of seconds (e.g. 5.0): without "
                f"an age limit a quiet shard would hold its ops until drain; not {max_buffering_seconds!r}"
            )
        if not callable(clock):
            raise ValueError(f"clock must be a callable returning seconds, like time.time, not {clock!r}")
        self._shards = shards
        self._batch_size = batch_size
        self._max_buffering_seconds = float(max_buffering_seconds)
        self._clock = clock

    def expand(self, ops: beam.PCollection[RecordOp]) -> beam.PCollection[list[MergedOp]]:
        return (
            ops
            | "KeyByShard" >> beam.ParDo(_KeyByShard(self._shards)).with_output_types(tuple[str, RecordOp])
            | "BufferAndMerge"
            >> beam.ParDo(
                _BufferByShardFn(self._batch_size, self._max_buffering_seconds, self._clock)
            ).with_output_types(list[MergedOp])
        )
