"""DeduplicateByMessageId: repeats dropped within the TTL (from the first delivery), state gone after it."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream as Stream  # a "Test*" name would be collected
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from schemas.records import RecordOp
from tests.streaming.conftest import TickingClock, batch_pipeline, run_and_count, streaming_pipeline
from transforms.dedup import DeduplicateByMessageId, _DropRepeatsFn, within_ttl

TTL = 100


def _op(message_id: str, n: int) -> RecordOp:
    """The n-th delivery: `n` goes into a field, so that the outputs say which copy passed."""
    return RecordOp(
        "Lead",
        "Email",
        "a@example.com",
        {"n": n},
        timestamp=f"2026-01-01T00:00:{n:02d}Z",
        message_id=message_id,
    )


def _numbers(ops):
    return ops | "Numbers" >> beam.Map(lambda op: op.fields["n"])


def _stream(*steps) -> Stream:
    """A TestStream from (processing seconds to advance, [ops]) steps; the n-th op has event time n."""
    stream = Stream().advance_watermark_to(0)
    for advance, ops in steps:
        if advance:
            stream = stream.advance_processing_time(advance)
        stream = stream.add_elements([TimestampedValue(op, op.fields["n"]) for op in ops])
        stream = stream.advance_watermark_to(max(op.fields["n"] for op in ops))
    return stream.advance_watermark_to_infinity()


def _run(runner_clock, stream: Stream, expected: list[int]) -> dict[str, int]:
    p = streaming_pipeline()
    out = p | "Events" >> stream | "Dedup" >> DeduplicateByMessageId(ttl_seconds=TTL, clock=runner_clock)
    assert_that(_numbers(out), equal_to(expected), label="CheckPassed")
    return run_and_count(p)


@pytest.mark.parametrize(
    "ttl, clock, message",
    [
        (0, None, "ttl_seconds must be positive"),
        (-5, None, "ttl_seconds must be positive"),
        (float("inf"), None, "ttl_seconds must be positive and finite"),
        ("1d", None, "ttl_seconds must be a number of seconds"),
        (True, None, "ttl_seconds must be a number of seconds"),
        (10, 12.0, "clock must be a callable"),
    ],
)
def test_settings_are_checked_at_construction(ttl, clock, message):
    with pytest.raises(ValueError, match=message):
        DeduplicateByMessageId(ttl_seconds=ttl, clock=clock if clock is not None else TickingClock())


@pytest.mark.parametrize(
    "expires_at, now, within",
    [(None, 5.0, False), (10.0, 5.0, True), (10.0, 9.999, True), (10.0, 10.0, False), (10.0, 50.0, False)],
)
def test_within_ttl(expires_at, now, within):
    assert within_ttl(expires_at, now) is within


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
    "now, state_after, timer_set_to",
    [
        (40.0, 100.0, [100.0]),  # fired early (as the FnApiRunner does): keep the state, fire again at 100
        (99.5, 100.0, [100.0]),
        (100.0, None, []),  # on time: clear
        (250.0, None, []),  # late (as the BundleBasedDirectRunner may be): clear
    ],
)
def test_expiry_timer_sets_itself_again_until_the_ttl_has_passed(now, state_after, timer_set_to):
    fn = _DropRepeatsFn(ttl_seconds=TTL, clock=_FixedClock(now))
    seen_until, expiry = _FakeState(100.0), _FakeTimer()
    fn.expire(seen_until=seen_until, expiry=expiry)
    assert (seen_until.value, expiry.set_to) == (state_after, timer_set_to)


def test_expiry_timer_without_state_does_nothing():
    fn = _DropRepeatsFn(ttl_seconds=TTL, clock=_FixedClock(500.0))
    seen_until, expiry = _FakeState(None), _FakeTimer()
    fn.expire(seen_until=seen_until, expiry=expiry)
    assert (seen_until.value, expiry.set_to) == (None, [])


def test_repeats_within_the_ttl_are_dropped_and_counted(runner_clock):
    stream = _stream(
        (0, [_op("m1", 1), _op("m2", 2)]),
        (10, [_op("m1", 3)]),  # 10 s after the first m1
        (89, [_op("m1", 4), _op("m2", 5)]),  # 99 s after the first copies: still inside the TTL
    )
    counts = _run(runner_clock, stream, [1, 2])
    assert counts == {"deduplicated": 3}


def test_a_repeat_does_not_extend_the_ttl(runner_clock):
    stream = _stream(
        (0, [_op("m1", 1)]),
        (90, [_op("m1", 2)]),  # dropped; the TTL still ends at 100, not at 190
        (30, [_op("m1", 3)]),  # at 120: a new first delivery
        (50, [_op("m1", 4)]),  # at 170: inside the TTL of the delivery at 120
    )
    counts = _run(runner_clock, stream, [1, 3])
    assert counts == {"deduplicated": 2}


def test_a_repeat_after_the_ttl_passes_again_and_starts_a_new_ttl(runner_clock):
    stream = _stream(
        (0, [_op("m1", 1)]),
        (150, [_op("m1", 2)]),  # the timer at 100 has cleared m1's state: passes
        (10, [_op("m1", 3)]),  # inside the new TTL (from 150): dropped
        (TTL, [_op("m1", 4)]),  # at exactly 150 + TTL: passes
    )
    counts = _run(runner_clock, stream, [1, 2, 4])
    assert counts == {"deduplicated": 1}


def test_ops_without_a_message_id_are_never_repeats(runner_clock):
    stream = _stream(
        (0, [_op("", 1), _op("", 2)]),
        (1, [_op("", 3), _op("m1", 4)]),
        (1, [_op("m1", 5)]),
    )
    counts = _run(runner_clock, stream, [1, 2, 3, 4])
    assert counts == {"deduplicated": 1}


def test_timers_firing_early_on_the_fnapi_runner_keep_state_until_the_ttl(ticking_clock):
    """The batch FnApiRunner fires processing-time timers by the wall clock, right after the bundle that
    set them, far before the TTL ends by the injected clock. Each firing must set the timer again rather
    than clear the state; the clock (one second per reading) is then read until it has passed the last
    TTL end, and the run still ends. (All input reaches the stage in its first bundle here, before any
    timer fires: the timer check itself is unit-tested above.)"""
    ttl = 20
    ops = [_op("m1", 1), _op("m1", 2), _op("m2", 3), _op("", 4), _op("m2", 5)]
    p = batch_pipeline()
    out = (
        p
        | "Ops" >> beam.Create(ops)
        | "Dedup" >> DeduplicateByMessageId(ttl_seconds=ttl, clock=ticking_clock)
    )
    assert_that(_numbers(out), equal_to([1, 3, 4]), label="CheckPassed")
    counts = run_and_count(p)
    assert counts == {"deduplicated": 2}
    # The ops with ids read the clock at 1 to 4, so m2's TTL ends at 3 + 20 = 23. Had the first, early
    # firing cleared the state, the clock would have been read twice more (to 6), not up to 23.
    assert ticking_clock.now() >= 3 + ttl
