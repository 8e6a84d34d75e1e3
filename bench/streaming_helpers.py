"""What bench/streaming_bench.py runs inside its pipelines: a wall-clock feed, arrival and write records, RSS samples.

The BundleBasedDirectRunner runs every DoFn in this process; the DoFns here are pickled by reference to
this module, so the records below are module globals that the bench reads once a run has ended (as the
streaming tests' clocks are).

How events are fed at a steady rate: PeriodicImpulse (a splittable DoFn) does not run on the
BundleBasedDirectRunner of apache-beam 2.77 (its streaming GroupByKey override is applied before the SDF
expansion adds a GroupByKey, and the runner's SDF driver does not take `defer_remainder(time)`), so the
feed is a TestStream whose processing-time steps are made real, in two parts that hold while
`wall_clock_test_stream()` does:

- the runner's TestStream clock is `WallClock`, which reads time.time(): processing-time timers fire by
  the wall clock, the same clock the pipeline's DoFns read;
- the TestStream's script is read through `_paced`, which holds each `advance_processing_time(d)` step
  until the wall clock has moved d past the previous one. It does not sleep through the wait: that runner
  executes every bundle on one thread, and the TestStream reads its next step only when nothing else is
  running, so the step is handed back as a no-op (after a sleep of at most POLL_SECONDS) and read again
  the next time the runner is idle; timers and writes go on in between.

So events enter the pipeline at the given rate in wall-clock time when the runner keeps up, and as soon
as it is free when it does not; that delay is part of the measured latency, which runs from each event's
scheduled arrival, not from when the runner got round to emitting it.
"""

import collections
import contextlib
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.runners.direct import direct_runner
from apache_beam.runners.direct.test_stream_impl import _TestStream
from apache_beam.testing.test_stream import ProcessingTimeEvent
from apache_beam.testing.test_stream import TestStream as Stream  # a "Test*" name would be collected
from apache_beam.transforms.window import TimestampedValue

from schemas.dead_letter import DeadLetter
from schemas.events import EventLine
from schemas.records import RecordOp, record_key
from transforms import metrics
from transforms.batch_writer import WrittenRecord
from transforms.result import Result

SOURCE = "bench-feed"


def rss_kib() -> int:
    """This process's resident set size (VmRSS), in KiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Feed:
    """The current run's schedule, arrivals and writes (one run at a time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset([], 1.0)

    def reset(self, keys: Sequence[str], rate: float) -> None:
        with self.lock:
            self.keys = list(keys)  # record key of event seq (1-based) at keys[seq - 1]
            self.rate = rate
            self.origin: float | None = None  # wall time of the feed's first step
            self.pending: dict[str, collections.deque] = collections.defaultdict(collections.deque)
            self.source_lag: list[float] = []  # emitted - scheduled, per event
            self.latency: list[float] = []  # written - scheduled, per event
            self.arrived = 0
            self.written_events = 0
            self.unmatched_writes = 0  # written events with no arrival recorded (a bench bug if not 0)
            self.last_written: float | None = None

    def scheduled(self, seq: int) -> float:
        assert self.origin is not None
        return self.origin + seq / self.rate

    def start(self, now: float) -> None:
        with self.lock:
            if self.origin is None:
                self.origin = now

    def arrive(self, seq: int, now: float) -> None:
        with self.lock:
            due = self.scheduled(seq)
            self.pending[self.keys[seq - 1]].append(due)
            self.source_lag.append(now - due)
            self.arrived += 1

    def write(self, key: str, events: int, now: float) -> None:
        with self.lock:
            queue = self.pending.get(key)
            for _ in range(events):
                if not queue:
                    self.unmatched_writes += 1
                    continue
                self.latency.append(now - queue.popleft())
            self.written_events += events
            self.last_written = now


FEED = _Feed()


POLL_SECONDS = 0.005  # the longest the feed holds the runner's one thread while waiting for a step


class WallClock:
    """The DirectRunner's TestStream clock, on the wall clock: time passes by itself, steps move nothing."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def time(self) -> float:
        return time.time()

    def advance_time(self, advance_by) -> None:
        pass


def _paced(events: Iterable) -> Iterator:
    """The TestStream's events, each processing-time step held until the wall clock has got there."""
    target: float | None = None
    for event in events:
        if not isinstance(event, ProcessingTimeEvent):
            yield event
            continue
        now = time.time()
        if target is None:
            target = now
            FEED.start(now)
        target += float(event.advance_by)
        while now < target:
            time.sleep(min(POLL_SECONDS, target - now))
            yield ProcessingTimeEvent(0)  # hands the runner's thread back: read again when it is idle
            now = time.time()


@contextlib.contextmanager
def wall_clock_test_stream() -> Iterator[None]:
    """TestStream pipelines run while this holds follow the wall clock (see the module's docstring)."""
    saved_clock, saved_script = direct_runner.TestClock, _TestStream.__dict__["events_from_script"]
    direct_runner.TestClock = WallClock
    _TestStream.events_from_script = staticmethod(lambda events: _paced(saved_script.__func__(events)))
    try:
        yield
    finally:
        direct_runner.TestClock = saved_clock
        _TestStream.events_from_script = saved_script


class _MarkArrival(beam.DoFn):
    """Records each event's arrival (and counts it read, as ReadEvents does for files)."""

    def __init__(self) -> None:
        self.events_read = Metrics.counter(metrics.NAMESPACE, metrics.EVENTS_READ)

    def process(self, line: EventLine):
        FEED.arrive(line.seq, time.time())
        self.events_read.inc()
        yield line


class RecordWritten(beam.DoFn):
    """After the writer: each WrittenRecord ends the wait of the oldest `events` events of its record."""

    def process(self, record: WrittenRecord):
        FEED.write(record_key(record.sobject, record.match_value), record.events, time.time())


class PacedEvents(beam.PTransform):
    """JSON lines as the pipeline's source, released at `rate` a second in ticks of `tick` seconds of
    wall-clock time (under wall_clock_test_stream): Result(EventLines, no dead letters).

    Event i (1-based) is due at the feed's start + i / rate, and leaves with the first tick at or after
    that. Element timestamps and the watermark follow `event_times`. After the last event the feed waits
    `tail_seconds` more (buffers are then flushed by age, as in a stream that goes on), then ends.
    """

    def __init__(
        self,
        lines: Sequence[str],
        event_times: Sequence[float],
        rate: float,
        tick: float = 0.05,
        tail_seconds: float = 0.0,
    ) -> None:
        super().__init__()
        if not rate > 0 or not tick > 0 or round(tick * 1000) != tick * 1000:
            raise ValueError("rate must be above 0 and tick a whole number of milliseconds above 0")
        self._lines = lines
        self._times = event_times
        self._rate = rate
        self._tick = tick
        self._tail = tail_seconds

    def expand(self, pbegin: beam.pvalue.PBegin):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        stream = Stream()
        n, sent, k, watermark = len(self._lines), 0, 0, None
        while sent < n:
            k += 1
            stream = stream.advance_processing_time(self._tick)
            due = min(n, math.floor(k * self._tick * self._rate + 1e-9))
            if due > sent:
                stream = stream.add_elements(
                    [
                        TimestampedValue(EventLine(SOURCE, i + 1, self._lines[i]), self._times[i])
                        for i in range(sent, due)
                    ]
                )
                newest = round(max(self._times[sent:due]), 3)  # TestStream's watermark is in milliseconds
                if watermark is None or newest > watermark:
                    stream = stream.advance_watermark_to(newest)
                    watermark = newest
                sent = due
        if self._tail > 0:
            stream = stream.advance_processing_time(round(self._tail, 3))
        stream = stream.advance_watermark_to_infinity()
        lines = (
            pbegin
            | "Feed" >> stream.with_output_types(EventLine)
            | "MarkArrival" >> beam.ParDo(_MarkArrival()).with_output_types(EventLine)
        )
        none = lines | "NoDeadLetters" >> beam.FlatMap(lambda _: ()).with_output_types(DeadLetter)
        return Result(lines, none)


# -- memory -------------------------------------------------------------------------------------------


class _Memory:
    def __init__(self) -> None:
        self.reset([])

    def reset(self, thresholds: Sequence[int]) -> None:
        self.thresholds = sorted(thresholds)
        self.count = 0
        self.samples: list[tuple[int, int, float]] = []  # (elements out, RSS KiB, wall time)


MEMORY = _Memory()


class ExpandChunk(beam.DoFn):
    """Chunk number c -> `size` RecordOps with messageIds distinct from every other chunk's."""

    def __init__(self, size: int) -> None:
        self._size = size

    def process(self, chunk: int):
        for j in range(self._size):
            n = chunk * self._size + j
            yield RecordOp(
                "Lead",
                "Email",
                f"p{n % 1000}@example.com",
                {"Title": "Engineer"},
                message_id=f"msg-{n:012d}",
            )


class SampleRss(beam.DoFn):
    """Counts the elements that get here and samples the process's RSS as each threshold is crossed."""

    def process(self, element):
        MEMORY.count += 1
        while MEMORY.thresholds and MEMORY.count >= MEMORY.thresholds[0]:
            MEMORY.thresholds.pop(0)
            MEMORY.samples.append((MEMORY.count, rss_kib(), time.time()))
        return ()


def chunk_stream(chunks: int, chunk_seconds: float) -> Stream:
    """Chunk numbers 0..chunks-1, one every `chunk_seconds` of wall-clock time (0: as fast as the runner
    takes them); the watermark stays put until the end, as a live source's would."""
    stream = Stream()
    for c in range(chunks):
        if chunk_seconds > 0:
            stream = stream.advance_processing_time(round(chunk_seconds, 3))
        stream = stream.add_elements([c])
    return stream.advance_watermark_to_infinity()
