"""Summary: counters into outcomes that must add up, and the report users read."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.summary import Summary

COUNTERS = {
    "events_read": 10,
    "blank_lines": 2,
    "events_written:Lead:create": 3,
    "events_written:Lead:update": 1,
    "events_written:Account:create": 1,
    "records_written:Lead:create": 2,
    "records_written:Lead:update": 1,
    "records_written:Account:create": 1,
    "filtered:integration_disabled": 2,
    "filtered:no_action_for_track": 1,
    "deduplicated": 1,
    "dead_letter:invalid_json": 1,
    "trimmed:Lead.Title": 1,
    "dropped_unknown:Lead.favoriteColor__c": 2,
    "dropped_unknown:Account.plan__c": 1,
    "ambiguous_match:Lead": 1,
    "api_calls": 6,
}


def test_from_counters():
    s = Summary.from_counters(COUNTERS, extra_api_calls=1)
    assert s.written == {"Lead": {"create": 3, "update": 1}, "Account": {"create": 1}}
    assert s.records_written == {"Lead": {"create": 2, "update": 1}, "Account": {"create": 1}}
    assert s.filtered == {"integration_disabled": 2, "no_action_for_track": 1}
    assert s.dead_lettered == {"invalid_json": 1}
    assert (s.events_read, s.blank_lines, s.deduplicated, s.api_calls) == (10, 2, 1, 7)
    assert s.missing_fields == ["Account.plan__c", "Lead.favoriteColor__c"]
    assert s.ambiguous_matches == {"Lead": 1}
    assert s.balanced


@pytest.mark.parametrize(
    "change, balanced",
    [
        ({}, True),
        ({"events_read": 11}, False),
        ({"dead_letter:invalid_json": 2}, False),
        ({"deduplicated": 0}, False),
    ],
)
def test_balanced(change, balanced):
    assert Summary.from_counters({**COUNTERS, **change}).balanced is balanced


def test_format_text():
    assert Summary.from_counters(COUNTERS, extra_api_calls=1).format_text() == "\n".join(
        [
            "Events read:         10 (and 2 blank lines)",
            "  written:           5",
            "    Account create: 1 events into 1 records",
            "    Lead create: 3 events into 2 records",
            "    Lead update: 1 events into 1 records",
            "  filtered:          3",
            "    integration_disabled: 2",
            "    no_action_for_track: 1",
            "  deduplicated:      1",
            "  dead-lettered:     1",
            "    invalid_json: 1",
            "  balanced:          yes",
            "Several records matched (the most recently modified one was updated):",
            "    Lead: 1",
            "Fields missing in the org (create them to receive these values):",
            "    Account.plan__c: 1 records",
            "    Lead.favoriteColor__c: 2 records",
            "Values trimmed to the field's length:",
            "    Lead.Title: 1 records",
            "Salesforce API calls: 7",
        ]
    )


def test_to_json_has_the_totals():
    d = json.loads(Summary.from_counters(COUNTERS).to_json())
    assert (d["events_written"], d["events_filtered"], d["events_dead_lettered"], d["balanced"]) == (
        5,
        3,
        1,
        True,
    )
    assert d["missing_fields"] == ["Account.plan__c", "Lead.favoriteColor__c"]


def test_python_m_pipeline_help():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m pipeline")
    assert "SALESFORCE_USERNAME" in done.stdout


def test_throttled_seconds_show_only_when_there_were_any():
    assert "Waited" not in Summary.from_counters(COUNTERS).format_text()
    s = Summary.from_counters({**COUNTERS, "throttled_seconds": 7})
    assert s.throttled_seconds == 7
    assert s.format_text().endswith(
        "Salesforce API calls: 6\nWaited for --max_calls_per_second: 7 s (writers together)"
    )
    assert json.loads(s.to_json())["throttled_seconds"] == 7


def test_reserved_api_usage_dead_letters_are_listed_like_any_reason():
    counters = {
        "events_read": 3,
        "dead_letter:API_USAGE_RESERVED": 3,
        "dead_letter_retryable": 3,
        "api_calls": 2,
    }
    text = Summary.from_counters(counters).format_text()
    assert "  dead-lettered:     3\n    API_USAGE_RESERVED: 3\n    (3 of them retryable" in text
    assert "  balanced:          yes" in text
