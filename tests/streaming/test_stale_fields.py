"""DropStaleFields: per record and field, values older than one already seen are dropped, in any order."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream as Stream  # a "Test*" name would be collected
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from schemas.records import RecordOp
from tests.streaming.conftest import TickingClock, batch_pipeline, run_and_count, streaming_pipeline
from transforms.merging import RecordMerge
from transforms.stale_fields import DropStaleFields, _DropStaleFieldsFn, drop_stale_fields

TTL = 100
T1, T2, T3 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"


def _op(fields: dict, timestamp: str, message_id: str, email: str = "a@example.com") -> RecordOp:
    return RecordOp("Lead", "Email", email, fields, {"LastName": "n/a"}, timestamp, message_id)


# One record's events, and one event of another record; sent in several orders below.
EVENTS = {
    "m1": _op({"FirstName": "Ann", "Title": "Intern"}, T1, "m1"),
    "m2": _op({"Title": "Engineer", "Phone": "2"}, T2, "m2"),
    "m3": _op({"FirstName": "Anne"}, T3, "m3"),
    "m4": _op({"Company": "Old Co", "Phone": "0"}, "", "m4"),  # no timestamp: older than any time
    "m5": _op({"Title": "CTO"}, T1, "m5", email="b@example.com"),
}
LATEST = {
    "a@example.com": {"FirstName": "Anne", "Title": "Engineer", "Phone": "2", "Company": "Old Co"},
    "b@example.com": {"Title": "CTO"},
}
ORDERS = {
    "in_time_order": ["m4", "m1", "m5", "m2", "m3"],
    "newest_first": ["m3", "m2", "m1", "m5", "m4"],
    "untimed_last": ["m1", "m2", "m3", "m5", "m4"],
    "interleaved": ["m2", "m4", "m5", "m3", "m1"],
    "middle_first": ["m2", "m1", "m3", "m4", "m5"],
}


def _through(ops: list[RecordOp]) -> tuple[list[RecordOp], int]:
    """The ops as DropStaleFields passes them, in arrival order, and how many fields it dropped."""
    state: dict[str, dict[str, str]] = {}
    passed, dropped = [], 0
    for op in ops:
        kept, state[op.key], stale = drop_stale_fields(op, state.get(op.key, {}))
        passed.append(kept)
        dropped += stale
    return passed, dropped


def _merged_fields(ops: list[RecordOp]) -> dict[str, dict]:
    merges: dict[str, RecordMerge] = {}
    for op in ops:
        merges.setdefault(op.key, RecordMerge()).add(op)
    return {m.result().match_value: m.result().fields for m in merges.values()}


def _written_in_arrival_order(ops: list[RecordOp]) -> dict[str, dict]:
    """What Salesforce holds if every op is written as it arrives (the last write of a field wins)."""
    records: dict[str, dict] = {}
    for op in ops:
        records.setdefault(op.match_value, {}).update(op.fields)
    return records


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), "86400"])
def test_settings_are_checked_at_construction(ttl):
    with pytest.raises(ValueError, match="ttl_seconds must be"):
        DropStaleFields(ttl_seconds=ttl)


def test_clock_must_be_callable():
    with pytest.raises(ValueError, match="clock must be a callable"):
        DropStaleFields(clock="time.time")


@pytest.mark.parametrize(
    "held, fields, timestamp, kept, times_after, stale",
    [
        ({}, {"Title": "x", "Phone": "1"}, T2, {"Title": "x", "Phone": "1"}, {"title": T2, "phone": T2}, 0),
        ({"title": T3}, {"Title": "x", "Phone": "1"}, T2, {"Phone": "1"}, {"title": T3, "phone": T2}, 1),
        (
            {"title": T1, "phone": T3},
            {"Title": "x", "Phone": "1"},
            T2,
            {"Title": "x"},
            {"title": T2, "phone": T3},
            1,
        ),
        ({"title": T2}, {"Title": "x"}, T2, {"Title": "x"}, {"title": T2}, 0),  # same time: a replay passes
        ({"title": T3}, {"TITLE": "x", "title": "y"}, T2, {}, {"title": T3}, 2),  # names compared case-blind
        ({"title": T1}, {"Title": "x"}, "", {}, {"title": T1}, 1),  # no timestamp: older than any time
        ({"title": ""}, {"Title": "x"}, "", {"Title": "x"}, {"title": ""}, 0),
        ({"title": ""}, {"Title": "x"}, T1, {"Title": "x"}, {"title": T1}, 0),
        ({"title": T3}, {}, T1, {}, {"title": T3}, 0),
    ],
)
def test_drop_stale_fields(held, fields, timestamp, kept, times_after, stale):
    op = _op(fields, timestamp, "m9")
    out, times, dropped = drop_stale_fields(op, held)
    assert (out.fields, times, dropped) == (kept, times_after, stale)
    assert (out.message_id, out.timestamp, out.create_defaults) == ("m9", timestamp, {"LastName": "n/a"})


def test_drop_stale_fields_does_not_change_what_it_is_given():
    held = {"title": T3}
    op = _op({"Title": "x"}, T1, "m9")
    drop_stale_fields(op, held)
    assert (held, op.fields) == ({"title": T3}, {"Title": "x"})


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_any_arrival_order_leaves_every_record_with_its_latest_values(order):
    passed, _ = _through([EVENTS[m] for m in order])
    assert [op.message_id for op in passed] == order  # every op goes on, even with no fields left
    assert _written_in_arrival_order(passed) == LATEST
    assert _merged_fields(passed) == _merged_fields(list(EVENTS.values())) == LATEST


class _FakeState:
    def __init__(self, value=None) -> None:
        self.value = value

    def read(self):
        return self.value

    def write(self, value) -> None:
        self.value = value

    def clear(self) -> None:
        self.value = None


class _FakeTimer:
    def __init__(self) -> None:
        self.set_to: list[float] = []

    def set(self, ts) -> None:
        self.set_to.append(ts)


class _FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def __call__(self) -> float:
        return self._now


@pytest.mark.parametrize(
    "now, times_after, expires_after, timer_set_to",
    [
        (10.0, {"title": T1}, 100.0, [100.0]),  # fired early: keep the state, fire again at 100
        (100.0, None, None, []),
        (400.0, None, None, []),
    ],
)
def test_expiry_timer_sets_itself_again_until_the_ttl_has_passed(
    now, times_after, expires_after, timer_set_to
):
    fn = _DropStaleFieldsFn(ttl_seconds=TTL, clock=_FixedClock(now))
    field_times, expires_at, expiry = _FakeState({"title": T1}), _FakeState(100.0), _FakeTimer()
    fn.expire(field_times=field_times, expires_at=expires_at, expiry=expiry)
    assert (field_times.value, expires_at.value, expiry.set_to) == (times_after, expires_after, timer_set_to)


def _stream(*steps) -> Stream:
    """A TestStream from (processing seconds to advance, op) steps, one op per step, event time = step."""
    stream = Stream().advance_watermark_to(0)
    for n, (advance, op) in enumerate(steps, start=1):
        if advance:
            stream = stream.advance_processing_time(advance)
        stream = stream.add_elements([TimestampedValue(op, n)]).advance_watermark_to(n)
    return stream.advance_watermark_to_infinity()


def _summary(op: RecordOp) -> tuple[str, tuple]:
    return op.message_id, tuple(sorted(op.fields.items()))


def _run(clock, stream: Stream, expected: list[RecordOp]) -> dict[str, int]:
    p = streaming_pipeline()
    out = p | "Events" >> stream | "DropStale" >> DropStaleFields(ttl_seconds=TTL, clock=clock)
    assert_that(
        out | "Summary" >> beam.Map(_summary), equal_to([_summary(op) for op in expected]), label="Check"
    )
    return run_and_count(p)


def test_shuffled_events_on_the_streaming_runner(runner_clock):
    order = ORDERS["interleaved"]
    passed, dropped = _through([EVENTS[m] for m in order])
    counts = _run(runner_clock, _stream(*[(5, EVENTS[m]) for m in order]), passed)
    assert dropped == 3  # m4 loses Phone (m2's is newer) and keeps Company; m1 loses FirstName and Title
    assert counts == {"stale_fields_skipped": 3}
    assert _written_in_arrival_order(passed) == LATEST


def test_each_op_for_the_record_extends_the_ttl(runner_clock):
    steps = [
        (0, _op({"Title": "new"}, T3, "m1")),
        (80, _op({"Phone": "1"}, T3, "m2")),  # at 80: the record's state now lives until 180
        (70, _op({"Title": "old"}, T1, "m3")),  # at 150: still remembered, dropped
    ]
    counts = _run(runner_clock, _stream(*steps), [steps[0][1], steps[1][1], _op({}, T1, "m3")])
    assert counts == {"stale_fields_skipped": 1}


def test_state_is_forgotten_after_the_ttl(runner_clock):
    steps = [
        (0, _op({"Title": "new"}, T3, "m1")),
        (150, _op({"Title": "old"}, T1, "m2")),  # the timer at 100 has cleared the record's state
        (10, _op({"Title": "older"}, "", "m3")),  # but m2 started it again
    ]
    counts = _run(runner_clock, _stream(*steps), [steps[0][1], steps[1][1], _op({}, "", "m3")])
    assert counts == {"stale_fields_skipped": 1}


def test_early_timers_on_the_fnapi_runner_keep_state_until_the_ttl(ticking_clock: TickingClock):
    """The batch FnApiRunner fires the timer right after the bundle that set it (by the wall clock); it sets
    itself again until the clock (one second a reading) has passed the TTL end, and the run still ends."""
    p = batch_pipeline()
    ops = [_op({"Title": "x"}, T1, "m1")]
    out = p | "Ops" >> beam.Create(ops) | "DropStale" >> DropStaleFields(ttl_seconds=20, clock=ticking_clock)
    assert_that(out | "Summary" >> beam.Map(_summary), equal_to([_summary(ops[0])]), label="Check")
    assert run_and_count(p) == {}
    assert ticking_clock.now() >= 1 + 20
