"""Acceptance tests: the whole pipeline against the local Salesforce, written from the seed and issue 3.

Every expected value here comes from the seed document (Segment's classic Salesforce destination), the
issue's "What to build" and the Segment spec, not from the code. One emulator serves the module; each
test starts from an empty org.
"""

import glob
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import pytest
import requests
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.main import build, help_parser, main, run
from pipeline.options import BeamforceOptions, validate
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.upsert import UpsertItem, upsert_by_key
from tests import seed_examples
from tests.e2e.conftest import connection_flags, emulator_with, environ
from tests.seed_examples import SEED_ACCOUNT, SEED_GROUP, SEED_IDENTIFY_FLAT, SEED_IDENTIFY_OBJECTS

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Acc3ptance-pw"
TOKEN = "ACCEPTTOKEN42"
SANDBOX_PASSWORD = "sandbox-pw-77"
SANDBOX_TOKEN = "SBXTOKEN77"
SECRETS = (PASSWORD, TOKEN, SANDBOX_PASSWORD, SANDBOX_TOKEN)
ORG_CONFIG = f"""\
users:
  - {{username: admin@example.com, password: {PASSWORD}, security_token: {TOKEN}}}
  - {{username: sandbox.api@example.com, password: {SANDBOX_PASSWORD}, security_token: {SANDBOX_TOKEN},
     sandbox: uat}}
custom_fields:
  Lead:
    - {{name: testProp__c, type: string, length: 100}}
    - {{name: favorite_color__c, type: string, length: 20}}
    - {{name: score__c, type: number, precision: 5, scale: 2}}
  Account:
    - {{name: plan__c, type: string, length: 40}}
"""
SF = {"Salesforce": True}
T0 = "2026-11-01T10:00:00.000Z"
# What the org sets on its own; everything else in a record was written by the pipeline.
ORG_FIELDS = frozenset(
    {
        "Id",
        "IsDeleted",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "OwnerId",
        "IsConverted",
        "IsUnreadByOwner",
        "HasOptedOutOfEmail",
    }
)
# A Lead's Name is the org's compound of FirstName and LastName; an Account's Name is written.
ORG_FIELDS_BY_OBJECT = {"Lead": ORG_FIELDS | {"Name"}, "Account": ORG_FIELDS}
DEFAULT_STATUS = "Open - Not Contacted"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with emulator_with(tmp_path_factory, "acceptance-org", ORG_CONFIG) as process:
        yield process


@pytest.fixture
def org(emu):
    """The emulator emptied: no records, full allocation, no faults, call counts at zero."""
    emu.admin("POST", "/_emulator/reset")
    emu.admin("POST", "/_emulator/calls/reset")
    return emu


def identify(mid: str, ts: str = T0, integrations=SF, **traits) -> dict:
    event = {"type": "identify", "messageId": mid, "timestamp": ts, "userId": f"user-{mid}", "traits": traits}
    if integrations is not None:
        event["integrations"] = integrations
    return event


def group(mid: str, group_id: str, ts: str = T0, integrations=SF, **traits) -> dict:
    event = {
        "type": "group",
        "messageId": mid,
        "timestamp": ts,
        "userId": f"user-{mid}",
        "groupId": group_id,
        "traits": traits,
    }
    if integrations is not None:
        event["integrations"] = integrations
    return event


def jsonl(events: list) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)


class Run:
    """One finished run: its summary (as written to --summary_output) and its dead letters."""

    def __init__(self, out: Path, summary: dict):
        self.summary = summary
        self.dead = [
            json.loads(line)
            for f in sorted(glob.glob(str(out / "dead") + "*"))
            for line in open(f, encoding="utf-8")
            if line.strip()
        ]

    def dead_by_reason(self) -> dict[str, list[dict]]:
        by: dict[str, list[dict]] = {}
        for d in self.dead:
            by.setdefault(d["reason"], []).append(d)
        return by


def run_files(emu, tmp_path: Path, files: dict[str, str | bytes], *flags: str, name: str = "run") -> Run:
    """Writes `files` under tmp_path/name/in and runs the pipeline in-process over all of them."""
    base = tmp_path / name
    (base / "in").mkdir(parents=True)
    for fname, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (base / "in" / fname).write_bytes(data)
    argv = [
        "--input",
        str(base / "in" / "*"),
        "--dead_letter_output",
        str(base / "dead"),
        "--summary_output",
        str(base / "summary.json"),
        *connection_flags(emu),
        *flags,
    ]
    returned = run(argv, environ(emu))
    summary = json.loads((base / "summary.json").read_text())
    assert summary == json.loads(returned.to_json())
    assert_balanced(summary)
    result = Run(base, summary)
    assert len(result.dead) == summary["events_dead_lettered"]
    for letter in result.dead:
        assert_no_secret(json.dumps(letter))
    assert_no_secret(json.dumps(summary))
    return result


def run_events(emu, tmp_path: Path, events: list, *flags: str, name: str = "run") -> Run:
    return run_files(emu, tmp_path, {"events.jsonl": jsonl(events)}, *flags, name=name)


def assert_balanced(summary: dict) -> None:
    outcomes = (
        sum(n for by in summary["written"].values() for n in by.values())
        + sum(summary["filtered"].values())
        + summary["deduplicated"]
        + sum(summary["dead_lettered"].values())
    )
    assert summary["events_read"] == outcomes
    assert summary["balanced"] is True


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def records(emu, sobject: str) -> list[dict]:
    """The org's records with only the fields a writer set (and Status), sorted by their key."""
    rows = emu.admin("GET", f"/_emulator/records/{sobject}")["records"]
    skip = ORG_FIELDS_BY_OBJECT[sobject]
    # Compound address fields (dicts) are the org's view of their parts.
    kept = [
        {k: v for k, v in r.items() if k not in skip and v is not None and not isinstance(v, dict)}
        for r in rows
    ]
    key = "Email" if sobject == "Lead" else "AccountNumber"
    return sorted(kept, key=lambda r: str(r.get(key, "")).lower())


def raw_records(emu, sobject: str) -> list[dict]:
    return emu.admin("GET", f"/_emulator/records/{sobject}")["records"]


def lead(emu, email: str) -> dict:
    found = [r for r in records(emu, "Lead") if r.get("Email", "").lower() == email.lower()]
    assert len(found) == 1, found
    return found[0]


def calls(emu) -> dict:
    return emu.admin("GET", "/_emulator/calls")["by_kind"]


def seed(emu, sobject: str, body) -> list[str]:
    answer = emu.admin("POST", f"/_emulator/records/{sobject}", json=body)
    return answer["ids"] if "ids" in answer else [answer["id"]]


def notes(records: int, *fields: str) -> dict:
    """A per-field note of the summary's JSON: records with such a field, and the fields' names."""
    return {
        "records": records,
        "fields": sorted(fields),
        "fields_not_listed": 0,
        "fields_list_complete": True,
    }


def written(summary: dict) -> dict:
    return summary["written"]


# --- the seed's examples -----------------------------------------------------------------------

SEED_LEAD = {**seed_examples.SEED_LEAD, "Status": DEFAULT_STATUS}


@pytest.mark.parametrize("event", [SEED_IDENTIFY_FLAT, SEED_IDENTIFY_OBJECTS], ids=["flat", "objects"])
def test_seed_identify_creates_exactly_the_seed_lead(org, tmp_path, event):
    result = run_events(org, tmp_path, [event])
    assert records(org, "Lead") == [SEED_LEAD]
    assert written(result.summary) == {"Lead": {"create": 1}}
    assert result.summary["records_written"] == {"Lead": {"create": 1}}
    assert result.dead == []


def test_seed_group_creates_exactly_the_seed_account(org, tmp_path):
    result = run_events(org, tmp_path, [SEED_GROUP])
    assert records(org, "Account") == [SEED_ACCOUNT]
    assert written(result.summary) == {"Account": {"create": 1}}
    assert result.summary["dead_lettered"] == {}


def _address(prefix: str) -> dict:
    return {
        f"{prefix}City": "East Greenwich",
        f"{prefix}Country": "US",
        f"{prefix}PostalCode": "02818",
        f"{prefix}State": "RI",
        f"{prefix}Street": "9000 Forest Lane",
    }


@pytest.mark.parametrize(
    "mapping, address",
    [
        ("billing", _address("Billing")),
        ("shipping", _address("Shipping")),
        ("both", _address("Billing") | _address("Shipping")),
    ],
)
def test_address_mapping_puts_the_group_address_where_asked(org, tmp_path, mapping, address):
    run_events(org, tmp_path, [SEED_GROUP], "--address_mapping", mapping)
    without_address = {k: v for k, v in SEED_ACCOUNT.items() if not k.startswith("Billing")}
    assert records(org, "Account") == [without_address | address]


# --- one run, many mapping rules: a table --------------------------------------------------------

LONG = "x" * 300
MAPPING_TABLE = [
    # (email, traits, expected Lead fields besides Email and Status)
    (
        "split@example.com",
        {"name": "Peter Gibbons"},
        {"FirstName": "Peter", "LastName": "Gibbons", "Company": "n/a"},
    ),
    (
        "three@example.com",
        {"name": "Mary Ann Smith"},
        {"FirstName": "Mary", "LastName": "Ann Smith", "Company": "n/a"},
    ),
    ("oneword@example.com", {"name": "Cher"}, {"LastName": "Cher", "Company": "n/a"}),
    (
        "padded@example.com",
        {"name": "  Peter Gibbons  "},
        {"FirstName": "Peter", "LastName": "Gibbons", "Company": "n/a"},
    ),
    (
        "explicitfirst@example.com",
        {"name": "Peter Gibbons", "firstName": "Pete"},
        {"FirstName": "Pete", "LastName": "Gibbons", "Company": "n/a"},
    ),
    (
        "explicitlast@example.com",
        {"name": "Peter Gibbons", "lastName": "Gibbons-Smith"},
        {"FirstName": "Peter", "LastName": "Gibbons-Smith", "Company": "n/a"},
    ),
    (
        "explicitboth@example.com",
        {"name": "Peter Gibbons", "firstName": "Bill", "lastName": "Lumbergh"},
        {"FirstName": "Bill", "LastName": "Lumbergh", "Company": "n/a"},
    ),
    ("nonames@example.com", {}, {"LastName": "n/a", "Company": "n/a"}),
    (
        "firstonly@example.com",
        {"firstName": "Milton"},
        {"FirstName": "Milton", "LastName": "n/a", "Company": "n/a"},
    ),
    (
        "companyobject@example.com",
        {"lastName": "W", "company": {"id": 7, "name": "Initrode"}},
        {"LastName": "W", "Company": "Initrode"},
    ),
    (
        "fields@example.com",
        {
            "lastName": "F",
            "company": "C",
            "website": "https://initech.example",
            "description": "a prospect",
            "leadSource": "Web",
            "industry": "Technology",
            "rating": "Warm",
            "phone": "555-0100",
        },
        {
            "LastName": "F",
            "Company": "C",
            "Website": "https://initech.example",
            "Description": "a prospect",
            "LeadSource": "Web",
            "Industry": "Technology",
            "Rating": "Warm",
            "Phone": "555-0100",
        },
    ),
    (
        "addressobject@example.com",
        {"lastName": "A", "city": "Flat City", "address": {"city": "Object City", "postalCode": "02818"}},
        {"LastName": "A", "Company": "n/a", "City": "Object City", "PostalCode": "02818"},
    ),
    (
        "custom@example.com",
        {"lastName": "C", "testProp": "kept casing", "favorite_color": "teal", "score": 12.5},
        {
            "LastName": "C",
            "Company": "n/a",
            "testProp__c": "kept casing",
            "favorite_color__c": "teal",
            "score__c": 12.5,
        },
    ),
    (
        "missingcustom@example.com",
        {"lastName": "M", "shoeSize": 44, "testProp": "present"},
        {"LastName": "M", "Company": "n/a", "testProp__c": "present"},
    ),
    (
        "trimmed@example.com",
        {
            "firstName": "F" * 50,
            "lastName": "L" * 90,
            "title": "T" * 200,
            "company": LONG,
            "favorite_color": "c" * 30,
        },
        {
            "FirstName": "F" * 40,
            "LastName": "L" * 80,
            "Title": "T" * 128,
            "Company": "x" * 255,
            "favorite_color__c": "c" * 20,
        },
    ),
    (
        "employees@example.com",
        {"lastName": "E", "employees": "4"},
        {"LastName": "E", "Company": "n/a", "NumberOfEmployees": 4},
    ),
    (
        "manyemployees@example.com",
        {"lastName": "E", "employees": "many"},
        {"LastName": "E", "Company": "n/a"},
    ),
    (
        "status@example.com",
        {"lastName": "S", "status": "Closed - Converted"},
        {"LastName": "S", "Company": "n/a"},
    ),
    (
        "StatusCap@example.com",
        {"lastName": "S", "Status": "Working - Contacted"},
        {"LastName": "S", "Company": "n/a"},
    ),
]


@pytest.fixture(scope="module")
def mapping_run(emu, tmp_path_factory):
    emu.admin("POST", "/_emulator/reset")
    events = [
        identify(f"map-{i}", email=email, **traits) for i, (email, traits, _) in enumerate(MAPPING_TABLE)
    ]
    result = run_events(emu, tmp_path_factory.mktemp("mapping"), events)
    return result, records(emu, "Lead")


@pytest.mark.parametrize(
    "email, traits, expected", MAPPING_TABLE, ids=[row[0].split("@")[0] for row in MAPPING_TABLE]
)
def test_identify_mapping_table(mapping_run, email, traits, expected):
    _, leads = mapping_run
    found = [r for r in leads if r["Email"] == email]
    assert found == [expected | {"Email": email, "Status": DEFAULT_STATUS}]


def test_mapping_run_counts_every_rule(mapping_run):
    summary, _ = mapping_run[0].summary, mapping_run[1]
    n = len(MAPPING_TABLE)
    assert summary["events_read"] == n
    assert written(summary) == {"Lead": {"create": n}}
    assert summary["dead_lettered"] == {}
    # Custom fields the org lacks are named, so that users know which fields to create.
    assert summary["missing_fields"] == ["Lead.Status__c", "Lead.shoeSize__c", "Lead.status__c"]
    assert summary["dropped_unknown"] == notes(3, "Lead.Status__c", "Lead.shoeSize__c", "Lead.status__c")
    # One record had all five fields trimmed.
    assert summary["trimmed"] == notes(
        1, "Lead.Company", "Lead.FirstName", "Lead.LastName", "Lead.Title", "Lead.favorite_color__c"
    )
    assert summary["converted"] == notes(1, "Lead.NumberOfEmployees")
    assert summary["dropped_type"] == notes(1, "Lead.NumberOfEmployees")
    assert summary["dropped_readonly"] == notes(0)


def test_account_name_is_trimmed_and_employees_converted(org, tmp_path):
    result = run_events(
        org, tmp_path, [group("g1", "A-1", name="N" * 300, employees="12", plan="gold", unknownThing="x")]
    )
    assert records(org, "Account") == [
        {"Name": "N" * 255, "AccountNumber": "A-1", "NumberOfEmployees": 12, "plan__c": "gold"}
    ]
    assert result.summary["trimmed"] == notes(1, "Account.Name")
    assert result.summary["converted"] == notes(1, "Account.NumberOfEmployees")
    assert result.summary["dropped_unknown"] == notes(1, "Account.unknownThing__c")
    assert result.summary["missing_fields"] == ["Account.unknownThing__c"]


# --- updates: only what the event says; LastName/Company/Status never overwritten ----------------


def test_identify_updates_only_the_traits_it_carries(org, tmp_path):
    seed(
        org,
        "Lead",
        {
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Company": "Analytical Engines",
            "Email": "ada@example.com",
            "Title": "Countess",
            "Phone": "555-0001",
            "City": "London",
            "Status": "Working - Contacted",
            "testProp__c": "before",
        },
    )
    result = run_events(org, tmp_path, [identify("u1", email="ada@example.com", title="Mathematician")])
    assert records(org, "Lead") == [
        {
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Company": "Analytical Engines",
            "Email": "ada@example.com",
            "Title": "Mathematician",
            "Phone": "555-0001",
            "City": "London",
            "Status": "Working - Contacted",
            "testProp__c": "before",
        }
    ]
    assert written(result.summary) == {"Lead": {"update": 1}}


def test_na_defaults_never_overwrite_existing_values(org, tmp_path):
    seed(org, "Lead", {"LastName": "Lovelace", "Company": "Analytical Engines", "Email": "ada@example.com"})
    run_events(org, tmp_path, [identify("u1", email="ADA@example.com", firstName="Ada", status="Closed")])
    (only,) = records(org, "Lead")
    assert (only["FirstName"], only["LastName"], only["Company"], only["Status"]) == (
        "Ada",
        "Lovelace",
        "Analytical Engines",
        DEFAULT_STATUS,
    )


def test_status_is_never_written_on_update(org, tmp_path):
    seed(
        org,
        "Lead",
        {"LastName": "L", "Company": "C", "Email": "s@example.com", "Status": "Working - Contacted"},
    )
    run_events(org, tmp_path, [identify("u1", email="s@example.com", Status="Closed - Not Converted")])
    assert lead(org, "s@example.com")["Status"] == "Working - Contacted"


# --- the gate ------------------------------------------------------------------------------------

GATE_TABLE = [
    # (integrations, enabled by default, enabled with --always_enabled)
    ({"Salesforce": True}, True, True),
    ({"Salesforce": {"sandbox": False}}, True, True),
    ({"Salesforce": {}}, True, True),
    ({"All": False, "Salesforce": True}, True, True),
    (None, False, True),
    ({}, False, True),
    ({"All": True}, False, True),
    ({"salesforce": True}, False, True),
    # An explicit opt-out holds even with --always_enabled (Segment's integrations object).
    ({"All": False}, False, False),
    ({"Salesforce": False}, False, False),
]


@pytest.mark.parametrize("always", [False, True], ids=["gated", "always_enabled"])
def test_gate_table(org, tmp_path, always):
    events = [
        identify(f"gate-{i}", integrations=i9s, email=f"g{i}@example.com")
        for i, (i9s, _, _) in enumerate(GATE_TABLE)
    ]
    flags = ["--always_enabled"] if always else []
    result = run_events(org, tmp_path, events, *flags)
    expected = {f"g{i}@example.com" for i, row in enumerate(GATE_TABLE) if row[2 if always else 1]}
    assert {r["Email"] for r in records(org, "Lead")} == expected
    assert result.summary["events_filtered"] == len(GATE_TABLE) - len(expected)
    assert written(result.summary) == {"Lead": {"create": len(expected)}}


def test_track_page_and_alias_are_not_written_but_accounted(org, tmp_path):
    events = [
        {
            "type": "track",
            "messageId": "t1",
            "timestamp": T0,
            "userId": "u",
            "event": "Signed Up",
            "integrations": SF,
        },
        {
            "type": "page",
            "messageId": "p1",
            "timestamp": T0,
            "userId": "u",
            "name": "Home",
            "integrations": SF,
        },
        {
            "type": "alias",
            "messageId": "a1",
            "timestamp": T0,
            "userId": "u",
            "previousId": "x",
            "integrations": SF,
        },
        identify("i1", email="i@example.com"),
    ]
    result = run_events(org, tmp_path, events)
    assert len(records(org, "Lead")) == 1
    assert result.summary["events_read"] == 4
    assert written(result.summary) == {"Lead": {"create": 1}}
    # Segment's destination has no default action for them (the seed's Actions are configured).
    assert result.summary["filtered"] == {
        "no_action_for_alias": 1,
        "no_action_for_page": 1,
        "no_action_for_track": 1,
    }
    assert result.dead == []


# --- merging, deduplication, ordering ------------------------------------------------------------


def test_out_of_order_events_for_one_person_last_write_wins(org, tmp_path):
    events = [
        identify("late", ts="2026-11-01T12:00:00.000Z", email="pat@example.com", title="Director"),
        identify(
            "early", ts="2026-11-01T08:00:00.000Z", email="pat@example.com", title="Intern", phone="555-0199"
        ),
        identify(
            "mid", ts="2026-11-01T10:00:00.000Z", email="PAT@example.com", title="Manager", lastName="Doe"
        ),
    ]
    result = run_events(org, tmp_path, events)
    (only,) = records(org, "Lead")
    assert {k: only.get(k) for k in ("Title", "Phone", "LastName", "Company")} == {
        "Title": "Director",
        "Phone": "555-0199",
        "LastName": "Doe",
        "Company": "n/a",
    }
    assert only["Email"].lower() == "pat@example.com"
    assert written(result.summary) == {"Lead": {"create": 3}}
    assert result.summary["records_written"] == {"Lead": {"create": 1}}


def test_timestamps_compare_as_instants_not_as_text(org, tmp_path):
    # 10:00+02:00 is 08:00Z, earlier than 09:00Z although it sorts later as text.
    events = [
        identify("z", ts="2026-11-01T09:00:00Z", email="tz@example.com", title="Later"),
        identify("offset", ts="2026-11-01T10:00:00+02:00", email="tz@example.com", title="Earlier"),
    ]
    run_events(org, tmp_path, events)
    assert lead(org, "tz@example.com")["Title"] == "Later"


def test_a_timestamp_that_is_not_a_time_does_not_win(org, tmp_path):
    garbage = identify("garbage", email="ts@example.com", title="Garbage") | {"timestamp": "yesterday"}
    events = [garbage, identify("real", ts="2020-01-01T00:00:00Z", email="ts@example.com", title="Real")]
    run_events(org, tmp_path, events)
    assert lead(org, "ts@example.com")["Title"] == "Real"


def test_duplicate_message_ids_across_files_are_written_once(org, tmp_path):
    a = identify("dup-1", email="d@example.com", title="One")
    b = group("dup-2", "G-1", name="Dup Co")
    files = {
        "a.jsonl": jsonl([a, b]),
        "b.json": jsonl([a]),
        "c.jsonl.gz": gzip.compress(jsonl([b, a]).encode()),
    }
    result = run_files(org, tmp_path, files)
    assert records(org, "Lead") == [
        {
            "LastName": "n/a",
            "Company": "n/a",
            "Email": "d@example.com",
            "Title": "One",
            "Status": DEFAULT_STATUS,
        }
    ]
    assert records(org, "Account") == [{"Name": "Dup Co", "AccountNumber": "G-1"}]
    assert result.summary["events_read"] == 5
    assert result.summary["deduplicated"] == 3
    assert written(result.summary) == {"Lead": {"create": 1}, "Account": {"create": 1}}


def test_emails_differing_in_case_are_one_lead(org, tmp_path):
    seed(org, "Lead", {"LastName": "Existing", "Company": "C", "Email": "Case.Test@Example.com"})
    events = [
        identify("c1", email="case.test@example.com", title="A"),
        identify("c2", ts="2026-11-01T11:00:00.000Z", email="CASE.TEST@EXAMPLE.COM", phone="1"),
        identify("n1", email="New.Person@Example.com", title="B"),
        identify("n2", ts="2026-11-01T11:00:00.000Z", email="new.person@example.com", phone="2"),
    ]
    result = run_events(org, tmp_path, events)
    leads = records(org, "Lead")
    assert len(leads) == 2
    assert {(r["Title"], r["Phone"]) for r in leads} == {("A", "1"), ("B", "2")}
    assert result.summary["records_written"] == {"Lead": {"create": 1, "update": 1}}


def test_quotes_and_backslashes_in_emails_are_matched(org, tmp_path):
    seed(org, "Lead", {"LastName": "Q", "Company": "C", "Email": "o'brien@example.com"})
    events = [
        identify("q1", email="o'brien@example.com", title="Updated"),
        identify("q2", email='d"q@example.com', title="New"),
        # Both lookups must be well-formed SOQL; Salesforce then refuses the addresses themselves.
        identify("q3", email="back\\slash@example.com", title="New"),
    ]
    result = run_events(org, tmp_path, events)
    assert lead(org, "o'brien@example.com")["Title"] == "Updated"
    assert result.summary["records_written"] == {"Lead": {"update": 1}}
    assert sorted((d["event"]["messageId"], d["reason"]) for d in result.dead) == [
        ("q2", "INVALID_EMAIL_ADDRESS"),
        ("q3", "INVALID_EMAIL_ADDRESS"),
    ]


def test_rerunning_the_same_input_creates_no_duplicates(org, tmp_path):
    events = [identify(f"r{i}", email=f"r{i}@example.com", lastName=f"R{i}") for i in range(5)]
    events += [group("rg", "RG-1", name="Rerun Co")]
    first = run_events(org, tmp_path, events, name="first")
    second = run_events(org, tmp_path, events, name="second")
    assert len(raw_records(org, "Lead")) == 5
    assert len(raw_records(org, "Account")) == 1
    assert first.summary["records_written"] == {"Lead": {"create": 5}, "Account": {"create": 1}}
    assert second.summary["records_written"] == {"Lead": {"update": 5}, "Account": {"update": 1}}


# --- dead letters --------------------------------------------------------------------------------


def test_bad_input_becomes_dead_letters_with_reasons(org, tmp_path):
    no_email = identify("ne", lastName="Nobody")
    no_name = group("nn", "G-9", employees=3)
    # A group's context.traits are the *user's* traits (Segment spec): never the Account's name.
    user_name_only = group("cn", "G-8") | {"context": {"traits": {"name": "Peter Gibbons"}}}
    events = [
        "{not json",
        "[1, 2]",
        json.dumps({"type": "rocket", "messageId": "r", "integrations": SF}),
        no_email,
        no_name,
        user_name_only,
        identify("ok", email="ok@example.com"),
    ]
    result = run_events(org, tmp_path, events)
    by = result.dead_by_reason()
    assert {reason: len(v) for reason, v in by.items()} == {
        "invalid_json": 1,
        "not_an_object": 1,
        "unknown_type": 1,
        "missing_email": 1,
        "missing_name": 2,
    }
    assert by["invalid_json"][0]["event"] == "{not json"
    assert by["not_an_object"][0]["event"] == "[1, 2]"
    assert by["missing_email"][0]["event"] == no_email
    assert sorted(d["event"]["messageId"] for d in by["missing_name"]) == ["cn", "nn"]
    for letter in result.dead:
        assert letter["retryable"] is False
        assert letter["message"]
        assert letter["stage"] in ("parse", "map")
        assert letter["time"].endswith("Z")
    assert records(org, "Account") == []
    assert len(records(org, "Lead")) == 1
    assert result.summary["dead_lettered"] == {
        "invalid_json": 1,
        "not_an_object": 1,
        "unknown_type": 1,
        "missing_email": 1,
        "missing_name": 2,
    }


def test_identify_with_traits_only_in_context_is_matched(org, tmp_path):
    event = identify("ct") | {
        "traits": {},
        "context": {"traits": {"email": "ctx@example.com", "lastName": "Ctx"}},
    }
    both = identify("both", email="own@example.com", title="Own") | {
        "context": {"traits": {"email": "ctx-other@example.com", "title": "Ctx", "phone": "555-0111"}}
    }
    result = run_events(org, tmp_path, [event, both])
    assert lead(org, "ctx@example.com")["LastName"] == "Ctx"
    # The call's own traits win; context.traits fill in what they lack.
    own = lead(org, "own@example.com")
    assert (own["Title"], own["Phone"]) == ("Own", "555-0111")
    assert len(raw_records(org, "Lead")) == 2
    assert result.dead == []


def test_salesforce_rejection_is_a_dead_letter_and_the_batch_goes_on(org, tmp_path):
    events = [
        identify("bad", email="not-an-email", lastName="Bad"),
        identify("bad2", ts="2026-11-01T11:00:00.000Z", email="not-an-email", title="Also bad"),
        identify("good1", email="good1@example.com"),
        identify("good2", email="good2@example.com"),
    ]
    result = run_events(org, tmp_path, events)
    assert sorted(r["Email"] for r in records(org, "Lead")) == ["good1@example.com", "good2@example.com"]
    by = result.dead_by_reason()
    assert list(by) == ["INVALID_EMAIL_ADDRESS"]
    assert sorted(d["event"]["messageId"] for d in by["INVALID_EMAIL_ADDRESS"]) == ["bad", "bad2"]
    for letter in by["INVALID_EMAIL_ADDRESS"]:
        assert letter["stage"] == "write"
        assert letter["retryable"] is False
        assert letter["message"] == "Email: invalid email address: not-an-email"
    assert written(result.summary) == {"Lead": {"create": 2}}


CONVERTED_LEAD = {
    "LastName": "Conv",
    "Company": "C",
    "Email": "conv@example.com",
    "IsConverted": True,
    "Title": "Old",
}


def test_a_converted_leads_identify_updates_its_contact(org, tmp_path):
    seed(
        org,
        "Lead",
        {
            "LastName": "Conv",
            "Company": "C",
            "Email": "conv@example.com",
            "IsConverted": True,
            "Title": "Old",
        },
    )
    converted = lead(org, "conv@example.com")
    result = run_events(org, tmp_path, [identify("cv", email="conv@example.com", title="New")])
    assert lead(org, "conv@example.com")["Title"] == "Old"  # Salesforce refuses updates to converted Leads
    [contact] = raw_records(org, "Contact")
    assert contact["Id"] == converted["ConvertedContactId"]
    assert (contact["Title"], contact["Email"]) == ("New", "conv@example.com")
    assert written(result.summary) == {"Contact": {"update_converted_lead": 1}}
    assert result.dead == []
    assert_balanced(result.summary)


def test_converted_lead_is_a_dead_letter_when_asked(org, tmp_path):
    seed(
        org,
        "Lead",
        {
            "LastName": "Conv",
            "Company": "C",
            "Email": "conv@example.com",
            "IsConverted": True,
            "Title": "Old",
        },
    )
    result = run_events(
        org,
        tmp_path,
        [identify("cv", email="conv@example.com", title="New")],
        "--converted_leads",
        "dead_letter",
    )
    assert lead(org, "conv@example.com")["Title"] == "Old"
    [contact] = raw_records(org, "Contact")
    assert contact["Title"] == "Old"  # as the conversion made it
    assert written(result.summary) == {}
    assert [d["reason"] for d in result.dead] == ["lead_converted"]
    assert result.dead[0]["retryable"] is False


def test_open_lead_is_updated_when_a_converted_one_shares_its_email(org, tmp_path):
    seed(
        org,
        "Lead",
        [
            {
                "LastName": "Open",
                "Company": "C",
                "Email": "both@example.com",
                "LastModifiedDate": "2026-01-01T00:00:00.000+0000",
            },
            {
                "LastName": "Conv",
                "Company": "C",
                "Email": "both@example.com",
                "IsConverted": True,
                "LastModifiedDate": "2026-06-01T00:00:00.000+0000",
            },
        ],
    )
    result = run_events(org, tmp_path, [identify("b", email="both@example.com", title="Updated")])
    by_name = {r["LastName"]: r for r in raw_records(org, "Lead")}
    assert by_name["Open"]["Title"] == "Updated"
    assert by_name["Conv"].get("Title") is None
    assert written(result.summary) == {"Lead": {"update": 1}}


def test_several_leads_with_one_email_update_the_most_recently_modified(org, tmp_path):
    seed(
        org,
        "Lead",
        [
            {
                "LastName": "Old",
                "Company": "C",
                "Email": "many@example.com",
                "LastModifiedDate": "2026-01-01T00:00:00.000+0000",
            },
            {
                "LastName": "New",
                "Company": "C",
                "Email": "many@example.com",
                "LastModifiedDate": "2026-06-01T00:00:00.000+0000",
            },
            {
                "LastName": "Mid",
                "Company": "C",
                "Email": "MANY@example.com",
                "LastModifiedDate": "2026-03-01T00:00:00.000+0000",
            },
        ],
    )
    result = run_events(org, tmp_path, [identify("m", email="many@example.com", title="Picked")])
    titles = {r["LastName"]: r.get("Title") for r in raw_records(org, "Lead")}
    assert titles == {"Old": None, "New": "Picked", "Mid": None}
    assert result.summary["ambiguous_matches"] == {"Lead": 1}
    assert written(result.summary) == {"Lead": {"update": 1}}


# --- the API: limits, faults, sessions, call counts ----------------------------------------------


def test_api_calls_for_a_known_input(org, tmp_path):
    events = [identify(f"c{i}", email=f"p{i % 20}@example.com") for i in range(100)]
    events += [group(f"g{i}", f"ACC-{i % 5}", name=f"Co {i % 5}") for i in range(20)]
    result = run_events(org, tmp_path, events)
    # Per object: one describe, one SOQL lookup, one sObject Collections call; plus logging in.
    assert calls(org) == {"login": 2, "describe": 2, "query": 2, "collections": 2}
    assert result.summary["api_calls"] == 8
    assert result.summary["records_written"] == {"Lead": {"create": 20}, "Account": {"create": 5}}


def test_api_limit_exhausted_before_writing_keeps_every_event_retryable(org, tmp_path):
    org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    events = [identify(f"l{i}", email=f"l{i}@example.com") for i in range(3)] + [group("lg", "L-1", name="L")]
    result = run_events(org, tmp_path, events)
    assert raw_records(org, "Lead") == [] and raw_records(org, "Account") == []
    assert written(result.summary) == {}
    assert len(result.dead) == 4
    assert {d["reason"] for d in result.dead} == {"REQUEST_LIMIT_EXCEEDED"}
    assert all(d["retryable"] for d in result.dead)
    assert sorted(d["event"]["messageId"] for d in result.dead) == ["l0", "l1", "l2", "lg"]
    assert result.summary["retryable_dead_letters"] == 4


def test_api_limit_exhausted_while_writing_loses_nothing_and_replays(org, tmp_path):
    events = [identify(f"w{i}", email=f"w{i}@example.com") for i in range(6)]
    # describe, then a lookup and a create per batch of 2: enough for the describe and one batch (with
    # one batch in flight at a time: concurrent batches would share the calls out differently each run).
    org.admin("POST", "/_emulator/limits", json={"remaining": 3})
    result = run_events(org, tmp_path, events, "--batch_size", "2", "--shards", "1", "--writer_threads", "1")
    created = {r["Email"] for r in raw_records(org, "Lead")}
    dead = {d["event"]["traits"]["email"] for d in result.dead}
    assert len(created) == 2
    assert created | dead == {f"w{i}@example.com" for i in range(6)}
    assert not created & dead
    assert all(d["retryable"] and d["reason"] == "REQUEST_LIMIT_EXCEEDED" for d in result.dead)

    # The dead-letter files, read again as input once the allocation is back, write the rest, once.
    org.admin("POST", "/_emulator/limits", json={"remaining": 1000})
    dead_files = {
        Path(f).name: Path(f).read_bytes() for f in sorted(glob.glob(str(tmp_path / "run" / "dead*")))
    }
    replay = run_files(org, tmp_path, dead_files, name="replay")
    assert replay.dead == []
    assert written(replay.summary) == {"Lead": {"create": 4}}
    assert sorted(r["Email"] for r in raw_records(org, "Lead")) == [f"w{i}@example.com" for i in range(6)]


def test_transient_faults_write_every_record_exactly_once(org, tmp_path):
    kinds = ["SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "UNKNOWN_EXCEPTION"]
    org.admin("POST", "/_emulator/faults", json={"error_rate": 0.3, "seed": 1, "error_kinds": kinds})
    events = [identify(f"f{i}", email=f"f{i}@example.com", lastName=f"F{i}") for i in range(30)]
    events += [group(f"fg{i}", f"F-{i}", name=f"Fault {i}") for i in range(5)]
    result = run_events(org, tmp_path, events, "--batch_size", "5", "--shards", "2")
    org.admin("POST", "/_emulator/faults", json={})
    leads = raw_records(org, "Lead")
    accounts = raw_records(org, "Account")
    assert sorted(r["Email"] for r in leads) == sorted(f"f{i}@example.com" for i in range(30))
    assert sorted(r["AccountNumber"] for r in accounts) == sorted(f"F-{i}" for i in range(5))
    assert result.dead == []
    assert result.summary["records_written"] == {"Lead": {"create": 30}, "Account": {"create": 5}}


def test_an_expired_session_is_renewed_by_the_client(org):
    info = org.info
    client = SalesforceClient(
        Credentials(info["username"], info["password"], info["security_token"]),
        ConnectionSettings(login_url=info["login_url"], ca_bundle=info["ca_bundle"]),
    )
    client.login()
    first = upsert_by_key(
        client, "Lead", "Email", [UpsertItem("s1@example.com", {"LastName": "S"}, {"Company": "n/a"})]
    )
    org.admin("POST", "/_emulator/sessions/expire")
    second = upsert_by_key(
        client, "Lead", "Email", [UpsertItem("s1@example.com", {"Title": "T"}, {"Company": "n/a"})]
    )
    assert [o.action for o in first + second] == ["created", "updated"]
    assert calls(org)["login"] == 2
    assert len(raw_records(org, "Lead")) == 1


# --- input files ---------------------------------------------------------------------------------


def test_gzip_json_bom_crlf_blank_and_huge_lines(org, tmp_path):
    huge = identify("huge", email="huge@example.com", description="d" * 2_000_000)
    files = {
        "a.jsonl.gz": gzip.compress(
            ("\ufeff" + jsonl([identify("gz", email="gz@example.com")])).encode("utf-8")
        ),
        "b.json": "\ufeff"
        + json.dumps(identify("bom", email="bom@example.com"))
        + "\r\n\r\n"
        + json.dumps(identify("crlf", email="crlf@example.com"))
        + "\r\n",
        "c.jsonl": "\n" + json.dumps(huge) + "\n   \n",
    }
    result = run_files(org, tmp_path, files)
    assert sorted(r["Email"] for r in records(org, "Lead")) == [
        "bom@example.com",
        "crlf@example.com",
        "gz@example.com",
        "huge@example.com",
    ]
    assert lead(org, "huge@example.com")["Description"] == "d" * 32000
    assert result.summary["events_read"] == 4
    assert result.summary["blank_lines"] == 3
    assert result.summary["dead_lettered"] == {}
    assert result.summary["trimmed"] == notes(1, "Lead.Description")


# --- the command line ----------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SALESFORCE_")}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=REPO,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_command_line_run_help_and_secrets(org, tmp_path):
    (tmp_path / "events.jsonl").write_text(
        jsonl([SEED_IDENTIFY_FLAT, SEED_GROUP, identify("x", lastName="no email"), "garbage"])
    )
    args = [
        "--input",
        str(tmp_path / "events.jsonl"),
        "--dead_letter_output",
        str(tmp_path / "dead"),
        "--summary_output",
        str(tmp_path / "summary.json"),
        *connection_flags(org),
    ]
    done = _cli(args, environ(org), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Events read:" in done.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert_balanced(summary)
    assert summary["events_read"] == 4
    assert summary["dead_lettered"] == {"invalid_json": 1, "missing_email": 1}
    assert records(org, "Lead") == [SEED_LEAD]
    assert records(org, "Account") == [SEED_ACCOUNT]
    dead = "".join(Path(f).read_text() for f in glob.glob(str(tmp_path / "dead") + "*"))
    for text in (done.stdout, done.stderr, dead, json.dumps(summary)):
        assert_no_secret(text)
    # No payloads in the logs either: personal data stays in Salesforce and the dead letters.
    assert "peter.gibbons" not in done.stdout + done.stderr
    assert "no email" not in done.stdout + done.stderr

    helped = _cli(["--help"], environ(org), tmp_path)
    assert helped.returncode == 0
    for option in (
        "--input",
        "--salesforce_login_url",
        "--sandbox",
        "--salesforce_ca_bundle",
        "--dead_letter_output",
        "--summary_output",
        "--address_mapping",
        "--always_enabled",
        "SALESFORCE_USERNAME",
        "SALESFORCE_PASSWORD",
        "SALESFORCE_SECURITY_TOKEN",
    ):
        assert option in helped.stdout
    assert_no_secret(helped.stdout + helped.stderr)


def test_command_line_missing_credential_exits_2_naming_it(org, tmp_path):
    (tmp_path / "events.jsonl").write_text(jsonl([identify("x", email="x@example.com")]))
    env = environ(org)
    del env["SALESFORCE_SECURITY_TOKEN"]
    done = _cli(["--input", str(tmp_path / "events.jsonl"), *connection_flags(org)], env, tmp_path)
    assert done.returncode == 2
    assert "SALESFORCE_SECURITY_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_secret(done.stdout + done.stderr)
    assert calls(org) == {}


BAD_OPTIONS = [
    # (argv after the connection flags, environment change, what the message names)
    (["--address_mapping", "diagonal"], {}, "--address_mapping"),
    (["--batch_size", "0"], {}, "--batch_size"),
    (["--shards", "many"], {}, "--shards"),
    (["--sandbox", "uat.prod"], {}, "--sandbox"),
    (["--password", "hunter2"], {}, "--password"),
    (["--salesforce_ca_bundle", "/nonexistent/ca.pem"], {}, "--salesforce_ca_bundle"),
    (["--salesforce_login_url", "http://login.example.com"], {}, "--salesforce_login_url"),
    (["--summary_output", "/nonexistent/dir/summary.json"], {}, "--summary_output"),
    (["--dead_letter_output", "/etc/hostname/dead"], {}, "--dead_letter_output"),
    (["--salesforce_api_version", "v66"], {}, "--salesforce_api_version"),
    (["--runner", "NoSuchRunner"], {}, "--runner"),
    ([], {"SALESFORCE_USERNAME": None}, "SALESFORCE_USERNAME"),
    ([], {"SALESFORCE_PASSWORD": ""}, "SALESFORCE_PASSWORD"),
    ([], {"SALESFORCE_PASSWORD": "wrong-password-9"}, "SALESFORCE_PASSWORD"),
]


@pytest.mark.parametrize(
    "argv, env_change, named", BAD_OPTIONS, ids=[row[2] + str(i) for i, row in enumerate(BAD_OPTIONS)]
)
def test_bad_options_stop_before_reading(org, tmp_path, monkeypatch, capsys, argv, env_change, named):
    (tmp_path / "events.jsonl").write_text(jsonl([identify("x", email="x@example.com"), "garbage"]))
    for key, value in (environ(org) | env_change).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    prefix = tmp_path / "dead"
    code = main(
        [
            "--input",
            str(tmp_path / "events.jsonl"),
            "--dead_letter_output",
            str(prefix),
            *connection_flags(org),
            *argv,
        ]
    )
    out = capsys.readouterr()
    assert code == 2
    assert named in out.err
    assert "Traceback" not in out.err
    # One line saying what to fix, after our options' usage at most, not Beam's hundreds of runner options.
    assert len(out.err.removeprefix(help_parser().format_usage()).splitlines()) == 1, out.err
    assert_no_secret(out.out + out.err)
    assert "wrong-password-9" not in out.out + out.err
    assert glob.glob(str(prefix) + "*") == []
    assert raw_records(org, "Lead") == []
    assert set(calls(org)) <= {"login"}


def test_missing_input_exits_2(org, tmp_path, monkeypatch, capsys):
    for key, value in environ(org).items():
        monkeypatch.setenv(key, value)
    assert main([*connection_flags(org)]) == 2
    assert "--input" in capsys.readouterr().err
    assert main(["--input", str(tmp_path / "nothing-*.jsonl"), *connection_flags(org)]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_sandbox_appends_the_sandbox_name_to_the_username(org, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default dead-letter location is under the current directory
    env = {
        "SALESFORCE_USERNAME": "sandbox.api@example.com",
        "SALESFORCE_PASSWORD": SANDBOX_PASSWORD,
        "SALESFORCE_SECURITY_TOKEN": SANDBOX_TOKEN,
    }
    base = tmp_path / "in.jsonl"
    base.write_text(jsonl([identify("sb", email="sb@example.com")]))
    summary = run(["--input", str(base), "--sandbox", "uat", *connection_flags(org)], env)
    assert written(json.loads(summary.to_json())) == {"Lead": {"create": 1}}
    assert records(org, "Lead")[0]["Email"] == "sb@example.com"


# --- hostile input -------------------------------------------------------------------------------


def test_hostile_lines_are_dead_letters_never_a_crash(org, tmp_path):
    lines = [
        "[" * 100_000,  # nested too deep for a recursive parser
        '{"type": "identify", "messageId": "nan", "timestamp": "2026-11-01T10:00:00Z", "userId": "u", '
        '"traits": {"email": "nan@example.com", "employees": NaN}, "integrations": {"Salesforce": true}}',
        json.dumps(identify("traits-string", email="x@example.com") | {"traits": "not an object"}),
        json.dumps(identify("email-list", email=["a@example.com"])),
        json.dumps(
            {
                "type": "identify",
                "messageId": "nouser",
                "timestamp": T0,
                "traits": {"email": "nu@example.com"},
                "integrations": SF,
            }
        ),
        json.dumps(
            {
                "type": "group",
                "messageId": "nogroup",
                "timestamp": T0,
                "userId": "u",
                "traits": {"name": "X"},
                "integrations": SF,
            }
        ),
        json.dumps(identify("ok", email="ok@example.com")),
    ]
    files = {"a.jsonl": jsonl(lines), "b.jsonl": b'{"type": "identify", "bad": "\xff\xfe"}\n'}
    result = run_files(org, tmp_path, files)
    # The healthy event is written whatever the others carry.
    assert "ok@example.com" in {r["Email"] for r in records(org, "Lead")}
    assert result.summary["events_read"] == 8
    assert sorted((d["stage"], d["reason"]) for d in result.dead) == [
        ("map", "invalid_email"),
        ("parse", "invalid_encoding"),
        ("parse", "invalid_json"),  # NaN is not JSON
        ("parse", "invalid_traits"),
        ("parse", "missing_group_id"),
        ("parse", "missing_user_id"),
        ("parse", "too_deeply_nested"),
    ]


def test_corrupt_gzip_file_does_not_crash_the_run(org, tmp_path):
    files = {
        "good.jsonl": jsonl([identify("g", email="good@example.com")]),
        "bad.jsonl.gz": b"this is not gzip\n",
    }
    result = run_files(org, tmp_path, files)
    assert [r["Email"] for r in records(org, "Lead")] == ["good@example.com"]
    assert [(d["stage"], d["reason"], d["retryable"]) for d in result.dead] == [
        ("read", "unreadable_file", False)
    ]
    assert result.dead[0]["source"].endswith("bad.jsonl.gz")
    assert result.summary["events_read"] == 2


def test_soql_injection_in_an_email_matches_nothing_else(org, tmp_path):
    seed(org, "Lead", {"LastName": "Victim", "Company": "C", "Email": "victim@example.com", "Title": "Safe"})
    events = [
        identify("inj1", email="x' OR Email != 'y", title="Owned"),
        identify("inj2", email="x\\' OR Email LIKE '%", title="Owned"),
    ]
    run_events(org, tmp_path, events)
    assert lead(org, "victim@example.com")["Title"] == "Safe"


def test_values_salesforce_would_refuse_are_dropped_not_fatal(org, tmp_path):
    events = [
        identify("big", email="big@example.com", employees=10**9),
        identify("frac", email="frac@example.com", employees="4.5"),
        identify("obj", email="obj@example.com", testProp={"nested": True}, favorite_color=["red"]),
        group("gbig", "GB-1", name="Big", employees=123_456_789),
    ]
    result = run_events(org, tmp_path, events)
    assert [r.get("NumberOfEmployees") for r in records(org, "Lead")] == [None, None, None]
    # Objects and lists reach a text field as JSON text: nothing lost.
    assert (
        lead(org, "obj@example.com")["testProp__c"],
        lead(org, "obj@example.com")["favorite_color__c"],
    ) == (
        '{"nested":true}',
        '["red"]',
    )
    assert records(org, "Account") == [{"Name": "Big", "AccountNumber": "GB-1"}]
    assert result.dead == []
    assert result.summary["dropped_type"] == notes(3, "Account.NumberOfEmployees", "Lead.NumberOfEmployees")


def test_many_records_use_few_calls(org, tmp_path):
    events = [identify(f"m{i}", email=f"person{i}@example.com") for i in range(450)]
    result = run_events(org, tmp_path, events)
    assert len(raw_records(org, "Lead")) == 450
    # One lookup; 200 records per sObject Collections call.
    assert calls(org) == {"login": 2, "describe": 1, "query": 1, "collections": 3}
    assert result.summary["api_calls"] == 7


def test_exit_status_says_when_events_wait_for_a_retry(org, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default dead-letter location is under the current directory
    for key, value in environ(org).items():
        monkeypatch.setenv(key, value)
    (tmp_path / "events.jsonl").write_text(jsonl([identify("x", email="x@example.com")]))
    argv = ["--input", str(tmp_path / "events.jsonl"), *connection_flags(org)]
    org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    assert main(argv) == 3
    assert "retryable" in capsys.readouterr().err
    # Without --dead_letter_output the event waits in the default folder, as valid input for a replay.
    dead = [json.loads(line) for f in glob.glob("dead_letters/*/dead_letters-*.jsonl") for line in open(f)]
    assert [(d["reason"], d["retryable"], d["event"]["messageId"]) for d in dead] == [
        ("REQUEST_LIMIT_EXCEEDED", True, "x")
    ]
    org.admin("POST", "/_emulator/limits", json={"remaining": 1000})
    assert main(argv) == 0
    assert [r["Email"] for r in records(org, "Lead")] == ["x@example.com"]


# --- match keys and nulls ------------------------------------------------------------------------


def test_a_match_key_too_long_for_its_field_is_never_trimmed(org, tmp_path):
    # Trimming the key would write a record that the next run's lookup cannot find: a duplicate
    # on every run. Salesforce's Email holds 80 characters, AccountNumber 40.
    long_email = "a" * 70 + "@example.com"
    long_group = "G" * 41
    events = [identify("le", email=long_email, lastName="Long"), group("lg", long_group, name="Long Co")]
    for name in ("first", "second"):
        result = run_events(org, tmp_path, events, name=name)
        assert raw_records(org, "Lead") == [] and raw_records(org, "Account") == []
        assert sorted(d["event"]["messageId"] for d in result.dead) == ["le", "lg"]
        assert all(not d["retryable"] for d in result.dead)
    assert {d["reason"] for d in result.dead} == {"STRING_TOO_LONG"}


def test_null_traits_never_blank_required_fields(org, tmp_path):
    seed(org, "Lead", {"LastName": "Keep", "Company": "Keep Co", "Email": "null@example.com", "Title": "Old"})
    seed(org, "Account", {"Name": "Keep Inc", "AccountNumber": "N-1", "Phone": "1"})
    events = [
        identify("n1", email="null@example.com", lastName=None, company=None, title="New"),
        identify("n2", email="fresh@example.com", lastName=None, company=None),
        group("n3", "N-1", name="Keep Inc", phone="2", employees=None),
    ]
    result = run_events(org, tmp_path, events)
    assert result.dead == []
    assert lead(org, "null@example.com") | {} == {
        "LastName": "Keep",
        "Company": "Keep Co",
        "Email": "null@example.com",
        "Title": "New",
        "Status": DEFAULT_STATUS,
    }
    assert lead(org, "fresh@example.com")["LastName"] == "n/a"
    assert records(org, "Account") == [{"Name": "Keep Inc", "AccountNumber": "N-1", "Phone": "2"}]


def test_numeric_group_id_and_padded_email(org, tmp_path):
    events = [
        group("num", 813, name="Teemo"),
        identify("pad", email="  padded@example.com  ", lastName="P"),
    ]
    result = run_events(org, tmp_path, events)
    assert records(org, "Account") == [{"Name": "Teemo", "AccountNumber": "813"}]
    assert lead(org, "padded@example.com")["Email"] == "padded@example.com"
    assert result.dead == []


def test_trimming_counts_utf16_units_and_never_splits_a_character(org, tmp_path):
    run_events(org, tmp_path, [identify("emoji", email="emoji@example.com", title="a" * 127 + "\U0001f600")])
    assert lead(org, "emoji@example.com")["Title"] == "a" * 127


class _ExpiringClient(SalesforceClient):
    """The real client, except that every session in the org expires right after each lookup."""

    admin_url = ""
    ca_bundle = ""

    def query_all(self, soql: str) -> list[dict]:
        found = super().query_all(soql)
        session = requests.Session()
        session.trust_env = False
        session.post(
            f"{self.admin_url}/sessions/expire", verify=self.ca_bundle, timeout=30
        ).raise_for_status()
        return found


def test_sessions_expiring_mid_run_are_renewed_and_nothing_is_lost(org, tmp_path):
    _ExpiringClient.admin_url = org.info["admin_url"]
    _ExpiringClient.ca_bundle = org.info["ca_bundle"]
    seed(org, "Lead", {"LastName": "Old", "Company": "C", "Email": "e0@example.com"})
    (tmp_path / "events.jsonl").write_text(
        jsonl(
            [identify(f"e{i}", email=f"e{i}@example.com", title="T") for i in range(3)]
            + [group("eg", "E-1", name="E")]
        )
    )
    dead = tmp_path / "dead"
    options = PipelineOptions(
        [
            "--input",
            str(tmp_path / "events.jsonl"),
            "--dead_letter_output",
            str(dead),
            "--runner",
            "FnApiRunner",
            # One batch at a time: two writer threads could share one renewal, and the count below
            # would depend on timing.
            "--writer_threads",
            "1",
            *connection_flags(org),
        ]
    )
    credentials, settings = validate(options, environ(org))
    with beam.Pipeline(options=options) as p:
        build(p, options.view_as(BeamforceOptions), credentials, settings, client_factory=_ExpiringClient)
    dead_files = glob.glob(f"{dead}-*.jsonl")
    assert dead_files and all(Path(f).read_text() == "" for f in dead_files)
    assert sorted((r["Email"], r["Title"]) for r in records(org, "Lead")) == [
        ("e0@example.com", "T"),
        ("e1@example.com", "T"),
        ("e2@example.com", "T"),
    ]
    assert records(org, "Account") == [{"Name": "E", "AccountNumber": "E-1"}]
    # One login per writer, one renewal after each expiry (each object's lookup expires the session).
    assert calls(org)["login"] == 3


def test_a_run_with_nothing_to_write_spends_no_api_calls_beyond_logging_in(org, tmp_path):
    files = {
        "empty.jsonl": "",
        "filtered.jsonl": jsonl([identify("f", integrations=None, email="f@example.com"), "garbage"]),
    }
    result = run_files(org, tmp_path, files)
    assert set(calls(org)) == {"login"}
    assert result.summary["events_read"] == 2
    assert result.summary["filtered"] == {"integration_disabled": 1}
    assert result.summary["dead_lettered"] == {"invalid_json": 1}


def test_long_keys_split_the_lookup_and_a_rerun_finds_every_record(org, tmp_path):
    # 1,000 emails of 80 characters do not fit in one query's URL: the lookup is split, and every
    # record must still be found on the second run (updated, not created twice).
    emails = [f"{i:04d}." + "x" * 63 + "@example.com" for i in range(1000)]
    assert {len(e) for e in emails} == {80}
    events = [identify(f"k{i}", email=e) for i, e in enumerate(emails)]
    first = run_events(org, tmp_path, events, name="first")
    second = run_events(org, tmp_path, events, name="second")
    assert first.summary["records_written"] == {"Lead": {"create": 1000}}
    assert second.summary["records_written"] == {"Lead": {"update": 1000}}
    assert sorted(r["Email"] for r in raw_records(org, "Lead")) == emails
    assert calls(org)["query"] > 2  # split: more than one lookup per run
