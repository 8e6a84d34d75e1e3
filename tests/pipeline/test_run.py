"""The run: metrics gathered from Beam's results, and a whole run's dead letters where its summary says."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics import Metrics
from apache_beam.metrics.cells import StringSetData
from apache_beam.metrics.execution import MetricKey, MetricResult
from apache_beam.metrics.metricbase import MetricName
from apache_beam.options.pipeline_options import PipelineOptions

from emulator.process import start_emulator
from examples.brokers import popen_interruptible
from pipeline.main import NAMESPACE, counters, main, run
from tests.e2e.conftest import ALLOCATION_USED_UP, stderr_until

REPO = Path(__file__).resolve().parents[2]
# One event the destination takes (integrations.Salesforce: true): one Lead to write.
IDENTIFY = {
    "type": "identify",
    "messageId": "m1",
    "userId": "u1",
    "traits": {"email": "m1@example.com"},
    "integrations": {"Salesforce": True},
}


class _Result:
    """A PipelineResult whose metrics query answers the given counters and string sets."""

    def __init__(self, counters: list[tuple], string_sets: list[tuple]):
        self._query = {
            "counters": [_metric(*c) for c in counters],
            "string_sets": [_metric(*s) for s in string_sets],
        }

    def metrics(self) -> "_Result":
        return self

    def query(self, _filter: object) -> dict:
        return self._query


def _metric(step: str, name: str, committed: object, attempted: object) -> MetricResult:
    return MetricResult(MetricKey(step, MetricName(NAMESPACE, name)), committed, attempted)


@pytest.mark.parametrize(
    "string_sets, expected",
    [
        ([("Write", "field_names:trimmed", {"Lead.Title"}, {"Lead.Title"})], {"Lead.Title"}),
        (  # a runner's StringSetData rather than a plain set
            [("Write", "field_names:trimmed", StringSetData({"Lead.Title"}), None)],
            {"Lead.Title"},
        ),
        ([("Write", "field_names:trimmed", None, {"Lead.Title"})], {"Lead.Title"}),  # nothing committed
        ([("Write", "field_names:trimmed", None, StringSetData({"A.B"}))], {"A.B"}),
        (  # two steps, one name: joined
            [
                ("WriteLead", "field_names:trimmed", {"Lead.Title"}, None),
                ("WriteAccount", "field_names:trimmed", {"Account.Name", "Lead.Title"}, None),
            ],
            {"Lead.Title", "Account.Name"},
        ),
    ],
)
def test_counters_gathers_string_sets(string_sets, expected):
    result = _Result([("A", "events_read", 2, 2), ("B", "events_read", None, 3)], string_sets)
    assert counters(result) == ({"events_read": 5}, {"field_names:trimmed": expected})


class _Note(beam.DoFn):
    def process(self, name: str):
        Metrics.counter(NAMESPACE, "fields_trimmed").inc()
        Metrics.string_set(NAMESPACE, "field_names:trimmed").add(name)
        yield name


def test_counters_reads_a_real_runs_string_sets():
    p = beam.Pipeline(options=PipelineOptions(["--runner", "FnApiRunner"]))
    _ = p | "Lead" >> beam.Create(["Lead.Title", "Lead.City"]) | "NoteLead" >> beam.ParDo(_Note())
    _ = p | "Account" >> beam.Create(["Account.Name"]) | "NoteAccount" >> beam.ParDo(_Note())
    result = p.run()
    result.wait_until_finish()
    assert counters(result) == (
        {"fields_trimmed": 3},
        {"field_names:trimmed": {"Lead.Title", "Lead.City", "Account.Name"}},
    )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with start_emulator(tmp_path_factory.mktemp("run-emulator")) as emu:
        yield emu


@pytest.fixture
def org(emulator, tmp_path, monkeypatch):
    """The emulator emptied, its credentials in the environment, and the current directory a fresh one."""
    emulator.admin("POST", "/_emulator/reset")
    monkeypatch.chdir(tmp_path)  # the default dead-letter location is under the current directory
    info = emulator.info
    monkeypatch.setenv("SALESFORCE_USERNAME", info["username"])
    monkeypatch.setenv("SALESFORCE_PASSWORD", info["password"])
    monkeypatch.setenv("SALESFORCE_SECURITY_TOKEN", info["security_token"])
    return emulator


def _flags(emu) -> list[str]:
    return ["--salesforce_login_url", emu.info["login_url"], "--salesforce_ca_bundle", emu.info["ca_bundle"]]


def _dead_letters(files_glob: str) -> list[dict]:
    return [json.loads(line) for f in sorted(glob.glob(files_glob)) for line in open(f, encoding="utf-8")]


def test_without_dead_letter_output_a_run_writes_them_where_its_summary_says(org, tmp_path, capsys):
    (tmp_path / "events.jsonl").write_text("not json\n")
    summary = run(["--input", "events.jsonl", "--summary_output", "summary.json", *_flags(org)])
    assert re.fullmatch(r"dead_letters/\d{8}T\d{6}Z/dead_letters", summary.dead_letter_output)
    assert [d["reason"] for d in _dead_letters(summary.dead_letter_files)] == ["invalid_json"]
    assert f"Dead letters: 1, written to {summary.dead_letter_output}-*.jsonl" in capsys.readouterr().out
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["dead_letter_output"] == summary.dead_letter_output


def test_retryable_dead_letters_exit_3_naming_the_files_to_replay(org, tmp_path, capsys):
    org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    (tmp_path / "events.jsonl").write_text(json.dumps(IDENTIFY) + "\n")
    assert main(["--input", "events.jsonl", *_flags(org)]) == 3
    [files] = re.findall(r"--input '(dead_letters/\S+-\*\.jsonl)'", capsys.readouterr().err)
    assert [(d["reason"], d["retryable"]) for d in _dead_letters(files)] == [("REQUEST_LIMIT_EXCEEDED", True)]


@pytest.mark.parametrize(
    "flag, value, message",
    [
        (
            "--summary_output",
            "{input}/summary.json",
            "--summary_output '{input}/summary.json' cannot be written: give a file in an existing directory",
        ),
        (
            "--dead_letter_output",
            "out/",
            "--dead_letter_output 'out/' names a directory, not a file name prefix: give a prefix such as "
            "'out/dead_letters' (files dead_letters-SSSSS-of-NNNNN.jsonl in that directory)",
        ),
        (
            # Found by a hostile review: the first --input was silently not read.
            "--input",
            "{input}",
            "--input is given 2 times, and a run takes one (only the last would count): give it once: one "
            "glob matches several files, e.g. --input 'events/*.jsonl'",
        ),
    ],
)
def test_unwritable_outputs_exit_2_before_any_login(tmp_path, monkeypatch, capsys, flag, value, message):
    monkeypatch.chdir(tmp_path)
    events = tmp_path / "events.jsonl"
    events.write_text("{}\n")
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
        monkeypatch.setenv(name, "x")
    # A login URL nothing listens on: reaching the login would fail differently (exit 1).
    argv = ["--input", str(events), "--salesforce_login_url", "https://127.0.0.1:9", flag]
    assert main([*argv, value.replace("{input}", str(events))]) == 2
    err = capsys.readouterr().err
    assert err == f"beamforce: configuration error: {message.replace('{input}', str(events))}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


def _interrupt(_):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "raised, expected",
    [
        (None, True),  # Ctrl-C inside a step, as Beam's in-process runner re-raises it
        (ValueError("a bug"), False),
    ],
)
def test_ctrl_c_inside_a_step_is_told_from_a_failure(raised, expected):
    from pipeline.main import interrupted_by_user

    p = beam.Pipeline(runner="FnApiRunner")
    _ = p | beam.Create([1]) | "Fail" >> beam.Map(_interrupt if raised is None else _raise(raised))
    with pytest.raises(Exception) as error:
        p.run()
    assert interrupted_by_user(error.value) is expected


def _raise(error):
    def fail(_):
        raise error

    return fail


@pytest.mark.parametrize("sent, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_stops_the_run_as_ctrl_c_does_with_status_143(monkeypatch, sent, status):
    # Found by a hostile review: docker stop (SIGTERM) killed the run with no summary.
    def run_until_signalled(argv):
        os.kill(os.getpid(), sent)
        time.sleep(30)  # the handler raises in this thread before the sleep ends
        raise AssertionError("the signal was not handled")

    monkeypatch.setattr("pipeline.main.run", run_until_signalled)
    # Python's own Ctrl-C handler, as an interactive run has it: a suite started in the background by a
    # shell ignores SIGINT.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert main(["--input", "events.jsonl"]) == status
    finally:
        signal.signal(signal.SIGINT, previous)
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("sent, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_run_waiting_for_the_api_allocation_stops_at_once_on_a_signal(org, tmp_path, sent, status):
    """Found by a review: Ctrl-C on a run waiting for a used-up allocation did not stop it; the writers
    went on checking the limits (5 s, 10 s, 20 s, ... up to 5 minutes) for as long as it stayed used up."""
    org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    (tmp_path / "events.jsonl").write_text(json.dumps(IDENTIFY) + "\n")
    argv = [sys.executable, "-m", "pipeline", "--input", "events.jsonl", "--on_api_limit", "wait"]
    # SIGINT's default disposition in the child: a suite started in the background ignores SIGINT.
    proc = popen_interruptible(
        [*argv, *_flags(org)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    before: list[str] = []
    try:
        before = stderr_until(proc, ALLOCATION_USED_UP)  # waiting for the allocation
        proc.send_signal(sent)
        # The first wait is 5 s, the next 10 s: without the stop, the run would still be waiting.
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, "".join(before) + err
    assert "checking its limits again" not in err  # no second wait
    assert "Interrupted: the run stopped before its end" in err
    assert org.admin("GET", "/_emulator/records/Lead")["records"] == []
