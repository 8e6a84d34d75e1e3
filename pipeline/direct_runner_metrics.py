"""A fix for the local streaming runner's lost counters, applied only when the job runs on it.

The BundleBasedDirectRunner (apache-beam 2.77) keeps one StateSampler per worker thread, and the
sampler's scoped_state() caches the MetricsContainer it was first given for each step: the counters of a
step's later bundles on that thread then go to a container that was already committed, and are lost.
Under streaming a step runs many small bundles, so the summary would not add up. Giving every bundle a
fresh sampler keeps each bundle's counters in its own container. Nothing else of the runner changes.
"""

import contextlib
import threading

from apache_beam.runners.direct import executor
from apache_beam.runners.worker import statesampler
from apache_beam.utils import counters

_lock = threading.Lock()
_original = executor.TransformExecutor.call


def _call_with_fresh_sampler(self, state_sampler) -> None:
    fresh = statesampler.StateSampler("", counters.CounterFactory())
    statesampler.set_current_tracker(fresh)
    try:
        _original(self, fresh)
    finally:
        statesampler.set_current_tracker(state_sampler)


def install() -> None:
    """Makes the DirectRunner count every bundle (idempotent)."""
    with _lock:
        executor.TransformExecutor.call = _call_with_fresh_sampler


def uninstall() -> None:
    with _lock:
        executor.TransformExecutor.call = _original


@contextlib.contextmanager
def counting_every_bundle():
    install()
    try:
        yield
    finally:
        uninstall()
