"""Progress lines: the counts so far, from counters and gauges with fixed names."""

import logging
import threading

import pytest

from pipeline.progress import ProgressReporter, progress_line

TOTALS = {
    "events_read": 120,
    "events_written:Lead:create": 50,
    "events_written:Account:update": 30,
    "filtered:integration_disabled": 10,
    "filtered:no_action_for_track": 5,
    "deduplicated": 5,
    "dead_letter:missing_email": 2,
    "stale_fields_skipped": 3,
    "api_calls": 6,
}


@pytest.mark.parametrize(
    "gauges, extra, tail",
    [
        ({}, 2, "API calls 8 (0.1000 per event written)"),
        (
            {"api_calls_remaining": 99000, "event_time_lag_seconds": 4},
            0,
            "API calls 6 (0.0750 per event written), org API calls remaining 99000, "
            "writer 4 s behind event time",
        ),
    ],
)
def test_progress_line(gauges, extra, tail):
    assert progress_line(TOTALS, gauges, extra) == (
        "progress: read 120, written 80, filtered 15, deduplicated 5, dead-lettered 2, "
        "stale fields skipped 3, " + tail
    )


def test_nothing_written_yet_has_no_calls_per_event():
    assert progress_line({"events_read": 3}, {}) == (
        "progress: read 3, written 0, filtered 0, deduplicated 0, dead-lettered 0, stale fields skipped 0, "
        "API calls 0"
    )


def test_the_reporter_logs_at_its_interval_until_stopped(caplog):
    reads = threading.Semaphore(0)

    def read():
        reads.release()
        return {"events_read": 1}, {}

    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with ProgressReporter(read, interval=0.01):
            # The second reading comes after the first line was logged.
            assert reads.acquire(timeout=5) and reads.acquire(timeout=5)
    assert any(r.getMessage().startswith("progress: read 1,") for r in caplog.records)
