"""Helpers for the composites' TestPipeline tests: the batch runner, and reading counters back."""

import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline

# The default DirectRunner first tries to download Prism (no network here); FnApiRunner is the
# batch runner with metrics, state and timers that works offline.
RUNNER = "FnApiRunner"


def run_and_count(p: TestPipeline) -> dict[str, int]:
    """Runs `p` (its assert_that checks raise here) and returns its "beamforce" counters."""
    result = p.run()
    result.wait_until_finish()
    totals: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace("beamforce"))["counters"]:
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + c.committed
    return totals


@pytest.fixture
def p() -> TestPipeline:
    return TestPipeline(runner=RUNNER)
