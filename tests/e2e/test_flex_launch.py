"""The Flex Template's entry file submits the job and returns without waiting for it (Google's launcher
requires it), with the same checks before anything is read as `python -m pipeline`."""

import importlib.util
import json
from pathlib import Path

import pytest

from tests.e2e.conftest import connection_flags, environ, records

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ENTRY_FILE = ROOT / "deploy" / "flex-template" / "main.py"
EVENTS = ROOT / "examples" / "events" / "seed-calls.jsonl"


def _entry():
    spec = importlib.util.spec_from_file_location("flex_template_entry", ENTRY_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_launch_submits_the_job_and_returns(org, tmp_path, caplog):
    args = [f"--input={EVENTS}", *connection_flags(org), f"--dead_letter_output={tmp_path}/dead"]
    # The FnApiRunner runs the job inside run(); Dataflow's returns once the job is submitted.
    assert _entry().launch(args, environ(org)) == 0
    assert [r["Email"] for r in records(org, "Lead")] == ["peter.gibbons@example.com"]
    assert [r["Name"] for r in records(org, "Account")] == ["Teemo Industries"]
    assert "Submitted" in caplog.text and "not waiting for it" in caplog.text


def test_a_launch_that_does_not_wait_still_gets_its_summary_file(org, tmp_path):
    # The pipeline computes the summary and a worker writes it: no waiting launcher is needed.
    summary_path = tmp_path / "summary.json"
    args = [
        f"--input={EVENTS}",
        *connection_flags(org),
        f"--dead_letter_output={tmp_path}/dead",
        f"--summary_output={summary_path}",
    ]
    assert _entry().launch(args, environ(org)) == 0
    summary = json.loads(summary_path.read_text())
    calls = org.admin("GET", "/_emulator/calls")["total"]
    assert {k: summary[k] for k in ("events_read", "written", "filtered", "dead_lettered", "balanced")} == {
        "events_read": 3,
        "written": {"Account": {"create": 1}, "Lead": {"create": 2}},  # events, by record
        "filtered": {},
        "dead_lettered": {},
        "balanced": True,
    }
    assert summary["api_calls"] == calls  # the launcher's login and describes as well as the writers'
    assert summary["dead_letter_output"] == f"{tmp_path}/dead"


def test_a_streaming_launch_refuses_a_summary_file(org, tmp_path, capsys):
    args = [
        f"--input={EVENTS}",
        "--streaming",
        *connection_flags(org),
        f"--summary_output={tmp_path}/summary.json",
    ]
    assert _entry().launch(args, environ(org)) == 2
    err = capsys.readouterr().err
    assert err.startswith("beamforce: configuration error: --summary_output is written when a run ends")
    assert not (tmp_path / "summary.json").exists()
