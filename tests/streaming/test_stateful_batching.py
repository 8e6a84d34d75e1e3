"""BufferByShard: buffers flushed by distinct records, by processing-time age and at drain; merged ops."""

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow, TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from schemas.events import EventRef
from schemas.records import RecordOp, batch_order
from tests.streaming.conftest import BATCH_RUNNER, run_and_count, streaming_pipeline
from transforms import metrics
from transforms.batch_by_shard import shard_key
from transforms.merging import merge_ops
from transforms.stateful_batching import (
    BufferByShard,
    _BufferByShardFn,
    merge_buffered,
    refire_at,
)

BASE = datetime(2026, 6, 1, tzinfo=UTC)
T0 = int(BASE.timestamp())  # event time of the op numbered 0, in seconds


def _op(value: str, n: int, sobject: str = "Lead", **fields) -> RecordOp:
    """The event numbered `n`: event time T0 + n, read at position n of the stream, messageId m<n>."""
    return RecordOp(
        sobject=sobject,
        match_field="Email" if sobject == "Lead" else "Name",
        match_value=value,
        fields=fields or {"Title": f"t{n}"},
        create_defaults={"LastName": "n/a"} if sobject == "Lead" else {},
        timestamp=(BASE + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        message_id=f"m{n}",
        ref=EventRef("stream", n),
    )


def _timed(ops: list[RecordOp]) -> list[TimestampedValue]:
    return [TimestampedValue(op, T0 + op.ref.seq) for op in ops]


def _merged(*ops: RecordOp):
    return merge_ops(ops)[0]


END = "end of window"  # the stamp of lists flushed at drain


def _second(ts: Timestamp) -> int | str:
    return END if ts == GlobalWindow().max_timestamp() else ts.micros // 1_000_000 - T0


# What reached the end of each streaming run, by run: a module global, since DoFns are pickled, and the
# BundleBasedDirectRunner runs them in this process.
_recorded: dict[str, list] = {}


class _Record(beam.DoFn):
    """Keeps each list with its stamp, where assert_that would not see them all: this runner holds no
    watermark for pending timers, so the lists flushed at drain come after the watermark has passed the
    global window's end, and assert_that's GroupByKey drops them as late (GroupIntoBatches' too)."""

    def __init__(self, run: str) -> None:
        self._run = run

    def process(self, batch, timestamp=beam.DoFn.TimestampParam):
        _recorded[self._run].append((_second(timestamp), batch))


def _run_stream(runner_clock, stream: TestStream, **settings) -> tuple[list, dict[str, int]]:
    """The (stamp, list) pairs BufferByShard(**settings) emits for `stream`, and the run's counters."""
    run = uuid.uuid4().hex
    _recorded[run] = []
    p = streaming_pipeline()
    batches = p | "Events" >> stream | "Buffer" >> BufferByShard(clock=runner_clock, **settings)
    _ = batches | "Record" >> beam.ParDo(_Record(run))
    counts = run_and_count(p)
    return _recorded.pop(run), counts


def _same(actual: list, expected: list) -> None:
    """`actual` is `expected` in some order (the elements hold dicts: not hashable, not sortable)."""
    equal_to(expected)(actual)


def _flushed(**reasons: int) -> dict[str, int]:
    return {metrics.buffer_flushed(reason): n for reason, n in reasons.items()}


# --- settings and pure helpers


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"shards": 0}, "shards must be a whole number of at least 1"),
        ({"shards": 2.5}, "shards must be a whole number"),
        ({"batch_size": 0}, "batch_size must be a whole number of records, at least 1"),
        ({"batch_size": True}, "batch_size must be a whole number"),
        ({"max_buffering_seconds": 0}, "max_buffering_seconds must be a positive, finite number"),
        ({"max_buffering_seconds": float("inf")}, "max_buffering_seconds must be a positive, finite"),
        ({"max_buffering_seconds": "5s"}, "max_buffering_seconds must be a positive"),
        ({"clock": 12.0}, "clock must be a callable"),
    ],
)
def test_settings_are_checked_at_construction(settings, message):
    with pytest.raises(ValueError, match=message):
        BufferByShard(**settings)


def test_shard_key_is_stable_case_insensitive_and_the_same_for_ops_and_merged_records():
    ops = [_op(f"u{i}@x.com", i) for i in range(6)] + [_op("Acme", 9, sobject="Account")]
    # crc32, not hash(): the same in every process and run.
    assert [shard_key(op, 4) for op in ops] == [
        "Lead|2",
        "Lead|2",
        "Lead|3",
        "Lead|3",
        "Lead|1",
        "Lead|1",
        "Account|3",
    ]
    assert shard_key(_op(" U0@X.COM", 1), 4) == shard_key(_op("u0@x.com", 2), 4)
    # A record's shard is the same in streaming and bounded runs.
    assert [shard_key(op, 4) for op in ops] == [shard_key(_merged(op), 4) for op in ops]


def test_merge_buffered_sorts_records_and_cuts_lists_of_at_most_batch_size():
    ops = [_op(value, n) for n, value in enumerate(["e@x", "b@x", "d@x", "a@x", "c@x", "b@x"])]
    lists, duplicates = merge_buffered(ops, batch_size=2)
    assert [[m.match_value for m in batch] for batch in lists] == [["a@x", "b@x"], ["c@x", "d@x"], ["e@x"]]
    assert lists[0][1] == _merged(ops[1], ops[5])
    assert duplicates == 0


def test_merge_buffered_counts_repeated_message_ids():
    a1, a2 = _op("a@x", 1), _op("a@x", 2)
    lists, duplicates = merge_buffered([a1, a2, a1, a1], batch_size=10)
    assert (lists, duplicates) == ([[_merged(a1, a2)]], 2)


def test_merge_buffered_does_not_depend_on_arrival_order():
    ops = [
        _op("a@x", 3, Title="late"),
        _op("A@X", 1, Title="early", City="Oslo"),
        _op("b@x", 2),
        _op("a@x", 2, Phone="1"),
    ]
    first = merge_buffered(ops, batch_size=1)
    assert all(merge_buffered(list(order), batch_size=1) == first for order in itertools.permutations(ops))
    (([a], [b]), _) = merge_buffered(ops, batch_size=1)
    assert (a.match_value, a.fields, a.events) == ("a@x", {"Title": "late", "City": "Oslo", "Phone": "1"}, 3)
    assert b == _merged(ops[2])


@pytest.mark.parametrize(
    "deadline, now, again",
    [
        (None, 50.0, None),  # flushed already (a stale timer): nothing to do
        (105.0, 100.0, 105.0),  # early (the FnApiRunner fires at bundle ends): fire again at the deadline
        (105.0, 104.999, 105.0),
        (105.0, 105.0, None),  # due
        (105.0, 300.0, None),  # late
    ],
)
def test_refire_at(deadline, now, again):
    assert refire_at(deadline, now) == again


def test_buffer_flush_reasons_are_a_closed_set():
    assert [metrics.buffer_flushed(r) for r in metrics.BUFFER_FLUSH_REASONS] == [
        "buffer_flushed:size",
        "buffer_flushed:age",
        "buffer_flushed:drain",
    ]
    with pytest.raises(ValueError, match="unknown buffer flush reason"):
        metrics.buffer_flushed("because")


# --- the DoFn with fake state, timers and clock


class _Value:
    def __init__(self, value=None) -> None:
        self.value = value

    def read(self):
        return self.value

    def write(self, value) -> None:
        self.value = value

    def clear(self) -> None:
        self.value = None


class _Bag:
    def __init__(self, items=()) -> None:
        self.items = list(items)

    def read(self):
        return iter(self.items)

    def add(self, item) -> None:
        self.items.append(item)

    def clear(self) -> None:
        self.items = []


class _Set(_Bag):
    def read(self):
        return set(self.items)


class _Timer:
    def __init__(self) -> None:
        self.set_to: list = []
        self.cleared = 0

    def set(self, ts) -> None:
        self.set_to.append(ts)

    def clear(self) -> None:
        self.cleared += 1


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _state(ops=(), deadline=None) -> dict:
    """The DoFn's state and timers as keyword arguments, holding `ops` (event time T0 + n)."""
    return {
        "buffered": _Bag(((T0 + op.ref.seq) * 1_000_000, op) for op in ops),
        "records": _Set(op.key for op in ops),
        "deadline": _Value(deadline),
        "age_timer": _Timer(),
        "drain_timer": _Timer(),
    }


def test_an_age_timer_firing_before_the_deadline_sets_itself_again_and_keeps_the_buffer():
    clock = _Clock(now=103.0)
    fn = _BufferByShardFn(batch_size=10, max_buffering_seconds=5, clock=clock)
    ops = [_op("a@x", 1), _op("b@x", 2)]
    state = _state(ops, deadline=105.0)

    assert list(fn.on_age(**state)) == []
    assert state["age_timer"].set_to == [105.0]
    assert (len(state["buffered"].items), state["deadline"].value) == (2, 105.0)

    clock.now = 105.0  # the next firing, on time: flush and clear everything
    state["age_timer"] = _Timer()
    [out] = list(fn.on_age(**state))
    assert (out.value, out.timestamp) == ([_merged(ops[0]), _merged(ops[1])], Timestamp(T0 + 2))
    assert state["age_timer"].set_to == []
    assert (state["buffered"].items, state["records"].items, state["deadline"].value) == ([], [], None)
    assert (state["age_timer"].cleared, state["drain_timer"].cleared) == (1, 1)


def test_a_stale_age_timer_on_an_empty_buffer_emits_nothing():
    fn = _BufferByShardFn(batch_size=10, max_buffering_seconds=5, clock=_Clock(now=500.0))
    state = _state()
    assert list(fn.on_age(**state)) == []
    assert state["age_timer"].set_to == []


def test_the_first_op_of_a_buffer_sets_the_deadline_and_size_counts_distinct_records():
    clock = _Clock(now=100.0)
    fn = _BufferByShardFn(batch_size=2, max_buffering_seconds=5, clock=clock)
    state = _state()
    window = GlobalWindow()

    def process(op):
        return list(fn.process(("Lead|0", op), Timestamp(T0 + op.ref.seq), window, **state))

    assert process(_op("a@x", 1)) == []
    assert (state["deadline"].value, state["age_timer"].set_to) == (105.0, [105.0])
    assert state["drain_timer"].set_to == [window.max_timestamp()]
    clock.now = 102.0
    # More events of the same record: still one record, no flush, and the deadline stays.
    assert process(_op("a@x", 2)) == [] and process(_op("A@X", 3)) == []
    assert (state["deadline"].value, state["age_timer"].set_to) == (105.0, [105.0])
    [out] = process(_op("b@x", 4))
    assert out.value == [_merged(*(_op("a@x", 1), _op("a@x", 2), _op("A@X", 3))), _merged(_op("b@x", 4))]
    assert out.timestamp == Timestamp(T0 + 4)
    assert (state["buffered"].items, state["deadline"].value) == ([], None)


# --- TestStream on the BundleBasedDirectRunner (processing time: the runner's TestClock, see conftest)


def test_a_buffer_is_flushed_when_it_holds_batch_size_records(runner_clock):
    a, c, b = _op("a@x", 1), _op("c@x", 2), _op("b@x", 3)
    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements(_timed([a, c]))
        .advance_watermark_to(T0 + 2)
        .add_elements(_timed([b]))
        .advance_watermark_to_infinity()
    )
    lists, counts = _run_stream(runner_clock, stream, shards=1, batch_size=2)
    # [a, c] left when c came: a flush at the end alone would have given the sorted [a, b], [c].
    _same(lists, [(2, [_merged(a), _merged(c)]), (END, [_merged(b)])])
    assert counts == _flushed(size=1, drain=1)


def test_size_counts_distinct_records_not_events(runner_clock):
    a_ops = [_op("a@x", 1), _op("A@x", 2, City="Oslo"), _op("a@x", 3)]
    b, c = _op("b@x", 4), _op("c@x", 5)
    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements(_timed(a_ops))  # three events, one record: no flush
        .add_elements(_timed([b]))  # the second record: flush
        .add_elements(_timed([c]))
        .advance_watermark_to_infinity()
    )
    lists, counts = _run_stream(runner_clock, stream, shards=1, batch_size=2)
    _same(lists, [(4, [_merged(*a_ops), _merged(b)]), (END, [_merged(c)])])
    assert counts == _flushed(size=1, drain=1)


def test_a_buffer_is_flushed_when_its_oldest_op_has_waited_max_buffering_seconds(runner_clock):
    a, b, c = _op("a@x", 1), _op("b@x", 2), _op("c@x", 3)
    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements(_timed([a]))  # processing time 0: due at 5
        .advance_processing_time(4)
        .add_elements(_timed([b]))  # at 4: joins a's buffer, does not move its deadline
        .advance_processing_time(2)  # at 6: flush [a, b]
        .add_elements(_timed([c]))  # a new buffer, due at 11
        .advance_processing_time(4)  # at 10: not yet
        .advance_watermark_to_infinity()
    )
    lists, counts = _run_stream(runner_clock, stream, shards=1, batch_size=10, max_buffering_seconds=5)
    _same(lists, [(2, [_merged(a), _merged(b)]), (END, [_merged(c)])])
    assert counts == _flushed(age=1, drain=1)


def test_every_buffer_is_flushed_at_drain(runner_clock):
    ops = [_op(f"u{i}@x.com", i) for i in range(10)] + [_op(f"Org {i}", 20 + i, "Account") for i in range(4)]
    stream = TestStream().advance_watermark_to(T0).add_elements(_timed(ops)).advance_watermark_to_infinity()
    lists, counts = _run_stream(runner_clock, stream, shards=4)
    # One list per shard in use (so of one sObject), sorted by record; every record once.
    by_shard: dict[str, list] = {}
    for op in ops:
        by_shard.setdefault(shard_key(op, 4), []).append(op)
    expected = [(END, [_merged(op) for op in sorted(held, key=batch_order)]) for held in by_shard.values()]
    _same(lists, expected)
    assert counts == _flushed(drain=len(by_shard))


def test_fifty_events_of_one_record_are_one_merged_op_with_the_latest_values(runner_clock):
    events = [_op("a@x.com", n, Title=f"t{n}") for n in range(1, 51)]
    events[9] = _op("a@x.com", 10, Title="t10", City="Oslo")  # a field only one event sets
    arrivals = events + [events[6]]  # Segment delivered event 7 twice: same messageId
    random.Random(6).shuffle(arrivals)
    stream = (
        TestStream().advance_watermark_to(T0).add_elements(_timed(arrivals)).advance_watermark_to_infinity()
    )
    lists, counts = _run_stream(runner_clock, stream, shards=2, batch_size=2)

    [(stamp, [record])] = lists
    assert stamp == END
    assert record.fields == {"Title": "t50", "City": "Oslo"}
    assert record.field_times == {"Title": events[49].timestamp, "City": events[9].timestamp}
    assert record.refs == tuple(EventRef("stream", n) for n in range(1, 51))
    assert record.events == 50
    assert counts == {metrics.DEDUPLICATED: 1, **_flushed(drain=1)}


@pytest.mark.parametrize("arrival", ["event order", "reversed"])
def test_the_merge_does_not_depend_on_arrival_order(runner_clock, arrival):
    ops = [
        _op("a@x", 1, Title="first", City="Oslo"),
        _op("A@X", 2, Title="second"),
        _op("a@x", 3, Phone="3"),
        _op("b@x", 4),
    ]
    arrivals = ops if arrival == "event order" else ops[::-1]
    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements(_timed(arrivals[:2]))
        .add_elements(_timed(arrivals[2:]))
        .advance_watermark_to_infinity()
    )
    lists, _ = _run_stream(runner_clock, stream, shards=1)
    [(_, [a, b])] = lists
    assert (a.match_value, a.fields) == ("a@x", {"Title": "second", "City": "Oslo", "Phone": "3"})
    assert (a, b) == (_merged(*ops[:3]), _merged(ops[3]))


# --- bounded input on the FnApiRunner


def test_bounded_input_on_the_fnapi_runner_is_all_flushed_at_the_end():
    """The FnApiRunner fires processing-time timers at bundle ends, long before a deadline ten minutes
    away on the wall clock (the default clock): those firings must set the timer again, not flush, and
    the end of input flushes every buffer, with every event in exactly one list."""
    ops = [_op(f"u{n % 9}@x.com", n) for n in range(40)] + [
        _op(f"Org {n % 4}", n, "Account") for n in range(40, 52)
    ]
    p = TestPipeline(runner=BATCH_RUNNER)
    batches = (
        p
        | "Ops" >> beam.Create(ops)
        | "Buffer" >> BufferByShard(shards=3, batch_size=4, max_buffering_seconds=600)
    )
    assert_that(
        batches | "Events" >> beam.FlatMap(lambda batch: [ref.seq for m in batch for ref in m.refs]),
        equal_to(list(range(52))),
        label="EveryEventOnce",
    )
    misfits = batches | "Misfits" >> beam.Filter(
        lambda batch: not 1 <= len(batch) <= 4 or len({m.sobject for m in batch}) != 1
    )
    assert_that(misfits, equal_to([]), label="ListsOfOneSObjectAndAtMostBatchSize")
    counts = run_and_count(p)
    assert metrics.buffer_flushed("age") not in counts  # every early firing set the timer again
    assert counts[metrics.buffer_flushed("drain")] >= 1
