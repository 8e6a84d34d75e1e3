"""DropStaleFields: streaming guard that keeps late events from overwriting a record's newer field values."""

import dataclasses
import time
from collections.abc import Callable, Mapping

import apache_beam as beam
from apache_beam.coders import FloatCoder, MapCoder, StrUtf8Coder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from schemas.records import RecordOp
from transforms import metrics
from transforms.dedup import check_ttl_and_clock, within_ttl


def drop_stale_fields(op: RecordOp, field_times: Mapping[str, str]) -> tuple[RecordOp, dict[str, str], int]:
    """`op` without the fields older than the times in `field_times`, the updated times, and how many went.

    `field_times` maps a lower-cased field name (Salesforce compares field names case-insensitively) to
    the latest event time seen for it. Times are ISO text that sorts as a string; "" (unknown) is older
    than any time. A field as old as the time held passes, so that replaying an event changes nothing.
    """
    times = dict(field_times)
    kept: dict[str, object] = {}
    for name, value in op.fields.items():
        folded = name.lower()
        held = times.get(folded)
        if held is not None and op.timestamp < held:
            continue
        kept[name] = value
        times[folded] = op.timestamp
    stale = len(op.fields) - len(kept)
    if stale:
        op = dataclasses.replace(op, fields=kept)
    return op, times, stale


def _key_by_record(op: RecordOp) -> tuple[str, RecordOp]:
    return op.key, op


_FIELD_TIMES = ReadModifyWriteStateSpec("field_times", MapCoder(StrUtf8Coder(), StrUtf8Coder()))
_EXPIRES_AT = ReadModifyWriteStateSpec("expires_at", FloatCoder())
_EXPIRY = TimerSpec("expiry", TimeDomain.REAL_TIME)
# Module-level so that the DoFn's parameter defaults are not calls (ruff B008).
_FIELD_TIMES_PARAM = beam.DoFn.StateParam(_FIELD_TIMES)
_EXPIRES_AT_PARAM = beam.DoFn.StateParam(_EXPIRES_AT)
_EXPIRY_PARAM = beam.DoFn.TimerParam(_EXPIRY)


class _DropStaleFieldsFn(beam.DoFn):
    """Per record: the latest event time per field, forgotten `ttl` seconds after the record's last op."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self.stale_fields = Metrics.counter(metrics.NAMESPACE, metrics.STALE_FIELDS_SKIPPED)

    def process(
        self,
        element: tuple[str, RecordOp],
        field_times=_FIELD_TIMES_PARAM,
        expires_at=_EXPIRES_AT_PARAM,
        expiry=_EXPIRY_PARAM,
    ):
        _, op = element
        now = self._clock()
        # State past its TTL is forgotten even if the timer that clears it has not fired yet.
        held = (field_times.read() or {}) if within_ttl(expires_at.read(), now) else {}
        op, times, stale = drop_stale_fields(op, held)
        if stale:
            self.stale_fields.inc(stale)
        if times:
            field_times.write(times)
            expires_at.write(now + self._ttl)
            expiry.set(now + self._ttl)
        yield op

    @on_timer(_EXPIRY)
    def expire(
        self,
        field_times=_FIELD_TIMES_PARAM,
        expires_at=_EXPIRES_AT_PARAM,
        expiry=_EXPIRY_PARAM,
    ):
        ends = expires_at.read()
        if within_ttl(ends, self._clock()):
            expiry.set(ends)
        else:
            field_times.clear()
            expires_at.clear()


class DropStaleFields(beam.PTransform[beam.PCollection[RecordOp], beam.PCollection[RecordOp]]):
    """Removes from each RecordOp the fields whose event time is older than one already seen for its record.

    Streaming writes each op as it comes, so an event that arrives late would overwrite a newer value.
    Per record (`op.key`) this remembers, per field name (case-insensitive), the latest event time
    (`op.timestamp`) seen; an op loses each field older than that (counted in `stale_fields_skipped`,
    one per field) and keeps the rest; a field of the same time passes (replays are harmless). The op
    always goes on, even with no fields left, so that its event is still counted downstream. Within the
    TTL, the same events in any order thus leave each record with the latest value of every field.

    State per record and window: one event time per field name the record's ops carried, and the TTL's
    end; every op for the record moves the TTL's end to `ttl_seconds` after it (processing time), and a
    processing-time timer clears the state then (a timer that fires early sets itself again). Apply it to
    globally windowed input. `clock` gives processing time in seconds; it must be picklable (a
    module-level function or a small class) and agree with the runner's processing time, as time.time does.
    """

    def __init__(self, ttl_seconds: float = 86_400, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        check_ttl_and_clock(ttl_seconds, clock)
        self._ttl = float(ttl_seconds)
        self._clock = clock

    def expand(self, ops: beam.PCollection[RecordOp]) -> beam.PCollection[RecordOp]:
        return (
            ops
            | "KeyByRecord" >> beam.Map(_key_by_record).with_output_types(tuple[str, RecordOp])
            | "DropStaleFields"
            >> beam.ParDo(_DropStaleFieldsFn(self._ttl, self._clock)).with_output_types(RecordOp)
        )
