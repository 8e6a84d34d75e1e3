"""Counts that a stage also hands on as data, so that a bounded run can total them inside the pipeline.

Beam's metrics reach only the process that waits for the job, and a job launched without waiting (a
Dataflow Flex Template) has no such process. So every DoFn that counts does it through a `Counts`:
each count goes to the Beam metric of that name (namespace beamforce) as before, and is also added up
for the bundle; the DoFn's `finish_bundle` hands the bundle's totals on as one `Tally` element on its
TALLY output, in the global window. A bundle that fails and is retried has its outputs dropped, its
tally among them, so the tallies count what committed metrics count.

The stage registers that output with `collect()`; `collected()` gives the graph every tally output of
its pipeline, which `pipeline.summary_stage` totals into the run's summary. Streaming runs never end,
so they read their counts from the metrics instead and leave the tallies unused.
"""

import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from transforms import metrics

TALLY = "tally"


@dataclass
class Tally:
    """Counter totals and string-set values, as Summary.from_metrics takes them."""

    counters: dict[str, int] = field(default_factory=dict)
    string_sets: dict[str, set[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.counters or self.string_sets)

    def merge(self, other: "Tally") -> "Tally":
        """Adds `other` into this tally and returns it."""
        for name, n in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + n
        for name, values in other.string_sets.items():
            self.string_sets.setdefault(name, set()).update(values)
        return self


class Counts:
    """A DoFn's counters and string sets: Beam metrics, also tallied per bundle (see the module doc).

    Counted on the bundle's own thread (process, finish_bundle); `emit()` in finish_bundle hands the
    bundle's tally on and starts the next one.
    """

    def __init__(self) -> None:
        self._counters: dict[str, object] = {}
        self._sets: dict[str, object] = {}
        self._tally = Tally()

    def inc(self, name: str, n: int = 1) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(metrics.NAMESPACE, name)
        counter.inc(n)
        counts = self._tally.counters
        counts[name] = counts.get(name, 0) + n

    def add(self, name: str, value: str) -> None:
        """Adds `value` to the string set `name`."""
        string_set = self._sets.get(name)
        if string_set is None:
            string_set = self._sets[name] = Metrics.string_set(metrics.NAMESPACE, name)
        string_set.add(value)
        self._tally.string_sets.setdefault(name, set()).add(value)

    def emit(self) -> Iterator[beam.pvalue.TaggedOutput]:
        """The bundle's tally on the TALLY output (nothing if it counted nothing), for finish_bundle."""
        tally, self._tally = self._tally, Tally()
        if tally:
            yield beam.pvalue.TaggedOutput(TALLY, GlobalWindows.windowed_value(tally))


class MergeTallies(beam.CombineFn):
    def create_accumulator(self) -> Tally:
        return Tally()

    def add_input(self, accumulator: Tally, tally: Tally) -> Tally:
        return accumulator.merge(tally)

    def merge_accumulators(self, accumulators: Iterable[Tally]) -> Tally:
        total = Tally()
        for accumulator in accumulators:
            total.merge(accumulator)
        return total

    def extract_output(self, accumulator: Tally) -> Tally:
        return accumulator


# Pipeline -> the tally outputs its stages registered (weak: a pipeline's entry goes with it).
_COLLECTED: "weakref.WeakKeyDictionary[beam.Pipeline, list[beam.PCollection]]" = weakref.WeakKeyDictionary()


def collect(tallies: beam.PCollection) -> None:
    """Registers a stage's TALLY output with its pipeline, for `collected()`."""
    _COLLECTED.setdefault(tallies.pipeline, []).append(tallies)


def collected(pipeline: beam.Pipeline) -> list[beam.PCollection]:
    """Every TALLY output registered in `pipeline` so far."""
    return list(_COLLECTED.get(pipeline, ()))
