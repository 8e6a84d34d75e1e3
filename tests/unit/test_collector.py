"""The collector policy of `python -m pipeline`: young objects automatically, the rest on a timer."""

import gc
import threading

import pytest

from pipeline.collector import YOUNG_THRESHOLD, collect_old_objects_on_a_timer, leave_objects_to_the_exit


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_old_generations_are_left_to_the_timer_which_collects_them_all(thresholds) -> None:
    stop = threading.Event()
    full_before = gc.get_stats()[2]["collections"]
    thread = collect_old_objects_on_a_timer(every=0.01, stop=stop)
    young, middle, old = gc.get_threshold()
    assert young == YOUNG_THRESHOLD
    assert middle >= 1_000_000 and old >= 1_000_000  # never reached in practice
    for _ in range(500):  # at most 5 s
        if gc.get_stats()[2]["collections"] >= full_before + 2:
            break
        stop.wait(0.01)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert gc.get_stats()[2]["collections"] >= full_before + 2


def test_a_timer_that_never_fires_is_refused(thresholds) -> None:
    with pytest.raises(ValueError, match="every must be more than 0 seconds, not 0"):
        collect_old_objects_on_a_timer(every=0)


def test_at_the_exit_the_objects_are_left_out_of_collections() -> None:
    assert gc.get_freeze_count() == 0
    held = [[n] for n in range(1_000)]  # tracked objects the exit's collections would go over
    try:
        leave_objects_to_the_exit()
        assert gc.get_freeze_count() >= len(held)
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
