"""The Flex Template's entry file submits the job and returns without waiting for it (Google's launcher
requires it), with the same checks before anything is read as `python -m pipeline`."""

import importlib.util
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


def test_a_launch_refuses_a_summary_file_it_could_not_write(org, tmp_path, capsys):
    args = [f"--input={EVENTS}", *connection_flags(org), f"--summary_output={tmp_path}/summary.json"]
    assert _entry().launch(args, environ(org)) == 2
    err = capsys.readouterr().err
    assert err.startswith("beamforce: configuration error: --summary_output needs the finished job's")
    assert org.admin("GET", "/_emulator/calls")["total"] == 0  # refused before logging in
