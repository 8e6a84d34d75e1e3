"""Backfills through Bulk API 2.0, end to end: the pipeline's command into the local Salesforce.

One org of its own (a required custom field on Account, so that Salesforce refuses some rows), and few
runs, shared: a Bulk backfill and its rerun, the same events through REST, and one run whose first
Lead insert job is aborted before Salesforce processes it.
"""

import glob
import json
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.graph import build
from pipeline.options import BeamforceOptions, validate
from salesforce.bulk import BulkClient, JobInfo
from tests.e2e.conftest import (
    SYSTEM_FIELDS,
    connection_flags,
    emulator_with,
    environ,
    run_pipeline,
    write_lines,
)
from transforms.coders import handles_given

pytestmark = pytest.mark.e2e

ORG_CONFIG = """\
custom_fields:
  Lead:
    - {name: plan__c, type: string, length: 40}
  Account:
    - {name: region__c, type: string, length: 40, required: true}
"""
DEFAULT_STATUS = "Open - Not Contacted"
WORKING = "Working - Contacted"
PLANS = ("free", "team", "business")
PEOPLE, EXISTING_PEOPLE = 30, 8
BAD_EMAILS = [f"bad email {k}@example.com" for k in range(3)]
COMPANIES, EXISTING_COMPANIES = 10, 4
WITH_REGION = range(4, 7)  # new companies with a region; 7, 8 and 9 have none: Salesforce refuses them
# What the org fills itself, but Status: a run must never write it.
ORG_FIELDS = SYSTEM_FIELDS - {"Status"}


def event(kind: str, message_id: str, when: str, **body: Any) -> dict:
    return {
        "type": kind,
        "messageId": message_id,
        "userId": f"user-{message_id}",
        "timestamp": f"2026-03-{when}T12:00:00.000Z",
        "integrations": {"Salesforce": True},
        **body,
    }


def backfill_events() -> tuple[list[dict], list[dict], list[dict]]:
    """(every event, the identifies Salesforce refuses, the groups Salesforce refuses)."""
    events, bad_leads, bad_accounts = [], [], []
    for p in range(PEOPLE):
        traits: dict[str, Any] = {
            "email": f"person{p}@example.com",
            "firstName": f"First{p}",
            "title": "Engineer",
            "plan": PLANS[p % 3],
        }
        if p % 5 == 1:
            traits["lastName"] = f"Last{p}"
        if p % 5 == 2:
            traits["company"] = 'Initech, "the" Inc.'
        if p == 3:
            traits["status"] = "Closed - Converted"  # no such field: never the Lead's Status
        if p == 4:
            traits["description"] = "said hi,\nthen left"
        events.append(event("identify", f"p{p}", "01", traits=traits))
        if p % 3 == 0:
            later = {"email": f"person{p}@example.com", "title": "CTO"}
            events.append(event("identify", f"p{p}-later", "02", traits=later))
    for k, email in enumerate(BAD_EMAILS):
        bad_leads.append(event("identify", f"bad{k}", "01", traits={"email": email, "firstName": "Bad"}))
    bad_leads.append(event("identify", "bad0-later", "02", traits={"email": BAD_EMAILS[0], "title": "X"}))
    for c in range(COMPANIES):
        traits = {"name": f"Company {c}", "employees": 10 + c}
        if c in WITH_REGION:
            traits["region"] = f"Region {c}"
        group = event("group", f"c{c}", "01", groupId=f"acct-{c}", traits=traits)
        (bad_accounts if c >= WITH_REGION.stop else events).append(group)
    events.append(event("group", "c0-later", "03", groupId="acct-0", traits={"name": "Company 0 renamed"}))
    return events + bad_leads + bad_accounts, bad_leads, bad_accounts


def seed(emu: Any) -> None:
    """Leads and Accounts someone else created before the backfill."""
    emu.admin("POST", "/_emulator/reset")
    leads = [
        {
            "Email": f"person{p}@example.com",
            "LastName": f"Existing{p}",
            "Company": "Existing Co",
            "Title": "Old title",
            "Status": WORKING,
        }
        for p in range(EXISTING_PEOPLE)
    ]
    emu.admin("POST", "/_emulator/records/Lead", json=leads)
    accounts = [
        {"AccountNumber": f"acct-{c}", "Name": f"Old {c}", "region__c": "North"}
        for c in range(EXISTING_COMPANIES)
    ]
    emu.admin("POST", "/_emulator/records/Account", json=accounts)
    emu.admin("POST", "/_emulator/calls/reset")


def expected_leads() -> list[dict]:
    """Fields events set on create and update; LastName and Company "n/a" only on create; Status never."""
    leads = []
    for p in range(PEOPLE):
        existing = p < EXISTING_PEOPLE
        lead = {
            "Email": f"person{p}@example.com",
            "FirstName": f"First{p}",
            "LastName": f"Last{p}" if p % 5 == 1 else f"Existing{p}" if existing else "n/a",
            "Company": 'Initech, "the" Inc.' if p % 5 == 2 else "Existing Co" if existing else "n/a",
            "Title": "CTO" if p % 3 == 0 else "Engineer",
            "plan__c": PLANS[p % 3],
            "Status": WORKING if existing else DEFAULT_STATUS,
        }
        if p == 4:
            lead["Description"] = "said hi,\nthen left"
        leads.append(lead)
    return sorted(leads, key=lambda r: r["Email"])


def expected_accounts() -> list[dict]:
    accounts = []
    for c in range(WITH_REGION.stop):
        account = {"AccountNumber": f"acct-{c}", "Name": f"Company {c}", "NumberOfEmployees": 10 + c}
        account["region__c"] = f"Region {c}" if c in WITH_REGION else "North"
        accounts.append(account)
    accounts[0]["Name"] = "Company 0 renamed"
    return sorted(accounts, key=lambda r: r["AccountNumber"])


def org_records(emu: Any, sobject: str, key: str) -> list[dict]:
    """The org's records of `sobject` with what runs write (and Status), sorted by `key`."""
    rows = emu.admin("GET", f"/_emulator/records/{sobject}")["records"]
    skip = ORG_FIELDS | ({"Name"} if sobject == "Lead" else set())  # a Lead's Name is derived
    kept = [
        {k: v for k, v in r.items() if k not in skip and v is not None and not isinstance(v, dict)}
        for r in rows
    ]
    return sorted(kept, key=lambda r: r[key])


def org_state(emu: Any) -> tuple[list[dict], list[dict]]:
    return org_records(emu, "Lead", "Email"), org_records(emu, "Account", "AccountNumber")


def ingest_jobs(emu: Any) -> dict[str, tuple]:
    """Every ingest job of the org by id: (object, operation, state, rows processed, rows failed).

    Read through the Bulk API itself (these calls are made after a run's calls were counted)."""
    sf = emu.salesforce()
    try:
        listed = sf.session.get(sf.bulk2_url + "ingest", headers=sf.headers, timeout=30).json()["records"]
        jobs = {}
        for job in listed:
            answer = sf.session.get(f"{sf.bulk2_url}ingest/{job['id']}", headers=sf.headers, timeout=30)
            info = JobInfo.from_json(answer.json())
            jobs[info.id] = (
                info.object,
                info.operation,
                info.state,
                info.records_processed,
                info.records_failed,
            )
        return jobs
    finally:
        sf.session.close()


def comparable(dead_letters: list[dict]) -> list[dict]:
    """Dead letters without the time they were made, in a stable order."""
    out = [{k: v for k, v in d.items() if k != "time"} for d in dead_letters]
    return sorted(out, key=lambda d: json.dumps(d, sort_keys=True))


def expected_dead_letters(source: str) -> list[dict]:
    _, bad_leads, bad_accounts = backfill_events()
    letters = [
        {
            "stage": "write",
            "reason": "INVALID_EMAIL_ADDRESS",
            "message": f"Email: invalid email address: {e['traits']['email']}",
            "retryable": False,
            "event": e,
            "source": source,
        }
        for e in bad_leads
    ]
    letters += [
        {
            "stage": "write",
            "reason": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [region__c]",
            "retryable": False,
            "event": e,
            "source": source,
        }
        for e in bad_accounts
    ]
    return comparable(letters)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory):
    with emulator_with(tmp_path_factory, "bulk-e2e", ORG_CONFIG) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def bulk_runs(emu: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The backfill through Bulk into the seeded org, then the same run again."""
    events, _, _ = backfill_events()
    seed(emu)
    runs: dict[str, Any] = {}
    jobs_before: dict[str, tuple] = {}
    for name in ("first", "rerun"):
        tmp = tmp_path_factory.mktemp(f"bulk-{name}")
        given = handles_given()
        summary, dead = run_pipeline(emu, tmp, events, "--write_method", "bulk", name="events")
        # The shards' merges and the pieces of each object crossed the shuffles by reference.
        assert handles_given() - given >= 2
        calls = emu.admin("GET", "/_emulator/calls")
        jobs = ingest_jobs(emu)
        runs[name] = {
            "summary": summary,
            "dead": dead,
            "source": str(tmp / "events.jsonl"),
            "calls": calls,
            "jobs": sorted(job for job_id, job in jobs.items() if job_id not in jobs_before),
            "state": org_state(emu),
        }
        jobs_before = jobs
        emu.admin("POST", "/_emulator/calls/reset")
    return runs


@pytest.fixture(scope="module")
def rest_run(emu: Any, bulk_runs: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same events into the same seeded org through REST (after the Bulk runs: it resets the org)."""
    events, _, _ = backfill_events()
    seed(emu)
    tmp = tmp_path_factory.mktemp("rest")
    summary, dead = run_pipeline(emu, tmp, events, "--write_method", "rest", name="events")
    return {"summary": summary, "dead": dead, "source": str(tmp / "events.jsonl"), "state": org_state(emu)}


def test_a_bulk_backfill_writes_every_record_exactly(bulk_runs: dict) -> None:
    first = bulk_runs["first"]
    assert first["state"] == (expected_leads(), expected_accounts())
    summary = first["summary"]
    assert summary.written == {
        "Lead": {"create": 29, "update": 11},
        "Account": {"create": 3, "update": 5},
    }
    assert summary.records_written == {
        "Lead": {"create": 22, "update": 8},
        "Account": {"create": 3, "update": 4},
    }
    assert (summary.events_read, summary.events_filtered, summary.balanced) == (55, 0, True)
    # The status trait names a field the org lacks: dropped and named, never written as Status.
    assert summary.missing_fields == ["Lead.status__c"]


def test_rows_salesforce_refuses_are_exactly_the_dead_letters(bulk_runs: dict) -> None:
    first = bulk_runs["first"]
    assert comparable(first["dead"]) == expected_dead_letters(first["source"])
    assert first["summary"].dead_lettered == {"INVALID_EMAIL_ADDRESS": 4, "REQUIRED_FIELD_MISSING": 3}
    assert first["summary"].retryable_dead_letters == 0


def test_every_write_went_as_a_bulk_job_and_every_call_is_counted(bulk_runs: dict) -> None:
    first = bulk_runs["first"]
    # One update job and one insert job per object, each run to completion; failed rows as Salesforce
    # counts them.
    assert first["jobs"] == [
        ("Account", "insert", "JobComplete", 6, 3),
        ("Account", "update", "JobComplete", 4, 0),
        ("Lead", "insert", "JobComplete", 25, 3),
        ("Lead", "update", "JobComplete", 8, 0),
    ]
    by_kind = dict(first["calls"]["by_kind"])
    bulk = by_kind.pop("bulk")
    # Logins: the run's check and the writer's; the lookups are IN-list queries (cheaper here than a
    # query job); no sObject Collections call. Per job: create, upload, close, polls, results.
    assert by_kind == {"login": 2, "describe": 2, "query": 2}
    assert bulk >= 4 * 4 + 4 + 2  # four jobs: 4 calls and a poll each, successfulResults, 2 failedResults
    assert first["summary"].api_calls == first["calls"]["total"]


def test_a_rerun_creates_nothing_twice(bulk_runs: dict) -> None:
    first, rerun = bulk_runs["first"], bulk_runs["rerun"]
    assert rerun["state"] == first["state"]
    assert rerun["summary"].records_written == {"Lead": {"update": 30}, "Account": {"update": 7}}
    assert rerun["summary"].written == {"Lead": {"update": 40}, "Account": {"update": 8}}
    assert comparable(rerun["dead"]) == expected_dead_letters(rerun["source"])
    # The refused rows are tried again as creates, and refused again.
    assert rerun["jobs"] == [
        ("Account", "insert", "JobComplete", 3, 3),
        ("Account", "update", "JobComplete", 7, 0),
        ("Lead", "insert", "JobComplete", 3, 3),
        ("Lead", "update", "JobComplete", 30, 0),
    ]


def test_rest_and_bulk_give_the_same_records_and_dead_letters(bulk_runs: dict, rest_run: dict) -> None:
    first = bulk_runs["first"]
    assert rest_run["state"] == first["state"]
    assert comparable(rest_run["dead"]) == expected_dead_letters(rest_run["source"])
    for name in ("written", "records_written", "dead_lettered", "events_read", "missing_fields"):
        assert getattr(rest_run["summary"], name) == getattr(first["summary"], name), name


class AbortFirstLeadInsert(BulkClient):
    """Aborts the first Lead insert job through the Bulk API just before closing it, as an administrator
    (or a Salesforce that gave up on it) would: none of its rows is processed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._to_abort: str | None = None
        self._aborted = False

    def create_ingest_job(self, sobject: str, operation: str) -> JobInfo:
        job = super().create_ingest_job(sobject, operation)
        if (sobject, operation) == ("Lead", "insert") and not self._aborted:
            self._to_abort, self._aborted = job.id, True
        return job

    def close(self, job_id: str) -> JobInfo:
        if job_id == self._to_abort:
            self._to_abort = None
            self.abort(job_id)
        return super().close(job_id)


def test_unprocessed_records_are_sent_again(emu: Any, rest_run: dict, tmp_path: Path) -> None:
    # The graph of `python -m pipeline --write_method bulk`, built as pipeline.main.run builds it, with a
    # Bulk client that aborts a job (pipeline.main.run takes no client).
    events, _, _ = backfill_events()
    seed(emu)
    source = write_lines(tmp_path / "events.jsonl", events)
    prefix = str(tmp_path / "dead")
    argv = ["--input", str(source), "--dead_letter_output", prefix, "--write_method", "bulk"]
    options = PipelineOptions([*argv, *connection_flags(emu)])
    options.view_as(StandardOptions).runner = "FnApiRunner"
    credentials, settings = validate(options, environ(emu))
    with beam.Pipeline(options=options) as p:
        build(p, options.view_as(BeamforceOptions), credentials, settings, bulk_factory=AbortFirstLeadInsert)

    assert org_state(emu) == (expected_leads(), expected_accounts())
    dead = [json.loads(line) for f in sorted(glob.glob(prefix + "*.jsonl")) for line in open(f)]
    assert comparable(dead) == expected_dead_letters(str(source))
    # The aborted job processed nothing; its rows (read back from its unprocessedrecords) went again.
    assert sorted(ingest_jobs(emu).values()) == [
        ("Account", "insert", "JobComplete", 6, 3),
        ("Account", "update", "JobComplete", 4, 0),
        ("Lead", "insert", "Aborted", 0, 0),
        ("Lead", "insert", "JobComplete", 25, 3),
        ("Lead", "update", "JobComplete", 8, 0),
    ]


def hostile_leads() -> list[dict]:
    """Values a CSV gets wrong when written naively: a lone CR, and the text of Bulk's null marker."""

    def identify(n: int, **traits: Any) -> dict:
        return event("identify", f"h-{n}", "05", traits={"email": f"h{n}@example.com", **traits})

    return [
        identify(1, lastName="Carriage", company="Acme", title="VP\rSales"),
        identify(2, lastName="Marker", company="#N/A", title="#N/A"),
        identify(3, lastName="Plain", company="Acme", title='CTO, "Ops"\nand more'),
    ]


@pytest.mark.parametrize("method", [("--write_method", "bulk"), ("--bulk_threshold", "0")])
def test_hostile_values_arrive_as_rest_writes_them_and_every_call_is_counted(
    emu: Any, tmp_path: Path, method: tuple[str, str]
) -> None:
    emu.admin("POST", "/_emulator/reset")
    emu.admin("POST", "/_emulator/calls/reset")
    summary, dead = run_pipeline(emu, tmp_path, hostile_leads(), *method, name="hostile")

    assert dead == []
    assert {r["Email"]: (r["Company"], r["Title"]) for r in org_records(emu, "Lead", "Email")} == {
        "h1@example.com": ("Acme", "VP\rSales"),
        "h2@example.com": ("#N/A", "#N/A"),  # text, not Bulk's null
        "h3@example.com": ("Acme", 'CTO, "Ops"\nand more'),
    }
    # With auto, no object reaches the REST writer: it spends no call (it logs in with its first batch).
    assert summary.api_calls == emu.admin("GET", "/_emulator/calls")["total"]
