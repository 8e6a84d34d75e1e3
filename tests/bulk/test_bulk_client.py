"""BulkClient against the local Salesforce: ingest results matched to rows, job splitting, query paging."""

from typing import Any

import pytest

from salesforce.bulk import FAILED_ROW, OK, BulkClient, RowResult
from salesforce.client import SalesforceClient
from salesforce.errors import SalesforceApiError
from tests.bulk.conftest import NOTES, WaitForJobs, calls


@pytest.fixture
def bulk(org: Any, credentials, settings) -> BulkClient:
    return BulkClient(SalesforceClient(credentials, settings), sleep=WaitForJobs(org.info))


def test_an_insert_gives_one_result_per_row_in_row_order(org: Any, bulk: BulkClient) -> None:
    header = ["Email", "LastName", "Company", "note__c"]
    rows = [[f"p{i}@example.com", f"L{i}", "Acme", note] for i, note in enumerate(NOTES)]
    rows[2][0] = "not an email"
    bulk.max_job_records = 4  # three jobs of 4, 4 and 1 rows

    results = bulk.ingest("Lead", "insert", header, rows, key_column=0)

    assert [r.state for r in results] == [OK, OK, FAILED_ROW] + [OK] * (len(rows) - 3)
    assert results[2] == RowResult(
        FAILED_ROW,
        error_code="INVALID_EMAIL_ADDRESS",
        message="Email: invalid email address: not an email",
    )
    stored = {r["Id"]: r for r in org.admin("GET", "/_emulator/records/Lead")["records"]}
    assert [stored[r.record_id]["Email"] for r in results if r.state == OK] == [
        row[0] for row in rows if row[0] != "not an email"
    ]
    # Every hard value arrives as it was sent ("" leaves the field empty).
    assert [stored[r.record_id].get("note__c") for r in results if r.state == OK] == [
        note or None for n, note in enumerate(NOTES) if n != 2
    ]
    assert all(r.created for r in results if r.state == OK)
    # Per job: create, upload, close, one poll, successfulResults; failedResults only for the first.
    assert calls(org) == {"login": 1, "bulk": 16, "total": 17}
    assert bulk.jobs == 3


def test_an_update_reports_updated_rows_by_id(org: Any, bulk: BulkClient) -> None:
    ids = org.admin(
        "POST", "/_emulator/records/Lead", json=[{"LastName": f"L{i}", "Company": "C"} for i in range(3)]
    )["ids"]
    rows = [[ids[2], "Third"], [ids[0], "#N/A"], [ids[1], ""]]

    results = bulk.ingest("Lead", "update", ["Id", "Title"], rows, key_column=0)

    assert results == [RowResult(OK, ids[2]), RowResult(OK, ids[0]), RowResult(OK, ids[1])]


def test_query_pages_follow_the_locator(org: Any, bulk: BulkClient) -> None:
    org.admin(
        "POST",
        "/_emulator/records/Lead",
        json=[
            {"LastName": f"L{i}", "Company": "C", "Email": f"p{i}@example.com", "note__c": NOTES[i]}
            for i in range(5)
        ],
    )
    bulk.query_page_records = 2

    pages = list(bulk.query("SELECT Email, note__c, IsConverted FROM Lead ORDER BY Email"))

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [row for page in pages for row in page] == [
        {"Email": f"p{i}@example.com", "note__c": NOTES[i], "IsConverted": "false"} for i in range(5)
    ]
    # Create, one poll, three pages.
    assert calls(org) == {"login": 1, "bulk": 5, "total": 6}


def test_a_query_salesforce_refuses_raises_its_error(org: Any, bulk: BulkClient) -> None:
    with pytest.raises(SalesforceApiError) as caught:
        list(bulk.query("SELECT Nope__c FROM Lead"))
    assert caught.value.error_code == "INVALID_FIELD"
