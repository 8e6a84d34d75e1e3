"""Progress lines while a job runs: the counts so far, read from the runner's metrics at intervals."""

import logging
import threading
from collections.abc import Callable, Mapping

from salesforce.errors import LOGIN_BLOCKS
from transforms import metrics
from transforms.batch_writer import login_paused

_log = logging.getLogger(__name__)


def progress_line(totals: Mapping[str, int], gauges: Mapping[str, int], extra_api_calls: int = 0) -> str:
    """One line of counts so far, from the counters and gauges of our namespace."""

    def total(prefix: str) -> int:
        return sum(v for k, v in totals.items() if k.startswith(prefix))

    read = totals.get(metrics.EVENTS_READ, 0)
    written = total("events_written:")
    calls = totals.get(metrics.API_CALLS, 0) + extra_api_calls
    parts = [
        f"read {read}",
        f"written {written}",
        f"filtered {total('filtered:')}",
        f"deduplicated {totals.get(metrics.DEDUPLICATED, 0)}",
        f"dead-lettered {total('dead_letter:')}",
        f"stale fields skipped {totals.get(metrics.STALE_FIELDS_SKIPPED, 0)}",
        f"API calls {calls}" + (f" ({calls / written:.4f} per event written)" if written else ""),
    ]
    if metrics.API_CALLS_REMAINING in gauges:
        parts.append(f"org API calls remaining {gauges[metrics.API_CALLS_REMAINING]}")
    if metrics.EVENT_TIME_LAG_SECONDS in gauges:
        parts.append(f"writer {gauges[metrics.EVENT_TIME_LAG_SECONDS]} s behind event time")
    line = "progress: " + ", ".join(parts)
    paused = [block for reason, block in LOGIN_BLOCKS.items() if gauges.get(login_paused(reason), 0) > 0]
    for block in paused:
        line += f"; WRITING PAUSED: {block.summary} (the source keeps the events). To fix: {block.fix}"
    return line


class ProgressReporter:
    """Logs a progress line every `interval` seconds from `read_metrics()` until stopped.

    For runners whose run() returns while the job runs (streaming, Dataflow, Flink); the in-process
    batch runner returns only at the end, and its writers log their own progress instead.
    """

    def __init__(
        self,
        read_metrics: Callable[[], tuple[Mapping[str, int], Mapping[str, int]]],
        interval: float,
        extra_api_calls: Callable[[], int] = lambda: 0,
    ) -> None:
        self._read = read_metrics
        self._interval = interval
        self._extra = extra_api_calls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="beamforce-progress", daemon=True)

    def __enter__(self) -> "ProgressReporter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                totals, gauges = self._read()
            except Exception as e:  # a runner that cannot report yet: try again next time
                _log.debug("no metrics yet: %s", e)
                continue
            _log.info("%s", progress_line(totals, gauges, self._extra()))
