"""What bench/streaming_bench.py runs inside its pipelines: a wall-clock feed, arrivals and writes, RSS.

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
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.runners.direct import direct_runner
from apache_beam.runners.direct.test_stream_impl import _TestStream
from apache_beam.testing.test_stream import ElementEvent, ProcessingTimeEvent, WatermarkEvent
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


def _paced(events: Iterable, catch_up: int = 0) -> Iterator:
    """The TestStream's events, each processing-time step held until the wall clock has got there.

    With `catch_up` above 0, a feed that has fallen behind schedule hands the runner everything already
    due in one step (one ElementEvent of at most `catch_up` elements, then the newest watermark), as a
    source that polls a backlog does; with 0 it hands over one script step at a time, however late.
    """
    target: float | None = None
    elements: list = []
    watermark = None

    def flush() -> Iterator:
        nonlocal elements, watermark
        if elements:
            yield ElementEvent(elements)
        if watermark is not None:
            yield watermark
        elements, watermark = [], None

    for event in events:
        if catch_up and isinstance(event, ElementEvent) and event.tag is None:
            elements.extend(event.timestamped_values)
            if len(elements) >= catch_up:
                yield from flush()
            continue
        if catch_up and isinstance(event, WatermarkEvent) and event.tag is None:
            watermark = event
            continue
        if not isinstance(event, ProcessingTimeEvent):
            yield from flush()
            yield event
            continue
        now = time.time()
        if target is None:
            target = now
            FEED.start(now)
        target += float(event.advance_by)
        if catch_up and now >= target:
            continue  # behind schedule: the next step's events are due too, so they go with these
        yield from flush()
        while now < target:
            time.sleep(min(POLL_SECONDS, target - now))
            yield ProcessingTimeEvent(0)  # hands the runner's thread back: read again when it is idle
            now = time.time()
    yield from flush()


@contextlib.contextmanager
def wall_clock_test_stream(catch_up: int = 0) -> Iterator[None]:
    """TestStream pipelines run while this holds follow the wall clock (see the module's docstring);
    `catch_up` as in `_paced`."""
    saved_clock, saved_script = direct_runner.TestClock, _TestStream.__dict__["events_from_script"]
    direct_runner.TestClock = WallClock
    _TestStream.events_from_script = staticmethod(
        lambda events: _paced(saved_script.__func__(events), catch_up)
    )
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


# -- where the runner's thread spends its time ----------------------------------------------------------


RUNNER_THREAD = "Thread: 0,"  # how the DirectRunner names its one executor thread (then the task's name)
# (what the thread is doing, how the qualified names of functions on its stack that say so end), first
# match wins
_STATES = (
    ("waiting for writes (WriteToSalesforce finishing its bundle)", ("._finish_oldest",)),
    ("the feed (mostly waiting for the wall clock)", ("_paced",)),
    ("the watermark monitor (it scans the timers of every key)", ("._MonitorTask.call",)),
)
OTHER_WORK = "bundles' own work (Beam and the pipeline's DoFns)"


class StackSampler(threading.Thread):
    """Samples the stack of the runner's executor thread every `every` seconds and counts what it was
    doing (see _STATES). The BundleBasedDirectRunner runs every bundle and its watermark monitor on that
    one thread, so the shares say what held the pipeline back."""

    def __init__(self, every: float = 0.005) -> None:
        super().__init__(name="bench-stack-sampler", daemon=True)
        self._every = every
        self._done = threading.Event()
        self.counts: collections.Counter = collections.Counter()

    def run(self) -> None:
        while not self._done.wait(self._every):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if names.get(ident, "").startswith(RUNNER_THREAD):
                    self.counts[_state_of(frame)] += 1

    def stop(self) -> dict[str, float]:
        """Stops sampling; the share of samples in each state."""
        self._done.set()
        self.join()
        total = sum(self.counts.values())
        return {state: n / total for state, n in self.counts.most_common()} if total else {}


def _state_of(frame) -> str:
    names = []
    while frame is not None:
        names.append(frame.f_code.co_qualname)
        frame = frame.f_back
    for state, endings in _STATES:
        if any(name.endswith(endings) for name in names):
            return state
    return OTHER_WORK


# -- memory -------------------------------------------------------------------------------------------


class _Memory:
    def __init__(self) -> None:
        self.reset([])

    def reset(self, thresholds: Sequence[int]) -> None:
        self.thresholds = sorted(thresholds)
        self.count = 0
        # (elements out, RSS KiB, wall time, the runner's per-key entries, those holding state or timers)
        self.samples: list[tuple[int, int, float, int, int]] = []
        self.keyed_states: dict | None = None  # the DirectRunner's, once the run has started
        # With a step label: that step's emptied per-key entries are dropped every `drop_every` elements.
        self.drop_label: str | None = None
        self.drop_every = 10_000
        self.dropped = 0


MEMORY = _Memory()


def runner_keys(keyed_states: dict | None) -> tuple[int, int]:
    """The per-key entries the DirectRunner keeps over all steps, and how many hold state or timers.

    The runner adds an entry the first time a key is seen and never removes it, even once a DoFn has
    cleared the key's state and timers: the difference is the runner's, not the pipeline's.
    """
    if not keyed_states:
        return 0, 0
    entries = live = 0
    for states in list(keyed_states.values()):
        for state in list(states.values()):
            entries += 1
            live += not _is_empty(state)
    return entries, live


def _is_empty(state) -> bool:
    return not (getattr(state, "state", None) or getattr(state, "timers", None))


def drop_emptied_keys(keyed_states: dict | None, label: str) -> int:
    """Drops the DirectRunner's per-key entries of the step labelled `label` that hold neither state nor
    timers, as runners that free a key's storage once its state is cleared do (Dataflow, Flink's state
    backends); returns how many. The DirectRunner would make a new entry if the key came again.

    Safe only between bundles of that step: the BundleBasedDirectRunner runs every bundle, and its
    watermark monitor, on one thread, so a DoFn of another step may call it.
    """
    if not keyed_states:
        return 0
    dropped = 0
    for transform, states in keyed_states.items():
        if getattr(transform, "full_label", None) != label:
            continue
        for key in [k for k, state in states.items() if k is not None and _is_empty(state)]:
            del states[key]
            dropped += 1
    return dropped


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
        if MEMORY.drop_label and MEMORY.count % MEMORY.drop_every == 0:
            MEMORY.dropped += drop_emptied_keys(MEMORY.keyed_states, MEMORY.drop_label)
        while MEMORY.thresholds and MEMORY.count >= MEMORY.thresholds[0]:
            MEMORY.thresholds.pop(0)
            MEMORY.samples.append((MEMORY.count, rss_kib(), time.time(), *runner_keys(MEMORY.keyed_states)))
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
