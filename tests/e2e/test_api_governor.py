"""The API budget options end to end: the share of the daily allocation, and the call rate limit."""

import glob
import json

import pytest

from pipeline.main import main
from tests.e2e.conftest import calls, connection_flags, environ, records, run_pipeline, write_lines

pytestmark = pytest.mark.e2e

ON = {"Salesforce": True}
ALLOCATION = 100_000  # the emulator's default daily allocation


def identify(n: int) -> dict:
    return {
        "type": "identify",
        "messageId": f"i{n}",
        "userId": f"user-{n}",
        "timestamp": "2026-11-28T12:00:00.000Z",
        "traits": {"email": f"person{n}@example.com", "lastName": f"Person {n}"},
        "integrations": ON,
    }


def group(n: int) -> dict:
    return {
        "type": "group",
        "messageId": f"g{n}",
        "userId": f"user-{n}",
        "groupId": f"ACC-{n}",
        "timestamp": "2026-11-28T12:00:00.000Z",
        "traits": {"name": f"Company {n}"},
        "integrations": ON,
    }


EVENTS = [identify(n) for n in range(5)] + [group(n) for n in range(3)]
MESSAGE_IDS = sorted(e["messageId"] for e in EVENTS)


def _run_main(org, tmp_path, monkeypatch, name: str, *flags: str) -> tuple[int, dict, list]:
    """main() over EVENTS: the exit status, the summary written to a file, and the dead letters."""
    for key, value in environ(org).items():
        monkeypatch.setenv(key, value)
    events = write_lines(tmp_path / f"{name}.jsonl", EVENTS)
    prefix = str(tmp_path / f"{name}-dead")
    summary_file = tmp_path / f"{name}-summary.json"
    argv = [
        "--input",
        str(events),
        "--dead_letter_output",
        prefix,
        "--summary_output",
        str(summary_file),
        *connection_flags(org),
        *flags,
    ]
    status = main(argv)
    dead = [json.loads(line) for f in sorted(glob.glob(prefix + "*.jsonl")) for line in open(f)]
    return status, json.loads(summary_file.read_text()), dead


def test_usage_over_the_limit_dead_letters_every_event_retryably_and_spares_the_org(
    org, tmp_path, monkeypatch, capsys
):
    org.admin("POST", "/_emulator/limits", json={"remaining": 5_000})  # 95% used
    status, summary, dead = _run_main(
        org, tmp_path, monkeypatch, "reserved", "--api_usage_limit_percent", "90"
    )

    assert status == 3
    assert sorted(d["event"]["messageId"] for d in dead) == MESSAGE_IDS
    assert {(d["stage"], d["reason"], d["retryable"]) for d in dead} == {
        ("write", "API_USAGE_RESERVED", True)
    }
    assert all("--api_usage_limit_percent 90" in d["message"] for d in dead)
    assert summary["dead_lettered"] == {"API_USAGE_RESERVED": len(EVENTS)}
    assert summary["retryable_dead_letters"] == len(EVENTS)
    assert (summary["events_read"], summary["events_written"], summary["balanced"]) == (len(EVENTS), 0, True)
    assert records(org, "Lead") == [] and records(org, "Account") == []
    # Each writer's first describe gives it a reading; no lookup or write follows one.
    by_kind = calls(org)["by_kind"]
    assert set(by_kind) == {"login", "describe"}
    out, err = capsys.readouterr()
    assert f"    API_USAGE_RESERVED: {len(EVENTS)}" in out
    assert "retryable dead letters" in err


def test_usage_under_the_limit_writes_everything(org, tmp_path, monkeypatch):
    org.admin("POST", "/_emulator/limits", json={"remaining": 90_000})  # 10% used
    status, summary, dead = _run_main(org, tmp_path, monkeypatch, "open", "--api_usage_limit_percent", "90")

    assert status == 0
    assert dead == []
    assert summary["written"] == {"Lead": {"create": 5}, "Account": {"create": 3}}
    assert summary["balanced"] is True
    assert sorted(r["Email"] for r in records(org, "Lead")) == [f"person{n}@example.com" for n in range(5)]
    assert sorted(r["AccountNumber"] for r in records(org, "Account")) == ["ACC-0", "ACC-1", "ACC-2"]


def test_the_rate_limit_is_wired_and_writes_everything(org, tmp_path):
    summary, dead = run_pipeline(org, tmp_path, EVENTS, "--max_calls_per_second", "1000")

    assert dead == []
    assert summary.written == {"Lead": {"create": 5}, "Account": {"create": 3}}
    assert summary.balanced
    assert summary.api_calls == calls(org)["total"]
    assert len(records(org, "Lead")) == 5 and len(records(org, "Account")) == 3
