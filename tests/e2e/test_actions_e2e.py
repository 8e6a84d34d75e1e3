"""Custom actions end to end against the local Salesforce: the examples in examples/actions/ (Issue
Submitted -> Case, identify -> Contact upsert on UserId__c, a read), in batch and in streaming; duplicate
rules (block and alert, --duplicate_rules); dry runs (--dry_run, --dry_run_output)."""

import glob
import json
import logging
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from actions.config import load_actions
from pipeline import direct_runner_metrics
from pipeline.action_options import ActionPlan, write_policy
from pipeline.graph import build
from pipeline.main import STREAMING_RUNNER, counters, main
from pipeline.options import BeamforceOptions
from pipeline.summary import Summary
from salesforce.connection import ConnectionSettings
from salesforce.credentials import CredentialsSource
from tests.e2e.conftest import (
    calls,
    connection_flags,
    emulator_with,
    export_credentials,
    run_pipeline,
)
from tests.e2e.streaming_helpers import StreamEvents, at
from tests.streaming.conftest import RunnerClock, runner_clock  # noqa: F401  (the fixture, used below)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CASE_EXAMPLE = str(ROOT / "examples" / "actions" / "issue_submitted_case.yaml")
CONTACT_EXAMPLE = str(ROOT / "examples" / "actions" / "identify_contact.yaml")
# The sample org of ./run_local.sh (with the examples' fields), and two duplicate rules.
ORG_CONFIG = (ROOT / "examples" / "org.yaml").read_text(encoding="utf-8") + (
    "duplicate_rules:\n"
    "  - {name: Account_Name_Rule, object: Account, fields: [Name], action: block}\n"
    "  - {name: Lead_Name_Company_Rule, object: Lead, fields: [LastName, Company], action: alert}\n"
)
ON = {"Salesforce": True}
# What the org sets itself on a Case or Contact, left out of the comparisons.
ORG_SET = {
    "Id",
    "OwnerId",
    "Status",
    "Priority",
    "IsEscalated",
    "IsDeleted",
    "IsClosed",
    "CaseNumber",
    "Name",
}
ORG_SET |= {"CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"}


@pytest.fixture(scope="module")
def actions_emulator(tmp_path_factory):
    with emulator_with(tmp_path_factory, "actions-org", ORG_CONFIG) as emu:
        yield emu


@pytest.fixture
def org(actions_emulator, monkeypatch):
    actions_emulator.admin("POST", "/_emulator/reset")
    actions_emulator.admin("POST", "/_emulator/calls/reset")
    export_credentials(actions_emulator, monkeypatch)
    return actions_emulator


def track(message_id: str, name: str, user_id: str | None, second: int = 0, **properties) -> dict:
    event = {
        "type": "track",
        "event": name,
        "messageId": message_id,
        "timestamp": at(second),
        "properties": properties,
        "integrations": ON,
    }
    if user_id is not None:
        event["userId"] = user_id
    return event


def identify(message_id: str, user_id: str | None, second: int = 0, **traits) -> dict:
    event = {
        "type": "identify",
        "messageId": message_id,
        "timestamp": at(second),
        "traits": traits,
        "integrations": ON,
    }
    if user_id is not None:
        event["userId"] = user_id
    return event


def kept(rows: list[dict]) -> list[dict]:
    """The fields a writer set: without what the org sets itself, nulls, false and compound fields."""
    return [
        {
            k: v
            for k, v in r.items()
            if k not in ORG_SET and v not in (None, False) and not isinstance(v, dict)
        }
        for r in rows
    ]


def raw(emu, sobject: str) -> list[dict]:
    return emu.admin("GET", f"/_emulator/records/{sobject}")["records"]


def by(rows: list[dict], key: str) -> dict[str, dict]:
    return {r[key]: r for r in kept(rows)}


def seed(emu, sobject: str, fields: dict) -> str:
    return emu.admin("POST", f"/_emulator/records/{sobject}", json=fields)["id"]


def lines(pattern: str) -> list[dict]:
    return [json.loads(line) for f in sorted(glob.glob(pattern)) for line in open(f, encoding="utf-8")]


def written(summary: Summary) -> dict:
    return summary.written


# --- Issue Submitted -> Case ---------------------------------------------------------------------------

CASE_EVENTS = [
    track("is-1", "Issue Submitted", "u1", 1, title="Login fails", description="since Monday"),
    track("is-2", "Issue Submitted", "u2", 2, path="/pricing"),  # no title: the event's name
    track("is-2", "Issue Submitted", "u2", 2, path="/pricing"),  # delivered twice
    track("su-1", "Signed Up", "u3", 3),  # no action takes it
    identify("id-1", "u1", 4, email="ann@example.com", lastName="Lee", company="Initech"),
]
EXPECTED_CASES = {
    "is-1": {
        "Subject": "Login fails",
        "Description": "since Monday",
        "Origin": "Web",
        "Beamforce_Message_Id__c": "is-1",
    },
    "is-2": {
        "Subject": "Issue Submitted",
        "Description": "/pricing",
        "Origin": "Web",
        "Beamforce_Message_Id__c": "is-2",
    },
}


def test_issue_submitted_opens_one_case_per_event_and_a_replay_opens_none(org, tmp_path):
    summary, dead = run_pipeline(org, tmp_path, CASE_EVENTS, "--actions_config", CASE_EXAMPLE)

    assert by(raw(org, "Case"), "Beamforce_Message_Id__c") == EXPECTED_CASES
    assert [r["Status"] for r in raw(org, "Case")] == ["New", "New"]
    [lead] = kept(raw(org, "Lead"))
    assert (lead["Email"], lead["LastName"], lead["Company"]) == ("ann@example.com", "Lee", "Initech")
    # The twice-delivered event is a duplicate (same messageId): one Case.
    assert summary.written == {"Case": {"create": 2}, "Lead": {"create": 1}}
    assert summary.deduplicated == 1
    assert summary.records_written == {"Case": {"create": 2}, "Lead": {"create": 1}}
    assert summary.filtered == {"no_action_for_track": 1}
    assert dead == []
    assert summary.balanced

    # A replay of the same events (a retried batch, a rerun) opens no second Case.
    again, dead = run_pipeline(org, tmp_path, CASE_EVENTS, "--actions_config", CASE_EXAMPLE, name="again")
    assert by(raw(org, "Case"), "Beamforce_Message_Id__c") == EXPECTED_CASES
    assert again.records_written == {"Case": {"update": 2}, "Lead": {"update": 1}}
    assert dead == []


def test_creates_under_transient_faults_leave_exactly_one_case_per_event(org, tmp_path):
    org.admin("POST", "/_emulator/faults", json={"error_rate": 0.3, "seed": 11})
    events = [track(f"is-{n}", "Issue Submitted", f"u{n}", n, title=f"Issue {n}") for n in range(60)]
    summary, dead = run_pipeline(org, tmp_path, events, "--actions_config", CASE_EXAMPLE)
    org.admin("POST", "/_emulator/faults", json={})

    cases = raw(org, "Case")
    assert sorted(r["Beamforce_Message_Id__c"] for r in cases) == sorted(f"is-{n}" for n in range(60))
    assert {r["Subject"] for r in cases} == {f"Issue {n}" for n in range(60)}
    assert summary.written == {"Case": {"create": 60}}
    assert dead == []


# --- identify -> Contact on UserId__c, and a read ---------------------------------------------------

CONTACT_EVENTS = [
    identify("c-1", "u1", 1, email="ann@example.com", title="CTO", lastName="Lee"),
    identify("c-2", "u2", 2, email="bob@example.com", firstName="Bob"),  # no last name: n/a on create
    identify("c-3", None, 3, email="anon@example.com") | {"anonymousId": "a-3"},  # no userId to match on
    identify("c-4", "u1", 5, title="CEO"),  # a later identify of u1
    track("oc-1", "Order Completed", "u1", 6),
    track("oc-2", "Order Completed", "u9", 7),  # no such Contact
]
MISSING_USER_ID = (
    "action 'identify_contact' matches Contact.UserId__c on userId, which this event lacks: add userId to "
    "the event or change the action's match rules"
)


def expected_contacts(existing_id: str) -> dict[str, dict]:
    return {
        "u1": {
            "Id": existing_id,
            "UserId__c": "u1",
            "Email": "ann@example.com",
            "Title": "CEO",
            "LastName": "Lee",
            "FirstName": "Old",
        },
        "u2": {"UserId__c": "u2", "Email": "bob@example.com", "FirstName": "Bob", "LastName": "n/a"},
    }


def contacts(emu) -> dict[str, dict]:
    """The Contacts by UserId__c: the fields a writer set, and the Id."""
    rows = raw(emu, "Contact")
    return {r["UserId__c"]: {**fields, "Id": r["Id"]} for r, fields in zip(rows, kept(rows), strict=True)}


def only_set(rows: dict[str, dict], keep_id: str) -> dict[str, dict]:
    """The Contacts, with the Id only of the one seeded (the ids of new ones vary)."""
    return {key: {k: v for k, v in row.items() if k != "Id" or v == keep_id} for key, row in rows.items()}


def check_contact_run(org, summary: Summary, dead: list[dict], reads: list[dict], existing: str) -> None:
    assert only_set(contacts(org), existing) == expected_contacts(existing)
    assert reads == [
        {
            "action": "order_completed_contact",
            "messageId": "oc-1",
            "object": "Contact",
            "record": {"Id": existing, "Email": "ann@example.com", "Title": "CEO"},
        }
    ]
    assert [(d["reason"], d["message"], d["event"]["messageId"]) for d in dead] == [
        ("missing_match_value", MISSING_USER_ID, "c-3")
    ]
    assert summary.written == {"Contact": {"update": 2, "create": 1, "read": 1, "no_match": 1}}
    assert summary.balanced


def test_identify_upserts_the_contact_by_user_id_and_track_reads_it_back(org, tmp_path):
    existing = seed(org, "Contact", {"LastName": "Lee", "FirstName": "Old", "UserId__c": "u1"})
    summary, dead = run_pipeline(
        org,
        tmp_path,
        CONTACT_EVENTS,
        "--actions_config",
        CONTACT_EXAMPLE,
        "--read_output",
        str(tmp_path / "reads" / "records"),
    )
    check_contact_run(org, summary, dead, lines(str(tmp_path / "reads" / "records*.jsonl")), existing)
    assert raw(org, "Lead") == []  # the file replaced the built-in actions
    assert summary.by_action == {
        "identify_contact": {"update": 1, "create": 1},
        "order_completed_contact": {"read": 1, "no_match": 1},
    }
    assert (
        "    by action (records): identify_contact: create 1, update 1; order_completed_contact: no_match 1, "
        "read 1\n" in summary.format_text()
    )
    assert summary.filtered == {}


def test_a_read_after_the_identify_that_creates_the_contact_finds_it(org, tmp_path):
    # Found by a hostile review: the read and the create went to different shards and threads, so the
    # read could run first and find nothing.
    events = [
        *(identify(f"n-{n}", f"new{n}", 1, email=f"new{n}@example.com", title="CTO") for n in range(20)),
        *(track(f"r-{n}", "Order Completed", f"new{n}", 2) for n in range(20)),
    ]
    summary, dead = run_pipeline(
        org,
        tmp_path,
        events,
        *("--actions_config", CONTACT_EXAMPLE, "--read_output", str(tmp_path / "reads" / "records")),
        *("--batch_size", "3", "--writer_threads", "8"),
    )
    ids = {row["UserId__c"]: row["Id"] for row in raw(org, "Contact")}
    reads = lines(str(tmp_path / "reads" / "records*.jsonl"))
    assert sorted((r["messageId"], r["record"]["Id"], r["record"]["Email"]) for r in reads) == sorted(
        (f"r-{n}", ids[f"new{n}"], f"new{n}@example.com") for n in range(20)
    )
    assert summary.written == {"Contact": {"create": 20, "read": 20}}
    assert dead == []


@pytest.mark.usefixtures("runner_clock")
def test_the_contact_example_streams_to_the_same_records(org, tmp_path):
    existing = seed(org, "Contact", {"LastName": "Lee", "FirstName": "Old", "UserId__c": "u1"})
    prefix = str(tmp_path / "dead" / "dead_letters")
    options = PipelineOptions(
        [
            "--streaming",
            "--dead_letter_output",
            prefix,
            "--max_buffering_seconds",
            "1",
            *connection_flags(org),
        ]
    )
    settings = ConnectionSettings(login_url=org.info["login_url"], ca_bundle=org.info["ca_bundle"])
    config = load_actions(CONTACT_EXAMPLE)
    reads = str(tmp_path / "reads" / "records")
    p = beam.Pipeline(runner=STREAMING_RUNNER, options=options)
    build(
        p,
        options.view_as(BeamforceOptions),
        CredentialsSource(),
        settings,
        # The identifies first, the reads once they are written (a read sees what was written before it).
        source=StreamEvents([(CONTACT_EVENTS[:4], 2.0), (CONTACT_EVENTS[4:], 2.0)]),
        streaming=True,
        clock=RunnerClock(),
        plan=ActionPlan(config, write_policy(config), read_output=reads),
    )
    with direct_runner_metrics.counting_every_bundle():
        result = p.run()
        result.wait_until_finish()
    totals, string_sets = counters(result)
    summary = Summary.from_metrics(totals, string_sets)
    dead = lines(prefix + "*.jsonl")
    check_contact_run(org, summary, dead, lines(reads + "*.jsonl"), existing)


# --- lookup fields: a Lead matched on more than its email ---------------------------------------------

LOOKUP_ACTIONS = """\
version: 1
actions:
  - name: identify_lead
    trigger: identify
    object: Lead
    operation: upsert
    preset: segment_lead
    match:
      Email: traits.email
      UserId__c: userId
"""


def test_a_lead_matched_on_its_email_and_user_id(org, tmp_path):
    first = seed(
        org, "Lead", {"LastName": "One", "Company": "C1", "Email": "ann@example.com", "UserId__c": "u1"}
    )
    other = seed(
        org, "Lead", {"LastName": "Two", "Company": "C2", "Email": "ann@example.com", "UserId__c": "u2"}
    )
    path = write(tmp_path / "actions.yaml", LOOKUP_ACTIONS)
    events = [
        identify("l-1", "u1", 1, email="ann@example.com", title="CTO"),  # both rules match the first Lead
        identify("l-2", "u3", 2, email="ann@example.com", lastName="Three", company="C3"),  # no Lead has both
    ]
    summary, dead = run_pipeline(org, tmp_path, events, "--actions_config", str(path))

    leads = {r["UserId__c"]: r for r in raw(org, "Lead")}
    assert (leads["u1"]["Id"], leads["u1"]["Title"]) == (first, "CTO")
    assert (leads["u2"]["Id"], leads["u2"].get("Title")) == (other, None)
    assert {k: leads["u3"][k] for k in ("Email", "LastName", "Company", "UserId__c")} == {
        "Email": "ann@example.com",
        "LastName": "Three",
        "Company": "C3",
        "UserId__c": "u3",
    }
    assert summary.written == {"Lead": {"update": 1, "create": 1}}
    assert dead == []


ALL_MATCHES = """\
version: 1
actions:
  - name: title_everywhere
    trigger: identify
    object: Lead
    operation: update
    match: {Email: traits.email}
    on_multiple: all
    fields: {Title: traits.title}
"""


def test_an_update_of_all_matches_counts_every_record_it_wrote(org, tmp_path):
    # Found by a hostile review: the summary counted one record for the three updated.
    for n in range(3):
        seed(org, "Lead", {"LastName": f"L{n}", "Company": "C", "Email": "dup@example.com"})
    seed(org, "Lead", {"LastName": "Solo", "Company": "C", "Email": "solo@example.com"})
    path = write(tmp_path / "actions.yaml", ALL_MATCHES)
    events = [
        identify("a-1", "u1", 1, email="dup@example.com", title="CTO"),
        identify("a-2", "u2", 2, email="solo@example.com", title="CEO"),
    ]

    summary, dead = run_pipeline(org, tmp_path, events, "--actions_config", str(path))

    assert sorted((r["Email"], r["Title"]) for r in raw(org, "Lead")) == [
        ("dup@example.com", "CTO"),
        ("dup@example.com", "CTO"),
        ("dup@example.com", "CTO"),
        ("solo@example.com", "CEO"),
    ]
    assert (summary.written, summary.records_written) == ({"Lead": {"update": 2}}, {"Lead": {"update": 4}})
    assert summary.by_action == {"title_everywhere": {"update": 4}}
    assert "    Lead update: 2 events into 4 records" in summary.format_text().splitlines()
    assert dead == []


def test_a_converted_lead_matched_on_email_and_user_id_updates_its_contact(org, tmp_path):
    converted = {"LastName": "Conv", "Company": "C", "Email": "conv@example.com", "UserId__c": "u9"}
    seed(org, "Lead", {**converted, "IsConverted": True})
    contact_id = raw(org, "Lead")[0]["ConvertedContactId"]
    path = write(tmp_path / "actions.yaml", LOOKUP_ACTIONS)
    event = identify("cv-1", "u9", 1, email="conv@example.com", title="VP")

    summary, dead = run_pipeline(org, tmp_path, [event], "--actions_config", str(path))
    [contact] = raw(org, "Contact")
    assert (contact["Id"], contact["Title"]) == (contact_id, "VP")
    assert summary.written == {"Contact": {"update_converted_lead": 1}}
    assert dead == []

    summary, dead = run_pipeline(
        org, tmp_path, [event], "--actions_config", str(path), "--converted_leads", "dead_letter", name="dl"
    )
    [lead] = raw(org, "Lead")
    assert [(d["reason"], d["retryable"]) for d in dead] == [("lead_converted", False)]
    assert dead[0]["message"] == (
        f"action 'identify_lead': The Lead {lead['Id']} matching Email='conv@example.com' and UserId__c='u9' "
        "was converted; Salesforce refuses updates to converted Leads"
    )
    assert summary.written == {}


# --- duplicate rules -----------------------------------------------------------------------------------


def test_a_blocking_duplicate_rule_gives_a_dead_letter_naming_the_rule_and_the_record(org, tmp_path):
    existing = seed(org, "Account", {"Name": "Initech", "AccountNumber": "1"})
    event = {
        "type": "group",
        "messageId": "g-2",
        "userId": "u1",
        "groupId": "2",
        "timestamp": at(1),
        "traits": {"name": "Initech"},
        "integrations": ON,
    }
    for flags in ((), ("--duplicate_rules", "allow_save")):  # a blocking rule refuses either way
        summary, dead = run_pipeline(org, tmp_path, [event], *flags, name=f"run{len(flags)}")
        assert [r["AccountNumber"] for r in raw(org, "Account")] == ["1"]
        [letter] = dead
        assert (letter["reason"], letter["retryable"], letter["event"]["messageId"]) == (
            "DUPLICATES_DETECTED",
            False,
            "g-2",
        )
        assert "Account_Name_Rule" in letter["message"]
        assert existing in letter["message"]
        assert summary.written == {}


def test_allow_save_writes_past_an_alert_rule_that_enforce_refuses(org, tmp_path):
    seed(org, "Lead", {"LastName": "Doe", "Company": "Acme", "Email": "first@example.com"})
    event = identify("l-2", "u2", 1, email="second@example.com", lastName="Doe", company="Acme")

    refused, dead = run_pipeline(org, tmp_path, [event], name="enforce")
    assert [r["Email"] for r in raw(org, "Lead")] == ["first@example.com"]
    assert [(d["reason"], d["retryable"]) for d in dead] == [("DUPLICATES_DETECTED", False)]
    assert "Lead_Name_Company_Rule" in dead[0]["message"]
    assert refused.written == {}

    saved, dead = run_pipeline(org, tmp_path, [event], "--duplicate_rules", "allow_save", name="allow")
    assert sorted(r["Email"] for r in raw(org, "Lead")) == ["first@example.com", "second@example.com"]
    assert dead == []
    assert saved.written == {"Lead": {"create": 1}}


# --- dry runs ------------------------------------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_plans_what_a_run_then_writes(org, tmp_path, caplog):
    existing = seed(org, "Contact", {"LastName": "Lee", "FirstName": "Old", "UserId__c": "u1"})
    before = contacts(org)
    org.admin("POST", "/_emulator/calls/reset")
    caplog.set_level(logging.INFO, logger="pipeline.main")  # as python -m pipeline shows it
    plan_file = tmp_path / "plan.jsonl"
    flags = ("--actions_config", CONTACT_EXAMPLE, "--read_output", str(tmp_path / "reads" / "records"))

    summary, dead = run_pipeline(
        org, tmp_path, CONTACT_EVENTS, *flags, "--dry_run", "--dry_run_output", str(plan_file), name="dry"
    )

    assert contacts(org) == before
    assert set(calls(org)["by_kind"]) <= {"login", "describe", "query"}
    # --write_method auto (the default) is planned as REST, and the run says so.
    assert (
        "Dry run: it plans the writes and counts the API calls that --write_method rest would make, not "
        "those of --write_method auto (Bulk API jobs cannot be tried without writing)"
    ) in caplog.messages
    plan = [json.loads(line) for line in plan_file.read_text(encoding="utf-8").splitlines()]
    assert sorted(plan, key=lambda r: r["operation"]) == [
        {
            "operation": "create",
            "object": "Contact",
            "fields": {"UserId__c": "u2", "Email": "bob@example.com", "FirstName": "Bob", "LastName": "n/a"},
        },
        {
            "operation": "update",
            "object": "Contact",
            "id": existing,
            "fields": {"Email": "ann@example.com", "Title": "CEO", "LastName": "Lee"},
        },
    ]
    assert summary.dry_run
    assert summary.written == {"Contact": {"update": 2, "create": 1, "read": 1, "no_match": 1}}
    assert [d["reason"] for d in dead] == ["missing_match_value"]
    assert summary.planned_write_calls == 2
    text = summary.format_text()
    assert text.startswith("Dry run: nothing was written. What a run would do:\n")
    assert "(2 of them planned writes;" in text

    # The real run writes what the dry run planned.
    run_pipeline(org, tmp_path, CONTACT_EVENTS, *flags, name="real")
    after = only_set(contacts(org), existing)
    assert after == expected_contacts(existing)
    [create] = [row for row in plan if row["operation"] == "create"]
    assert after["u2"] == create["fields"]


# --- the file checked at start -------------------------------------------------------------------------

BAD_ACTIONS = """\
version: 1
actions:
  - name: issue_case
    trigger: {track: Issue Submitted}
    object: Case
    operation: create
    fields:
      Subjct: properties.title
"""


def test_a_bad_actions_file_stops_the_run_before_any_event_is_read(org, tmp_path, capsys):
    path = tmp_path / "actions.yaml"
    path.write_text(BAD_ACTIONS, encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(CASE_EVENTS[0]) + "\n", encoding="utf-8")
    org.admin("POST", "/_emulator/calls/reset")

    status = main(["--input", str(events), "--actions_config", str(path), *connection_flags(org)])

    assert status == 2
    assert capsys.readouterr().err == (
        f"beamforce: configuration error: {path}:8: action 'issue_case': field 'Subjct': Case has no field "
        "'Subjct'; did you mean 'Subject'?\n"
    )
    assert calls(org)["by_kind"] == {"login": 1, "describe": 1}
    assert raw(org, "Case") == []


def test_the_built_in_actions_print_as_a_file_that_runs_as_they_do(tmp_path, capsys):
    assert main(["--print_default_actions"]) == 0
    text = capsys.readouterr().out
    assert text == (ROOT / "actions" / "defaults.yaml").read_text(encoding="utf-8")
    config = load_actions(str(write(tmp_path / "defaults.yaml", text)))
    assert [(a.name, a.trigger, a.object, a.operation) for a in config.actions] == [
        ("identify_lead", "identify", "Lead", "upsert"),
        ("group_account", "group", "Account", "upsert"),
    ]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- replaying one action's dead letter -------------------------------------------------------------------

TWO_ACTIONS = """version: 1
actions:
  - name: issue_case
    trigger: {track: Issue Submitted}
    object: Case
    operation: create
    fields: {Subject: properties.title}
  - name: issue_lead
    trigger: {track: Issue Submitted}
    object: Lead
    operation: update
    on_multiple: dead_letter
    match: {Email: properties.email}
    fields: {Description: properties.title}
"""


def test_a_replay_redoes_only_the_action_that_failed(org, tmp_path):
    config = tmp_path / "actions.yaml"
    config.write_text(TWO_ACTIONS)
    for last in ("One", "Two"):
        seed(org, "Lead", {"LastName": last, "Company": "Acme", "Email": "dup@example.com"})
    event = track("m-1", "Issue Submitted", "u1", title="Broken", email="dup@example.com")

    summary, dead = run_pipeline(org, tmp_path, [event], "--actions_config", str(config), name="first")

    assert summary.written == {"Case": {"create": 1}}
    assert [(d["reason"], d["action"]) for d in dead] == [("MULTIPLE_MATCHES", "issue_lead")]
    # The replay does the Lead's update only (which fails again), not the Case's create.
    summary, again = run_pipeline(org, tmp_path, dead, "--actions_config", str(config), name="replay")

    assert (summary.events_read, summary.action_extra_deliveries, summary.written) == (1, 0, {})
    assert [(d["reason"], d["action"], d["event"]) for d in again] == [
        ("MULTIPLE_MATCHES", "issue_lead", event)
    ]
    assert len(raw(org, "Case")) == 1
