"""Summary: counters into outcomes that must add up, and the report users read."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.summary import FieldNotes, Summary

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
    "fields_trimmed": 1,
    "fields_dropped_unknown": 3,
    "ambiguous_match:Lead": 1,
    "api_calls": 6,
}
STRING_SETS = {
    "field_names:trimmed": {"Lead.Title"},
    "field_names:dropped_unknown": {"Lead.favoriteColor__c", "Account.plan__c"},
}


def test_from_metrics():
    s = Summary.from_metrics(COUNTERS, STRING_SETS, extra_api_calls=1)
    assert s.written == {"Lead": {"create": 3, "update": 1}, "Account": {"create": 1}}
    assert s.records_written == {"Lead": {"create": 2, "update": 1}, "Account": {"create": 1}}
    assert s.filtered == {"integration_disabled": 2, "no_action_for_track": 1}
    assert s.dead_lettered == {"invalid_json": 1}
    assert (s.events_read, s.blank_lines, s.deduplicated, s.api_calls) == (10, 2, 1, 7)
    assert s.missing_fields == ["Account.plan__c", "Lead.favoriteColor__c"]
    assert s.dropped_unknown == FieldNotes(records=3, fields={"Lead.favoriteColor__c", "Account.plan__c"})
    assert s.trimmed == FieldNotes(records=1, fields={"Lead.Title"})
    assert s.converted == FieldNotes()
    assert s.ambiguous_matches == {"Lead": 1}
    assert s.balanced


def test_from_counters_has_record_counts_without_names():
    s = Summary.from_counters(COUNTERS, extra_api_calls=1)
    assert (s.dropped_unknown, s.api_calls) == (FieldNotes(records=3), 7)


def test_per_field_counters_are_not_read():
    # The writers' old counters, one per field name: a job would grow a counter per trait name.
    s = Summary.from_counters({"trimmed:Lead.Title": 1, "dropped_unknown:Lead.x__c": 2})
    assert (s.trimmed, s.dropped_unknown, s.missing_fields) == (FieldNotes(), FieldNotes(), [])


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


def test_an_event_of_several_actions_counts_once_per_action():
    # One track event opened a Case and read a Contact: read once, delivered twice.
    counters = {
        "events_read": 1,
        "events_written:Case:create": 1,
        "events_written:Contact:read": 1,
        "action_extra_deliveries": 1,
        "action_records:open_case:create": 1,
        "action_records:find_contact:read": 1,
    }
    s = Summary.from_counters(counters)
    assert s.balanced
    assert Summary.from_counters({**counters, "action_extra_deliveries": 0}).balanced is False
    assert s.by_action == {"open_case": {"create": 1}, "find_contact": {"read": 1}}
    text = s.format_text()
    assert "  (+1 deliveries: events that triggered several actions count once per action below)\n" in text
    assert "    by action (records): find_contact: read 1; open_case: create 1\n" in text


def test_a_dry_run_says_so_and_what_a_run_would_spend():
    s = Summary.from_counters({**COUNTERS, "planned_write_calls": 2})
    s.dry_run = True
    text = s.format_text()
    assert text.startswith("Dry run: nothing was written. What a run would do:\nEvents read:         10")
    assert text.endswith(
        "Salesforce API calls a run would make: 6 (2 of them planned writes; 4 made by this dry run: logins, "
        "describes and lookups)"
    )


def test_format_text():
    assert Summary.from_metrics(COUNTERS, STRING_SETS, extra_api_calls=1).format_text() == "\n".join(
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
            "Fields missing in the org (create them to receive these values): 3 records",
            "    Account.plan__c",
            "    Lead.favoriteColor__c",
            "Values trimmed to the field's length: 1 records",
            "    Lead.Title",
            "Salesforce API calls: 7",
        ]
    )


def test_a_stream_counts_record_writes_not_records():
    """A stream writes a record again at each flush with new events for it: 3 events in 2 writes may be
    one Lead written twice."""
    lines = Summary.from_metrics(COUNTERS, STRING_SETS, streaming=True).format_text().splitlines()
    assert lines[2:5] == [
        "    Account create: 1 events in 1 record writes",
        "    Lead create: 3 events in 2 record writes",
        "    Lead update: 1 events in 1 record writes",
    ]
    assert json.loads(Summary.from_metrics(COUNTERS, STRING_SETS, streaming=True).to_json())["streaming"]


def test_to_json_has_the_totals():
    d = json.loads(Summary.from_metrics(COUNTERS, STRING_SETS).to_json())
    assert (d["events_written"], d["events_filtered"], d["events_dead_lettered"], d["balanced"]) == (
        5,
        3,
        1,
        True,
    )
    assert d["missing_fields"] == ["Account.plan__c", "Lead.favoriteColor__c"]
    complete = {"fields_not_listed": 0, "fields_list_complete": True}
    assert d["trimmed"] == {"records": 1, "fields": ["Lead.Title"], **complete}
    assert d["converted"] == {"records": 0, "fields": [], **complete}


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


def _names(n: int) -> set[str]:
    return {f"Lead.trait_{i:06d}__c" for i in range(n)}


@pytest.mark.parametrize(
    "names, shown, more_line",
    [
        (0, [], None),
        (3, sorted(_names(3)), None),
        (20, sorted(_names(20)), None),
        (21, sorted(_names(21))[:20], "    ... and 1 more"),
        (100_000, sorted(_names(100_000))[:20], "    ... and 99980 more"),
    ],
)
def test_text_lists_at_most_20_field_names(names, shown, more_line):
    s = Summary.from_metrics({"fields_dropped_unknown": 5}, {"field_names:dropped_unknown": _names(names)})
    lines = s.format_text().splitlines()
    at = lines.index("Fields missing in the org (create them to receive these values): 5 records")
    listed = [line.strip() for line in lines[at + 1 :] if line.startswith("    Lead.")]
    assert listed == shown
    assert lines[at + 1 + len(shown)] == (more_line or "Salesforce API calls: 0")


def test_json_lists_at_most_100_field_names_per_kind():
    s = Summary.from_metrics(
        {}, {"field_names:trimmed": _names(250), "field_names:dropped_unknown": _names(7)}
    )
    d = json.loads(s.to_json())
    assert d["trimmed"] == {
        "records": 0,
        "fields": sorted(_names(250))[:100],
        "fields_not_listed": 150,
        "fields_list_complete": True,
    }
    assert d["dropped_unknown"]["fields"] == d["missing_fields"] == sorted(_names(7))


def test_summary_stays_small_with_100000_trait_names():
    string_sets = {f"field_names:{kind}": _names(100_000) for kind in ("dropped_unknown", "trimmed")}
    counters = {**COUNTERS, "fields_dropped_unknown": 100_000, "fields_trimmed": 100_000}
    s = Summary.from_metrics(counters, string_sets)
    assert len(s.format_text().encode()) < 5_000
    assert len(s.to_json().encode()) < 20_000
    assert json.loads(s.to_json())["dropped_unknown"]["fields_not_listed"] == 99_900


@pytest.mark.parametrize(
    "skipped, line", [(0, None), (4, "Older field values skipped (the record held newer ones): 4")]
)
def test_stale_fields_skipped_is_a_total(skipped, line):
    s = Summary.from_counters({**COUNTERS, "stale_fields_skipped": skipped})
    assert s.stale_fields_skipped == skipped
    assert json.loads(s.to_json())["stale_fields_skipped"] == skipped
    assert [x for x in s.format_text().splitlines() if x.startswith("Older field values")] == (
        [line] if line else []
    )


@pytest.mark.parametrize(
    "dead_letters, prefix, line",
    [
        (
            12,
            "dead_letters/20261201T104501Z/dead_letters",
            "Dead letters: 12, written to dead_letters/20261201T104501Z/dead_letters-*.jsonl",
        ),
        (3, "gs://bucket/dead/letters", "Dead letters: 3, written to gs://bucket/dead/letters-*.jsonl"),
        (0, "dead_letters/20261201T104501Z/dead_letters", None),  # no files to point at
    ],
)
def test_summary_says_where_dead_letters_went(dead_letters, prefix, line):
    counters = {"events_read": dead_letters, "dead_letter:invalid_json": dead_letters}
    s = Summary.from_counters(counters, dead_letter_output=prefix)
    text = s.format_text()
    assert [x for x in text.splitlines() if x.startswith("Dead letters")] == ([line] if line else [])
    assert (".jsonl" in text) is bool(line)
    assert json.loads(s.to_json())["dead_letter_output"] == prefix


def test_missing_org_setup_is_named_in_text_and_json():
    missing = {"org_setup_missing": {"Lead.Beamforce_Key__c", "Account.Beamforce_Key__c"}}
    summary = Summary.from_metrics({"events_read": 0}, missing)
    assert summary.org_setup_missing == ["Account.Beamforce_Key__c", "Lead.Beamforce_Key__c"]
    assert "Org set-up missing (docs/org-setup.md;" in summary.format_text()
    assert "Account.Beamforce_Key__c, Lead.Beamforce_Key__c" in summary.format_text()
    assert json.loads(summary.to_json())["org_setup_missing"] == summary.org_setup_missing
    assert "Org set-up missing" not in Summary.from_metrics({}, {}).format_text()


def test_a_writer_lists_100_names_of_a_kind_and_the_summary_says_when_it_met_more():
    """Found by a hostile review: 5,000 unknown traits gave 100 names and "fields_not_listed: 0"."""
    from transforms.batch_writer import BatchReport
    from transforms.write_to_salesforce import WriterFn

    writer = WriterFn()
    writer.setup()
    for names in ([f"a{n:04d}__c" for n in range(99)], [f"b{n:04d}__c" for n in range(5_000)]):
        report = BatchReport(field_notes=[("Lead", {"dropped_unknown": tuple(names), "trimmed": ("Title",)})])
        list(writer._outputs(report))
    [tagged] = list(writer.counts.emit())
    tally = tagged.value.value

    s = Summary.from_metrics(tally.counters, tally.string_sets)

    assert len(s.dropped_unknown.fields) == 100
    assert json.loads(s.to_json())["dropped_unknown"] == {
        "records": 2,
        "fields": sorted(s.dropped_unknown.fields),
        "fields_not_listed": 0,
        "fields_list_complete": False,
    }
    assert json.loads(s.to_json())["trimmed"]["fields_list_complete"] is True
    assert "    ... and at least 80 more (only the first names met are kept)" in s.format_text().splitlines()


@pytest.mark.parametrize(
    "counters, hints",
    [
        ({"events_read": 3, "events_written:Lead:create": 3}, []),
        ({"events_read": 0}, []),
        (
            {"events_read": 50, "filtered:integration_disabled": 50},
            [
                "Hint: 50 events were not enabled for Salesforce: Segment's destination takes only events "
                "whose integrations say Salesforce: true; add that to the events, or run with "
                "--always_enabled to write every event that does not opt out"
            ],
        ),
        (
            {"events_read": 28, "dead_letter:invalid_json": 27, "dead_letter:not_an_object": 1},
            [
                "Hint: 28 lines were no event: the input must be JSON Lines, one event object per line (not "
                "a JSON array, nor pretty-printed JSON)"
            ],
        ),
        # Some lines were events (refused for another reason): not a format problem.
        ({"events_read": 3, "dead_letter:invalid_json": 1, "dead_letter:missing_email": 2}, []),
        # Something was written: the run did what it could.
        ({"events_read": 3, "filtered:integration_disabled": 2, "events_written:Lead:create": 1}, []),
    ],
)
def test_a_run_that_wrote_nothing_says_what_to_fix(counters, hints):
    """Found by a hostile review: such runs ended "done" with no word of the likely cause."""
    lines = Summary.from_counters(counters).format_text().splitlines()
    assert [line for line in lines if line.startswith("Hint:")] == hints


@pytest.mark.parametrize(
    "future, line",
    [
        (0, None),
        (3, "Events dated after they were received (a client clock ahead), ordered as of their receipt: 3"),
    ],
)
def test_events_dated_in_the_future_are_a_total(future, line):
    s = Summary.from_counters({**COUNTERS, "future_timestamps": future})
    assert json.loads(s.to_json())["future_timestamps"] == future
    assert [x for x in s.format_text().splitlines() if x.startswith("Events dated")] == (
        [line] if line else []
    )


@pytest.mark.parametrize(
    "stopped, read, line",
    [
        (True, 12, "  balanced:          no: stopped with 2 events read and not handled yet"),
        (False, 12, "  balanced:          NO: some events are unaccounted for"),  # a bug: say so
        (True, 10, "  balanced:          yes"),  # stopped with nothing in hand
        (True, 9, "  balanced:          NO: some events are unaccounted for"),  # more handled than read
    ],
)
def test_a_stopped_run_says_how_many_events_it_had_in_hand(stopped, read, line):
    """Found by a review: a stream stopped with Ctrl-C said 'NO: some events are unaccounted for', as a
    run that lost events to a bug does."""
    counters = {**COUNTERS, "events_read": read}
    summary = Summary.from_metrics(counters, STRING_SETS, streaming=True, stopped=stopped)
    assert line in summary.format_text().splitlines()
    d = json.loads(summary.to_json())
    assert (d["stopped"], d["events_in_flight"]) == (stopped, max(0, read - 10))
