"""DeduplicateByMessageId: streaming deduplication of record operations by Segment messageId, with a TTL."""

import math
import time
from collections.abc import Callable

import apache_beam as beam
from apache_beam.coders import FloatCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from schemas.records import MATCH_SEPARATOR, RecordOp
from transforms import metrics

_NO_MESSAGE_ID = "no_message_id"


def within_ttl(expires_at: float | None, now: float) -> bool:
    """Whether state whose TTL ends at `expires_at` (None: no state) still holds at `now`.

    Processing-time timers clear state once its TTL has passed, but runners fire them by their own
    clock, which may run ahead of ours (the local FnApiRunner fires them right after the bundle that set
    them) or behind it (the BundleBasedDirectRunner fires them only when its clock is moved). So the TTL
    end kept in state decides, both when an element arrives and when a timer fires: a timer that fires
    early is set again for the TTL end, and state past its TTL counts as gone even if not yet cleared.
    """
    return expires_at is not None and now < expires_at


def check_ttl_and_clock(ttl_seconds: float, clock: Callable[[], float]) -> None:
    """Raises ValueError unless `ttl_seconds` is a positive, finite number and `clock` can be called."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float):
        raise ValueError(
            f"ttl_seconds must be a number of seconds (e.g. 86400 for 24 hours), not {ttl_seconds!r}"
        )
    if not (ttl_seconds > 0 and math.isfinite(ttl_seconds)):
        raise ValueError(
            f"ttl_seconds must be positive and finite (e.g. 86400 for 24 hours), not {ttl_seconds!r}: "
            "state is kept that long and no longer"
        )
    if not callable(clock):
        raise ValueError(f"clock must be a callable returning seconds, like time.time, not {clock!r}")


class _KeyByMessageId(beam.DoFn):
    """(messageId, op) on the main output; ops without a messageId, which are never repeats, on the side.
    An event that triggers several actions gives one op per action: each is deduplicated on its own."""

    def process(self, op: RecordOp):
        if op.message_id:
            yield (f"{op.message_id}{MATCH_SEPARATOR}{op.action}" if op.action else op.message_id), op
        else:
            yield beam.pvalue.TaggedOutput(_NO_MESSAGE_ID, op)


_SEEN_UNTIL = ReadModifyWriteStateSpec("seen_until", FloatCoder())
_EXPIRY = TimerSpec("expiry", TimeDomain.REAL_TIME)
# Module-level so that the DoFn's parameter defaults are not calls (ruff B008).
_SEEN_UNTIL_PARAM = beam.DoFn.StateParam(_SEEN_UNTIL)
_EXPIRY_PARAM = beam.DoFn.TimerParam(_EXPIRY)


class _DropRepeatsFn(beam.DoFn):
    """Lets the first op of each messageId through and drops the others until the TTL has passed.

    State per messageId: the time the TTL ends (its presence is the seen flag), cleared by a timer.
    """

    def __init__(self, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self.deduplicated = Metrics.counter(metrics.NAMESPACE, metrics.DEDUPLICATED)

    def process(
        self,
        element: tuple[str, RecordOp],
        seen_until=_SEEN_UNTIL_PARAM,
        expiry=_EXPIRY_PARAM,
    ):
        _, op = element
        now = self._clock()
        if within_ttl(seen_until.read(), now):
            # The TTL is not extended: Segment's deduplication window runs from the first delivery.
            self.deduplicated.inc()
            return
        expires_at = now + self._ttl
        seen_until.write(expires_at)
        expiry.set(expires_at)
        yield op

    @on_timer(_EXPIRY)
    def expire(
        self,
        seen_until=_SEEN_UNTIL_PARAM,
        expiry=_EXPIRY_PARAM,
    ):
        expires_at = seen_until.read()
        if within_ttl(expires_at, self._clock()):
            expiry.set(expires_at)
        else:
            seen_until.clear()


class DeduplicateByMessageId(beam.PTransform[beam.PCollection[RecordOp], beam.PCollection[RecordOp]]):
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
        check_ttl_and_clock(ttl_seconds, clock)
        self._ttl = float(ttl_seconds)
        self._clock = clock

    def expand(self, ops: beam.PCollection[RecordOp]) -> beam.PCollection[RecordOp]:
        keyed = ops | "KeyByMessageId" >> beam.ParDo(_KeyByMessageId()).with_output_types(
            tuple[str, RecordOp]
        ).with_outputs(_NO_MESSAGE_ID, main="keyed")
        firsts = keyed.keyed | "DropRepeats" >> beam.ParDo(
            _DropRepeatsFn(self._ttl, self._clock)
        ).with_output_types(RecordOp)
        return (firsts, keyed[_NO_MESSAGE_ID]) | "Flatten" >> beam.Flatten().with_output_types(RecordOp)
