"""Helpers for the TestStream tests: the streaming runner, clocks the tests control, reading counters back.

Processing-time timers fire by the runner's clock, while our DoFns read an injected clock; the two must
agree, or a timer that the DoFn sets again for its TTL end fires for ever. Under TestStream the
BundleBasedDirectRunner's clock starts at 0 and moves only with `advance_processing_time`, and the runner
is idle between TestStream events, so `RunnerClock` reads that very clock: a test moves both at once,
without sleeping. On the batch FnApiRunner, timers fire by the wall clock, so `TickingClock` (far behind
it) makes every timer fire early; it moves one second per reading, so that the TTL ends eventually.
"""

import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.direct import direct_runner
from apache_beam.runners.direct.clock import TestClock
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline import direct_runner_metrics

STREAMING_RUNNER = "BundleBasedDirectRunner"  # the runner that runs TestStream here
BATCH_RUNNER = "FnApiRunner"

# The runners' clocks of the pipelines run so far (one per run), and the ticking clock's time. Module
# globals, since DoFns and their clocks are pickled; both runners run DoFns in this process.
_runner_clocks: list[TestClock] = []
_ticking = {"now": 0.0}


class _RecordedTestClock(TestClock):
    """The DirectRunner's TestStream clock, recorded so that RunnerClock can read it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _runner_clocks.append(self)


class RunnerClock:
    """Seconds on the processing-time clock of the running TestStream pipeline (needs `runner_clock`)."""

    def __call__(self) -> float:
        assert _runner_clocks, (
            "RunnerClock reads the DirectRunner's TestStream clock: use the runner_clock fixture"
        )
        return _runner_clocks[-1].time()


class TickingClock:
    """A clock that starts at 0 and moves one second each time it is read (reset by `ticking_clock`)."""

    def __call__(self) -> float:
        _ticking["now"] += 1.0
        return _ticking["now"]

    @staticmethod
    def now() -> float:
        return _ticking["now"]


@pytest.fixture
def runner_clock(monkeypatch) -> RunnerClock:
    # The DirectRunner makes its TestClock in run_pipeline; recording it is the one hook into the runner.
    monkeypatch.setattr(direct_runner, "TestClock", _RecordedTestClock)
    _runner_clocks.clear()
    yield RunnerClock()
    _runner_clocks.clear()


@pytest.fixture(autouse=True)
def direct_runner_counts_every_bundle():
    """The DirectRunner loses the counters of a step's later bundles on a thread (see
    pipeline/direct_runner_metrics.py): the fix the pipeline applies on that runner, here for tests."""
    with direct_runner_metrics.counting_every_bundle():
        yield


@pytest.fixture
def ticking_clock() -> TickingClock:
    _ticking["now"] = 0.0
    return TickingClock()


def streaming_pipeline() -> TestPipeline:
    return TestPipeline(runner=STREAMING_RUNNER, options=PipelineOptions([], streaming=True))


def batch_pipeline() -> TestPipeline:
    return TestPipeline(runner=BATCH_RUNNER)


def run_and_count(p: TestPipeline) -> dict[str, int]:
    """Runs `p` (its assert_that checks raise here) and returns its "beamforce" counters."""
    result = p.run()
    result.wait_until_finish()
    totals: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace("beamforce"))["counters"]:
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + c.committed
    return totals
