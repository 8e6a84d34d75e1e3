"""BulkWriter against the local Salesforce: what REST writes, refused and unprocessed rows, API calls."""

from typing import Any

import pytest

from salesforce.bulk import BulkClient
from salesforce.client import SalesforceClient
from salesforce.upsert import UpsertItem, UpsertOutcome
from schemas.records import MergedOp
from tests.bulk.conftest import (
    KEY,
    TIMES,
    WaitForJobs,
    backfill,
    calls,
    lead,
    org_state,
    reset,
    seed,
)
from transforms.batch_writer import BatchReport, BatchWriter, Failure, WrittenRecord
from transforms.bulk_writer import BulkWriter, bulk_upsert_by_key

PEOPLE = 300


def outcomes(reports: list[BatchReport]) -> list[tuple]:
    """Every record's result, without record ids (two runs create different ones)."""
    out = []
    for report in reports:
        for op, result in report.results:
            if isinstance(result, WrittenRecord):
                out.append((op.sobject, op.match_value, result.action, result.events, result.ambiguous))
            else:
                # The converted Lead's message names its id.
                message = (
                    result.message.split(" matching ")[1]
                    if result.reason == "lead_converted"
                    else result.message
                )
                out.append((op.sobject, op.match_value, result.reason, message, result.retryable))
    return sorted(out)


def batches_of(ops: list[MergedOp], size: int) -> list[list[MergedOp]]:
    """Batches of one sObject each, as CutIntoBatches gives them."""
    out = []
    for sobject in ("Lead", "Account"):
        mine = [op for op in ops if op.sobject == sobject]
        out.extend(mine[i : i + size] for i in range(0, len(mine), size))
    return out


class AbortingBulkClient(BulkClient):
    """Aborts its first `times` ingest jobs through the real API just before closing them, as an
    administrator (or a failing Salesforce) would: their rows come back as unprocessedrecords."""

    def __init__(self, *args: Any, times: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times = times

    def close(self, job_id: str):
        if self.times > 0:
            self.times -= 1
            self.abort(job_id)
        return super().close(job_id)


class ForgettingBulkClient(BulkClient):
    """Deletes the first ingest job of each (object, operation) in `forget` through the real API once it
    has run, before its results are read, as an administrator cleaning up jobs would: the records were
    written, but the results are gone (404 NOT_FOUND)."""

    def __init__(self, *args: Any, forget: set[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.forget = set(forget)
        self.forgotten: list[tuple[str, str]] = []

    def wait(self, job_id: str, kind: str = "ingest", rows: int = 0):
        info = super().wait(job_id, kind, rows)
        if (info.object, info.operation) in self.forget:
            self.forget.discard((info.object, info.operation))
            self.forgotten.append((info.object, info.operation))
            self._request("DELETE", f"{kind}/{job_id}")
        return info


@pytest.fixture(scope="module")
def rest_run(emulator: Any, credentials, settings) -> tuple[list, tuple, dict]:
    """The backfill written through REST (BatchWriter, batches of 100): outcomes, records, calls."""
    ops, leads, accounts = backfill(PEOPLE)
    reset(emulator)
    seed(emulator, leads, accounts)
    emulator.admin("POST", "/_emulator/calls/reset")
    writer = BatchWriter(SalesforceClient(credentials, settings))
    reports = [writer.write(batch) for batch in batches_of(ops, 100)]
    return outcomes(reports), org_state(emulator), calls(emulator)


def test_a_bulk_backfill_writes_exactly_what_rest_writes(
    org: Any, credentials, settings, rest_run: tuple[list, tuple, dict]
) -> None:
    ops, leads, accounts = backfill(PEOPLE)
    seed(org, leads, accounts)
    org.admin("POST", "/_emulator/calls/reset")
    client = SalesforceClient(credentials, settings)
    writer = BulkWriter(client, BulkClient(client, sleep=WaitForJobs(org.info)), min_job_records=1)

    reports = list(writer.write_all(batches_of(ops, 100)))

    rest_outcomes, rest_state, rest_calls = rest_run
    assert outcomes(reports) == rest_outcomes
    assert org_state(org) == rest_state
    # What that is, spelled out for a few records.
    by_key = {(o[0], o[1]): o[2:] for o in rest_outcomes}
    assert by_key[("Lead", "Person0@Example.com")] == ("updated", 2, False)
    assert by_key[("Lead", "person1@example.com")] == ("created", 2, False)
    assert by_key[("Lead", "Person35@Example.com")] == ("updated", 2, True)  # two Leads hold the email
    # The converted Lead's update went to its Contact (--converted_leads contact, the default).
    assert by_key[("Lead", "person25@example.com")] == ("updated_converted", 2, False)
    assert by_key[("Lead", "not an email 12")] == (
        "INVALID_EMAIL_ADDRESS",
        "Email: invalid email address: not an email 12",
        False,
    )
    assert len(rest_outcomes) == PEOPLE + 20
    lead_records, _, contacts = org_state(org)
    [converted] = lead_records["person25@example.com"]
    assert converted["ConvertedContactId"] == "person25@example.com"
    assert list(contacts) == ["person25@example.com"]
    [created] = lead_records["person1@example.com"]
    assert created == {
        "Email": "person1@example.com",
        "FirstName": "First1",
        "LastName": "n/a",
        "Name": "First1 n/a",
        "Company": "n/a",
        "Title": "Title 1",
        "note__c": "a, comma",
        "score__c": 0.0001,
        "seen__c": "2024-01-02T12:34:56.000+0000",
        "vip__c": False,
        "NumberOfEmployees": 11,
        "Status": "Open - Not Contacted",
        "IsConverted": False,
        "IsDeleted": False,
        "IsUnreadByOwner": False,
        "HasOptedOutOfEmail": False,
        KEY: "person1@example.com",
        TIMES: created[TIMES],
    }
    # Set by a newer event than the backfill's, the Title stays; the create defaults never reach an update.
    [stale] = lead_records["person5@example.com"]
    assert (stale["Title"], stale["LastName"], stale["Company"]) == (
        "Old title 5",
        "Existing5",
        "Existing Co 5",
    )
    [cleared] = lead_records["person45@example.com"]
    assert "Title" not in cleared  # "" cleared it, as it does over REST

    # REST: per batch of 100 (three of Leads, one of Accounts) a lookup, an update and a create call;
    # the converted Lead's Contact: a describe and an update.
    assert rest_calls == {"login": 1, "describe": 3, "query": 4, "collections": 9, "total": 17}
    # Per object: describe, one IN-list query, an update job and a create job of five calls each
    # (create, upload, close, one poll, successfulResults) and failedResults for the refused emails;
    # the converted Lead's Contact: a describe and an update through Collections.
    assert calls(org) == {"login": 1, "describe": 3, "query": 2, "bulk": 21, "collections": 1, "total": 28}
    assert client.api_calls == 28


def test_chunks_written_at_once_write_exactly_what_rest_writes(
    org: Any, credentials, settings, rest_run: tuple[list, tuple, dict]
) -> None:
    ops, leads, accounts = backfill(PEOPLE)
    seed(org, leads, accounts)
    org.admin("POST", "/_emulator/calls/reset")
    client = SalesforceClient(credentials, settings)
    bulk = BulkClient(client, sleep=WaitForJobs(org.info))
    writer = BulkWriter(client, bulk, min_job_records=1, records_per_job=100, jobs_at_once=2)

    reports = list(writer.write_all(batches_of(ops, 100)))

    rest_outcomes, rest_state, _ = rest_run
    assert [len(r.results) for r in reports] == [100, 100, 100, 20]  # in the order the chunks were cut
    assert outcomes(reports) == rest_outcomes
    assert org_state(org) == rest_state
    # Per chunk: an IN-list query, an update job and a create job (five calls each), and failedResults
    # in the two chunks that hold a refused email.
    # The converted Lead's Contact: a describe and an update through Collections.
    assert calls(org) == {
        "login": 1,
        "describe": 3,
        "query": 4,
        "bulk": 4 * 10 + 2,
        "collections": 1,
        "total": 51,
    }


def test_rows_a_failed_job_left_unprocessed_are_sent_again(org: Any, credentials, settings, rest_run) -> None:
    ops, leads, accounts = backfill(PEOPLE)
    seed(org, leads, accounts)
    org.admin("POST", "/_emulator/calls/reset")
    client = SalesforceClient(credentials, settings)
    bulk = AbortingBulkClient(client, sleep=WaitForJobs(org.info), times=1)  # the Leads' update job
    writer = BulkWriter(client, bulk, min_job_records=1)

    reports = list(writer.write_all(batches_of(ops, 100)))

    rest_outcomes, rest_state, _ = rest_run
    assert outcomes(reports) == rest_outcomes
    assert org_state(org) == rest_state
    # The aborted job: create, upload, abort, close (refused), its state, one poll, unprocessedrecords;
    # then the rows again in a job of five calls.
    # The converted Lead's Contact: a describe and an update through Collections.
    expected = {"login": 1, "describe": 3, "query": 2, "bulk": 21 + 7, "collections": 1, "total": 35}
    assert calls(org) == expected
    assert client.retries == 1


def test_jobs_whose_results_are_gone_are_written_once_and_reported_as_written(
    org: Any, credentials, settings, rest_run
) -> None:
    """The update job's rows are sent again (updates by Id are idempotent); the create job's keys are
    looked up before anything is sent again, so nothing is created twice."""
    ops, leads, accounts = backfill(PEOPLE)
    seed(org, leads, accounts)
    client = SalesforceClient(credentials, settings)
    everything = {(sobject, op) for sobject in ("Lead", "Account") for op in ("insert", "update")}
    bulk = ForgettingBulkClient(client, sleep=WaitForJobs(org.info), forget=everything)
    writer = BulkWriter(client, bulk, min_job_records=1)

    reports = list(writer.write_all(batches_of(ops, 100)))

    rest_outcomes, rest_state, _ = rest_run
    assert outcomes(reports) == rest_outcomes
    assert org_state(org) == rest_state
    assert sorted(bulk.forgotten) == sorted(everything)


def test_rows_left_unprocessed_every_time_are_retryable_failures(org: Any, credentials, settings) -> None:
    ops = [lead(f"p{i}@example.com", {"Title": f"T{i}"}, None, f"m{i}") for i in range(5)]
    client = SalesforceClient(credentials, settings)
    bulk = AbortingBulkClient(client, sleep=WaitForJobs(org.info), times=99)
    writer = BulkWriter(client, bulk, min_job_records=1)

    [report] = list(writer.write_all([ops]))

    reasons = {(op.match_value, r.reason, r.retryable) for op, r in report.results if isinstance(r, Failure)}
    assert reasons == {(f"p{i}@example.com", "BULK_JOB_ABORTED", True) for i in range(5)}
    assert {r.message.split(" was ")[1] for _, r in report.results} == {
        "aborted before it processed the record"
    }
    assert org.admin("GET", "/_emulator/records/Lead")["records"] == []
    # Four jobs (the first and three retries), seven calls each, after login, describe and one query.
    assert calls(org) == {"login": 1, "describe": 1, "query": 1, "bulk": 28, "total": 31}


def test_a_key_another_writer_created_since_the_lookup_is_updated(org: Any, credentials, settings) -> None:
    """A create refused with DUPLICATE_VALUE (the key field) is looked up again and updated, as over REST."""
    other = org.admin(
        "POST",
        "/_emulator/records/Lead",
        json={"Email": "Ada@Example.com", "LastName": "Lovelace", KEY: "ada@example.com"},
    )
    client = SalesforceClient(credentials, settings)
    bulk = BulkClient(client, sleep=WaitForJobs(org.info))
    items = [
        UpsertItem("ada@example.com", {"Title": "Countess"}, {"LastName": "n/a", "Company": "n/a"}),
        UpsertItem("bob@example.com", {"Title": "Builder"}, {"LastName": "n/a", "Company": "n/a"}),
    ]

    # The index says neither exists (looked up before the other writer created Ada).
    result = bulk_upsert_by_key(
        client,
        bulk,
        "Lead",
        "Email",
        items,
        "IsConverted",
        KEY,
        TIMES,
        client.describe("Lead"),
        index={},
        min_job_records=2,
    )

    assert result[0] == UpsertOutcome("ada@example.com", "updated", other["id"])
    assert result[1].action == "created"
    [ada] = [
        r for r in org.admin("GET", "/_emulator/records/Lead")["records"] if r["Email"] == "Ada@Example.com"
    ]
    assert (ada["Title"], ada["LastName"], ada.get("Company")) == ("Countess", "Lovelace", None)
    # The create job (one row refused: failedResults), the key's lookup, the update through Collections.
    assert calls(org) == {"login": 1, "describe": 1, "bulk": 6, "query": 2, "collections": 1, "total": 11}


def test_bulk_spends_far_fewer_calls_than_rest(org: Any, credentials, settings) -> None:
    """6,000 people with the default settings: the lookup is one query job, the creates one job."""
    ops, leads, accounts = backfill(6000)
    seed(org, leads, accounts)
    org.admin("POST", "/_emulator/calls/reset")
    rest_writer = BatchWriter(SalesforceClient(credentials, settings))
    rest_reports = [rest_writer.write(batch) for batch in batches_of(ops, 1000)]
    rest_calls = calls(org)
    rest_state = org_state(org)

    reset(org)
    seed(org, leads, accounts)
    org.admin("POST", "/_emulator/calls/reset")
    client = SalesforceClient(credentials, settings)
    bulk_reports = list(
        BulkWriter(client, BulkClient(client, sleep=WaitForJobs(org.info))).write_all(batches_of(ops, 1000))
    )

    assert outcomes(bulk_reports) == outcomes(rest_reports)
    assert org_state(org) == rest_state
    # REST: per Lead batch of 1,000 about three IN-list queries, an update and five create calls.
    # The converted Lead's Contact: a describe and an update.
    assert rest_calls == {"login": 1, "describe": 3, "query": 19, "collections": 39, "total": 62}
    # Bulk, Leads: a COUNT() and one query job (create, poll, one page) instead of 18 IN-list queries;
    # 4,800 creates in one job (six calls: 3 refused emails, so failedResults too); the 1,200 updates
    # through Collections (six calls: fewer than min_job_records). Accounts: all through REST.
    # The converted Lead's Contact: a describe and an update.
    assert calls(org) == {"login": 1, "describe": 3, "query": 2, "bulk": 9, "collections": 9, "total": 24}


class RecordingBulkClient(BulkClient):
    """Notes, in order, each ingest job it creates and closes (and the rows it uploads)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps: list[tuple[str, str]] = []

    def create_ingest_job(self, sobject: str, operation: str):
        job = super().create_ingest_job(sobject, operation)
        self.steps.append(("create", job.id))
        return job

    def close(self, job_id: str):
        info = super().close(job_id)
        self.steps.append(("close", job_id))
        return info


class RecordingBulkWriter(BulkWriter):
    """Notes, in its Bulk client's list, when each chunk starts (on its thread)."""

    def _write_chunk(self, chunk: int, *args: Any) -> BatchReport:
        self.bulk.steps.append(("start", str(chunk)))
        return super()._write_chunk(chunk, *args)


def test_a_first_backfill_looks_nothing_up_and_staggers_growing_chunks(
    org: Any, credentials, settings
) -> None:
    """An org without Leads: a COUNT() says so, and no query job is spent. The chunks grow (1,000, then
    twice as many each time, up to records_per_job, the last two sharing what is left) and each starts
    once the one before has closed its job, so that Salesforce runs one job while the next is made ready."""
    ops, _, _ = backfill(6000)
    leads = [op for op in ops if op.sobject == "Lead"]
    reset(org)
    org.admin("POST", "/_emulator/calls/reset")
    client = SalesforceClient(credentials, settings)
    bulk = RecordingBulkClient(client, sleep=WaitForJobs(org.info))
    writer = RecordingBulkWriter(
        client, bulk, min_job_records=1, first_job_records=1000, records_per_job=2500
    )

    reports = list(writer.write_all(batches_of(leads, 1000)))

    assert [len(r.results) for r in reports] == [1000, 2000, 1500, 1500]
    written = [result for r in reports for _, result in r.results if isinstance(result, WrittenRecord)]
    refused = [
        [(op.match_value, result.reason) for op, result in r.results if isinstance(result, Failure)]
        for r in reports
    ]
    assert refused == [
        [("not an email 13", "INVALID_EMAIL_ADDRESS")],  # the 908th Lead
        [("not an email 12", "INVALID_EMAIL_ADDRESS")],  # the 1,848th
        [],
        [("not an email 11", "INVALID_EMAIL_ADDRESS")],  # the 5,088th
    ]
    assert len(written) == len(leads) - 3
    assert {w.action for w in written} == {"created"}
    assert len(org_state(org)[0]) == len(leads) - 3
    # Staggered: a chunk starts only once the one before has closed its job.
    assert [step for step, _ in bulk.steps] == ["start", "create", "close"] * 4
    # A COUNT() and no query job; per chunk a create job of five calls (create, upload, close, a poll,
    # successfulResults) and failedResults in the three that hold a refused email.
    assert calls(org) == {"login": 1, "describe": 1, "query": 1, "bulk": 4 * 5 + 3, "total": 26}
