"""DeduplicateByMessageId: streaming deduplication of record operations by Segment messageId, with a TTL."""

import time
from collections.abc import Callable

import apache_beam as beam
from apache_beam.coders import FloatCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from schemas.records import RecordOp
from transforms import metrics

_NO_MESSAGE_ID = "no_message_id"


def is_repeat(seen_until: float | None, now: float) -> bool:
    """Whether a messageId last let through with expiry `seen_until` (None: never) is a repeat `now`.

    Once the expiry has passed the messageId counts as new, even if the runner has not yet fired the
    timer that clears it: when timers fire differs between runners, the expiry in state does not.
    """
    return seen_until is not None and now < seen_until


def rearm_time(expires_at: float | None, now: float) -> float | None:
    """When a firing expiry timer must fire again, or None when the state it guards can be cleared.

    Runners may fire processing-time timers before their time (the FnApiRunner does at bundle ends),
    so the stored expiry, not the firing, decides.
    """
    if expires_at is not None and now < expires_at:
        return expires_at
    return None


class _KeyByMessageId(beam.DoFn):
    """(messageId, op) on the main output; ops without a messageId, which are never repeats, on the side."""

    def process(self, op: RecordOp):
        if op.message_id:
            yield op.message_id, op
        else:
            yield beam.pvalue.TaggedOutput(_NO_MESSAGE_ID, op)


class _DropRepeatsFn(beam.DoFn):
    """Lets the first op of each messageId through and drops the others until the TTL has passed.

    State per messageId: the time the TTL ends (its presence is the seen flag), cleared by a timer.
    """

    SEEN_UNTIL = ReadModifyWriteStateSpec("seen_until", FloatCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.REAL_TIME)

    def __init__(self, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self.deduplicated = Metrics.counter(metrics.NAMESPACE, metrics.DEDUPLICATED)

    def process(
        self,
        element: tuple[str, RecordOp],
        seen_until=beam.DoFn.StateParam(SEEN_UNTIL),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, op = element
        now = self._clock()
        if is_repeat(seen_until.read(), now):
            # The TTL is not extended: Segment's deduplication window runs from the first delivery.
            self.deduplicated.inc()
            return
        expires_at = now + self._ttl
        seen_until.write(expires_at)
        expiry.set(expires_at)
        yield op

    @on_timer(EXPIRY)
    def expire(
        self,
        seen_until=beam.DoFn.StateParam(SEEN_UNTIL),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        again = rearm_time(seen_until.read(), self._clock())
        if again is None:
            seen_until.clear()
        else:
            expiry.set(again)


class DeduplicateByMessageId(beam.PTransform):
    """Drops RecordOps whose messageId was already let through in the last `ttl_seconds` (processing time).

    Modelled on Beam's DeduplicatePerKey with a processing-time duration. A repeat seen within the TTL is
    dropped and counted (`deduplicated`) but does not extend the TTL: like Segment's own deduplication,
    the window runs from the first delivery, so a messageId repeated forever still passes once per TTL.
    Ops with an empty messageId are never repeats and pass without state.

    State per messageId and window: one float (the TTL's end), cleared by a processing-time timer once
    the TTL has passed; a timer that fires early sets itself again for the TTL's end. Apply it to
    globally windowed input: like DeduplicatePerKey, copies in different windows are not repeats.
    `clock` gives processing time in seconds; it must be picklable (a module-level function or a small
    class) and agree with the runner's processing time, as time.time does.
    """

    def __init__(self, ttl_seconds: float = 86_400, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        if not ttl_seconds > 0:
            raise ValueError(
                f"ttl_seconds must be a positive number of seconds (e.g. 86400 for Segment's 24 hours), "
                f"not {ttl_seconds!r}"
            )
        if not callable(clock):
            raise ValueError(f"clock must be a callable returning seconds, like time.time, not {clock!r}")
        self._ttl = float(ttl_seconds)
        self._clock = clock

    def expand(self, ops: beam.PCollection) -> beam.PCollection:
        keyed = ops | "KeyByMessageId" >> beam.ParDo(_KeyByMessageId()).with_output_types(
            tuple[str, RecordOp]
        ).with_outputs(_NO_MESSAGE_ID, main="keyed")
        firsts = keyed.keyed | "DropRepeats" >> beam.ParDo(
            _DropRepeatsFn(self._ttl, self._clock)
        ).with_output_types(RecordOp)
        return (firsts, keyed[_NO_MESSAGE_ID]) | "Flatten" >> beam.Flatten().with_output_types(RecordOp)
