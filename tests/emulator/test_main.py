"""`python -m emulator serve`: the process runs with the collector policy of pipeline/collector.py."""

import gc

import pytest

from emulator import __main__ as emulator_main
from emulator import server
from pipeline.collector import YOUNG_THRESHOLD


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_the_org_is_served_with_old_objects_left_to_the_timer(thresholds, monkeypatch, tmp_path):
    seen = {}

    def serve(host, port, data_dir, config, **options):
        seen["thresholds"] = gc.get_threshold()
        seen["args"] = (host, port, data_dir, config)

    gc.set_threshold(700, 10, 10)  # Python's default
    monkeypatch.setattr(server, "serve", serve)
    assert emulator_main.main(["serve", "--data-dir", str(tmp_path)]) == 0
    young, middle, old = seen["thresholds"]
    assert young == YOUNG_THRESHOLD
    assert middle >= 1_000_000 and old >= 1_000_000
    assert seen["args"] == ("127.0.0.1", 0, str(tmp_path), None)
