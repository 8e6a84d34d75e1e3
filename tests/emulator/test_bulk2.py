"""Bulk API 2.0 of the emulator, through simple-salesforce's bulk2 client and raw HTTP for error bodies."""

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation, _Bulk2Client
from simple_salesforce.exceptions import SalesforceOperationError

from emulator import ids
from emulator.bulk2_jobs import (
    IN_PROGRESS,
    INGEST,
    OPEN,
    UPLOAD_COMPLETE,
    JobRunner,
    JobStore,
    RecordResult,
    convert_value,
    decode_locator,
    encode_locator,
    format_error,
)
from emulator.config import OrgConfig
from emulator.errors import ApiError, RecordError
from emulator.org import Org
from emulator.process import EmulatorProcess, start_emulator

# The org (with Lead.Ext__c, an external id), `emu` (reset before each test) and `sf` come from conftest.py.
# simple-salesforce sleeps `wait` before its first poll and between polls; small jobs finish at once.
WAIT = 0.01
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
MISSING_ID = ids.make_id("00Q", 999_999)
FULL_INGEST_KEYS = [
    "id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state", "concurrencyMode",
    "contentType", "apiVersion", "jobType", "lineEnding", "columnDelimiter", "numberRecordsProcessed",
    "numberRecordsFailed", "retries", "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime",
]  # fmt: skip


def leads(emu: EmulatorProcess) -> list[dict[str, Any]]:
    return emu.admin("GET", "records/Lead")["records"]


def rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def header(text: str, delimiter: str = ",") -> list[str]:
    return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def call(sf: Salesforce, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {sf.session_id}", **kwargs.pop("headers", {})}
    return sf.session.request(method, sf.bulk2_url + path, headers=headers, **kwargs)


def client(sf: Salesforce) -> _Bulk2Client:
    return _Bulk2Client("Lead", sf.bulk2_url, sf.bulk2.headers, sf.session)


def open_job(sf: Salesforce, data: str | bytes | None = None, **job: Any) -> str:
    created = call(
        sf, "POST", "ingest", json={"object": "Lead", "operation": "insert", "contentType": "CSV", **job}
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    if data is not None:
        put = call(
            sf, "PUT", f"ingest/{job_id}/batches",
            data=data.encode() if isinstance(data, str) else data, headers={"Content-Type": "text/csv"},
        )  # fmt: skip
        assert (put.status_code, put.content) == (201, b"")
    return job_id


def run_job(sf: Salesforce, data: str | bytes, **job: Any) -> dict[str, Any]:
    """Creates, fills and closes an ingest job, waits with simple-salesforce's poller, returns its info."""
    job_id = open_job(sf, data, **job)
    closed = call(sf, "PATCH", f"ingest/{job_id}", json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    try:
        client(sf).wait_for_job(job_id, False, WAIT)
    except SalesforceOperationError:
        pass  # a Failed job: the caller checks its errorMessage
    return call(sf, "GET", f"ingest/{job_id}").json()


def insert(sf: Salesforce, records: list[dict[str, str]]) -> list[str]:
    [result] = sf.bulk2.Lead.insert(records=records, wait=WAIT)
    assert result["numberRecordsFailed"] == 0
    return [r["sf__Id"] for r in rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))]


# ---------------------------------------------------------------------------------------------- ingest


def test_insert_reports_counts_results_and_stores_valid_records(sf: Salesforce, emu: EmulatorProcess) -> None:
    [result] = sf.bulk2.Lead.insert(
        records=[
            {"LastName": "Ada", "Company": "Acme", "Email": "ada@example.com"},
            {"LastName": "Bob", "Company": "Beta", "Email": ""},
            {"LastName": "Cy", "Email": "cy@example.com"},
        ],
        wait=WAIT,
    )
    job_id = result["job_id"]
    assert (
        result["numberRecordsProcessed"],
        result["numberRecordsFailed"],
        result["numberRecordsTotal"],
    ) == (3, 1, 3)
    assert len(job_id) == 18 and job_id.startswith("750")

    ok = rows(sf.bulk2.Lead.get_successful_records(job_id))
    assert [(r["LastName"], r["Company"], r["Email"], r["sf__Created"]) for r in ok] == [
        ("Ada", "Acme", "ada@example.com", "true"),
        ("Bob", "Beta", "", "true"),
    ]
    stored = {r["Id"]: r for r in leads(emu)}
    assert sorted(stored) == sorted(r["sf__Id"] for r in ok)
    assert sorted((r["LastName"], r["Company"], r.get("Email"), r["Status"]) for r in stored.values()) == [
        ("Ada", "Acme", "ada@example.com", "Open - Not Contacted"),
        ("Bob", "Beta", None, "Open - Not Contacted"),
    ]
    assert rows(sf.bulk2.Lead.get_failed_records(job_id)) == [
        {
            "sf__Id": "",
            "sf__Error": "REQUIRED_FIELD_MISSING:Required fields are missing: [Company]:Company --",
            "Company": "",
            "Email": "cy@example.com",
            "LastName": "Cy",
        }
    ]
    unprocessed = sf.bulk2.Lead.get_unprocessed_records(job_id)
    assert sorted(header(unprocessed)) == ["Company", "Email", "LastName"] and rows(unprocessed) == []


def test_update_na_clears_a_field_and_empty_leaves_it(sf: Salesforce, emu: EmulatorProcess) -> None:
    [lead_id] = insert(sf, [{"LastName": "Ada", "Company": "Acme", "Title": "CEO", "Phone": "555"}])
    [result] = sf.bulk2.Lead.update(
        records=[
            {"Id": lead_id, "Title": "#N/A", "Phone": "", "FirstName": "Ada"},
            {"Id": MISSING_ID, "Title": "x", "Phone": "", "FirstName": ""},
            {"Id": "", "Title": "y", "Phone": "", "FirstName": ""},
        ],
        wait=WAIT,
    )
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (3, 2)
    ok = rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))
    assert [(r["sf__Id"], r["sf__Created"], r["Title"]) for r in ok] == [(lead_id, "false", "#N/A")]
    failed = rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))
    assert [(r["sf__Id"], r["sf__Error"]) for r in failed] == [
        (MISSING_ID, "NOT_FOUND:The requested resource does not exist:--"),
        ("", "MISSING_ARGUMENT:Id not specified in an update call:--"),
    ]
    [lead] = leads(emu)
    assert (lead.get("Title"), lead["Phone"], lead["FirstName"], lead["LastName"]) == (
        None,
        "555",
        "Ada",
        "Ada",
    )


def test_upsert_by_external_id_creates_then_updates(sf: Salesforce, emu: EmulatorProcess) -> None:
    [first] = sf.bulk2.Lead.upsert(
        records=[
            {"Ext__c": "k1", "LastName": "One", "Company": "C"},
            {"Ext__c": "k2", "LastName": "Two", "Company": "C"},
        ],
        external_id_field="Ext__c",
        wait=WAIT,
    )
    assert (first["numberRecordsProcessed"], first["numberRecordsFailed"]) == (2, 0)
    [second] = sf.bulk2.Lead.upsert(
        records=[{"Ext__c": "k1", "Title": "Boss"}, {"Ext__c": "k3", "LastName": "Three", "Company": "C"}],
        external_id_field="Ext__c",
        wait=WAIT,
    )
    ok = rows(sf.bulk2.Lead.get_successful_records(second["job_id"]))
    assert [(r["Ext__c"], r["sf__Created"]) for r in ok] == [("k1", "false"), ("k3", "true")]
    by_key = {r["Ext__c"]: r for r in leads(emu)}
    assert sorted(by_key) == ["k1", "k2", "k3"]
    assert (by_key["k1"]["Id"], by_key["k1"]["LastName"], by_key["k1"]["Title"]) == (
        ok[0]["sf__Id"],
        "One",
        "Boss",
    )
    assert (by_key["k3"]["Id"], by_key["k3"]["LastName"]) == (ok[1]["sf__Id"], "Three")


def test_upsert_matching_several_records_fails_that_record(sf: Salesforce, emu: EmulatorProcess) -> None:
    twins = sorted(insert(sf, [{"LastName": n, "Company": "C", "Ext__c": "dup"} for n in ("A", "B")]))
    [result] = sf.bulk2.Lead.upsert(
        records=[{"Ext__c": "dup", "Title": "x"}, {"Ext__c": "", "Title": "y"}],
        external_id_field="Ext__c",
        wait=WAIT,
    )
    failed = rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))
    assert [r["sf__Error"] for r in failed] == [
        f"DUPLICATE_EXTERNAL_ID:Ext__c: more than one record found for external id field: "
        f"[{twins[0]}, {twins[1]}]:Ext__c --",
        "MISSING_ARGUMENT:Ext__c not specified:--",
    ]
    assert [r.get("Title") for r in leads(emu)] == [None, None]


def test_upsert_by_id_updates_given_ids_and_creates_blank_ones(sf: Salesforce, emu: EmulatorProcess) -> None:
    [lead_id] = insert(sf, [{"LastName": "Ada", "Company": "Acme"}])
    [result] = sf.bulk2.Lead.upsert(
        records=[
            {"Id": lead_id, "LastName": "Ada2", "Company": ""},
            {"Id": "", "LastName": "New", "Company": "C"},
        ],
        external_id_field="Id",
        wait=WAIT,
    )
    ok = rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))
    assert [(r["LastName"], r["sf__Created"]) for r in ok] == [("Ada2", "false"), ("New", "true")]
    assert ok[0]["sf__Id"] == lead_id
    assert sorted((r["LastName"], r["Company"]) for r in leads(emu)) == [("Ada2", "Acme"), ("New", "C")]


@pytest.mark.parametrize("method", ["delete", "hard_delete"])
def test_delete_removes_records_and_reports_bad_ids(
    sf: Salesforce, emu: EmulatorProcess, method: str
) -> None:
    keep, gone = insert(sf, [{"LastName": "Keep", "Company": "C"}, {"LastName": "Gone", "Company": "C"}])
    [result] = getattr(sf.bulk2.Lead, method)(records=[{"Id": gone}], wait=WAIT)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (1, 0)
    assert [
        (r["sf__Id"], r["sf__Created"]) for r in rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))
    ] == [(gone, "false")]
    assert [r["Id"] for r in leads(emu)] == [keep]

    [again] = getattr(sf.bulk2.Lead, method)(records=[{"Id": gone}, {"Id": "nope"}], wait=WAIT)
    assert [
        (r["sf__Id"], r["sf__Error"]) for r in rows(sf.bulk2.Lead.get_failed_records(again["job_id"]))
    ] == [
        (gone, "ENTITY_IS_DELETED:entity is deleted:--"),
        ("nope", "MALFORMED_ID:malformed id nope:--"),
    ]


def test_parallel_jobs_split_by_batch_size(sf: Salesforce, emu: EmulatorProcess) -> None:
    results = sf.bulk2.Lead.insert(
        records=[{"LastName": f"L{i}", "Company": "C"} for i in range(5)],
        batch_size=2,
        concurrency=3,
        wait=WAIT,
    )
    assert sorted(r["numberRecordsProcessed"] for r in results) == [1, 2, 2]
    assert len({r["job_id"] for r in results}) == 3
    assert sorted(r["LastName"] for r in leads(emu)) == ["L0", "L1", "L2", "L3", "L4"]


@pytest.mark.parametrize("delimiter, char", [("TAB", "\t"), ("PIPE", "|"), ("SEMICOLON", ";"), ("CARET", "^"),
                                             ("BACKQUOTE", "`"), ("COMMA", ",")])  # fmt: skip
def test_delimiters_and_crlf(sf: Salesforce, emu: EmulatorProcess, delimiter: str, char: str) -> None:
    tricky = 'a,b\tc|d;e^f`g"h'  # every delimiter and a quote: the CSV must quote it
    [result] = sf.bulk2.Lead.insert(
        records=[{"LastName": tricky, "Company": "C"}],
        column_delimiter=delimiter,
        line_ending="CRLF",
        wait=WAIT,
    )
    assert result["numberRecordsFailed"] == 0
    text = sf.bulk2.Lead.get_successful_records(result["job_id"])
    assert text.count("\r\n") == 2
    [ok] = rows(text, char)
    assert ok["LastName"] == tricky
    assert [(r["Id"], r["LastName"]) for r in leads(emu)] == [(ok["sf__Id"], tricky)]


def test_columns_map_by_name_with_values_converted_by_type(sf: Salesforce, emu: EmulatorProcess) -> None:
    info = run_job(
        sf,
        "lastname,COMPANY,NumberOfEmployees,HasOptedOutOfEmail,AnnualRevenue,Title\n"
        "Ada,Acme,12,1,1.5e3,#N/A\n"
        "Bob,Beta,many,0,,\n" + "Cy,Gamma,1,true,," + "x" * 129 + "\n",
    )
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete",
        3,
        2,
    )
    [lead] = leads(emu)
    assert (lead["LastName"], lead["Company"], lead["NumberOfEmployees"], lead["HasOptedOutOfEmail"]) == (
        "Ada", "Acme", 12, True,
    )  # fmt: skip
    assert (lead["AnnualRevenue"], lead.get("Title")) == (1500.0, None)
    errors = [r["sf__Error"] for r in rows(sf.bulk2.Lead.get_failed_records(info["id"]))]
    assert errors[0] == (
        "INVALID_FIELD:Failed to deserialize field at col 3. Due to, 'many' is not a valid value "
        "for the type xsd:int:NumberOfEmployees --"
    )
    assert errors[1].startswith("STRING_TOO_LONG:") and errors[1].endswith("(max length=128):Title --")


@pytest.mark.parametrize(
    "data, job, message",
    [
        (
            'LastName,Company\n"Ada,Acme\n',
            {},
            "InvalidBatch : Failed to parse CSV on line 2: unexpected end of data",
        ),
        (
            "LastName,Company\nAda\n",
            {},
            "InvalidBatch : Failed to parse CSV: record 2 has 1 columns, the header has 2",
        ),
        ("LastName,Nope__c\nAda,x\n", {}, "InvalidBatch : Field name not found : Nope__c"),
        (
            "LastName,Company\r\nAda,Acme\r\n",
            {},
            "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF",
        ),
        (
            "LastName,Company\nAda,Acme\n",
            {"lineEnding": "CRLF"},
            "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is CRLF",
        ),
        (
            f"Id,LastName\n{MISSING_ID},x\n",
            {"operation": "delete"},
            "InvalidBatch : The 'delete' batch must contain only one column: Id",
        ),
        (
            b"LastName,Company\n\xff,x\n",
            {},
            "InvalidBatch : Failed to parse CSV: the data is not valid UTF-8 "
            "('utf-8' codec can't decode byte 0xff in position 17: invalid start byte)",
        ),
        ("", {}, "InvalidBatch : Failed to parse CSV: no data was uploaded for this job"),
    ],
)
def test_unusable_csv_fails_the_job(
    sf: Salesforce, emu: EmulatorProcess, data: str | bytes, job: dict, message: str
) -> None:
    info = run_job(sf, data, **job)
    assert (info["state"], info["errorMessage"], info["numberRecordsProcessed"]) == ("Failed", message, 0)
    assert leads(emu) == []
    raw = data if isinstance(data, bytes) else data.encode()
    unprocessed = call(sf, "GET", f"ingest/{info['id']}/unprocessedrecords")
    if b"Nope__c" in raw or b"Id,LastName" in raw:
        assert len(rows(unprocessed.text)) == 1  # parsed, refused as a whole, so every record is unprocessed
    else:
        assert unprocessed.content == raw.decode("utf-8", errors="replace").encode()
    assert call(sf, "GET", "ingest").status_code == 200  # and the server keeps serving


def test_job_info_through_the_lifecycle(sf: Salesforce) -> None:
    created = call(sf, "POST", "ingest", json={"object": "lead", "operation": "insert", "lineEnding": "LF"})
    job = created.json()
    assert list(job) == [
        "id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
        "concurrencyMode", "contentType", "apiVersion", "jobType", "contentUrl", "lineEnding",
        "columnDelimiter",
    ]  # fmt: skip
    assert (job["object"], job["state"], job["apiVersion"], job["jobType"], job["columnDelimiter"]) == (
        "Lead", "Open", 59.0, "V2Ingest", "COMMA",
    )  # fmt: skip
    assert job["contentUrl"] == f"services/data/v59.0/jobs/ingest/{job['id']}/batches"
    assert job["createdById"] == "005000000000001AAA"  # the default org's user, who logged in
    opened = call(sf, "GET", f"ingest/{job['id']}").json()
    assert opened["state"] == "Open" and (
        opened["numberRecordsProcessed"],
        opened["numberRecordsFailed"],
    ) == (0, 0)

    call(sf, "PUT", f"ingest/{job['id']}/batches", data=b"LastName,Company\nAda,Acme\n")
    call(sf, "PATCH", f"ingest/{job['id']}", json={"state": "UploadComplete"})
    client(sf).wait_for_job(job["id"], False, WAIT)
    done = call(sf, "GET", f"ingest/{job['id']}").json()
    assert list(done) == FULL_INGEST_KEYS
    assert (done["state"], done["numberRecordsProcessed"], done["numberRecordsFailed"], done["retries"]) == (
        "JobComplete", 1, 0, 0,
    )  # fmt: skip
    assert done["createdDate"] <= done["systemModstamp"]

    upsert = call(
        sf, "POST", "ingest", json={"object": "Lead", "operation": "upsert", "externalIdFieldName": "ext__C"}
    )
    assert upsert.json()["externalIdFieldName"] == "Ext__c"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"object": "Nope", "operation": "insert"}, "InvalidJob : Unable to find object: Nope"),
        ({"object": "Lead", "operation": "merge"}, "InvalidJob : Invalid operation: merge"),
        (
            {"object": "Lead", "operation": "upsert"},
            "InvalidJob : External ID was blank for Lead. An External ID must be specified for upsert.",
        ),
        (
            {"object": "Lead", "operation": "upsert", "externalIdFieldName": "Title"},
            "InvalidJob : Field name provided, Title does not match an External ID, Salesforce Id, "
            "or indexed field for Lead",
        ),
        (
            {"object": "Lead", "operation": "insert", "columnDelimiter": "COLON"},
            "InvalidJob : Invalid column delimiter: COLON",
        ),
        (
            {"object": "Lead", "operation": "insert", "lineEnding": "CR"},
            "InvalidJob : Invalid line ending: CR",
        ),
        (
            {"object": "Lead", "operation": "insert", "contentType": "JSON"},
            "InvalidJob : Unsupported content type: JSON",
        ),
    ],
)
def test_create_job_errors(sf: Salesforce, body: dict, message: str) -> None:
    answer = call(sf, "POST", "ingest", json=body)
    assert (answer.status_code, answer.json()) == (400, [{"errorCode": "INVALIDJOB", "message": message}])


def test_malformed_json_body(sf: Salesforce) -> None:
    answer = call(sf, "POST", "ingest", data=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "ingest/7508c0000000zzzAAA"),
        ("PATCH", "ingest/7508c0000000zzzAAA"),
        ("DELETE", "ingest/7508c0000000zzzAAA"),
        ("PUT", "ingest/7508c0000000zzzAAA/batches"),
        ("GET", "ingest/7508c0000000zzzAAA/successfulResults/"),
        ("GET", "ingest/7508c0000000zzzAAA/failedResults"),
        ("GET", "query/7508c0000000zzzAAA"),
        ("GET", "query/7508c0000000zzzAAA/results"),
        ("GET", "nothing/here"),
    ],
)
def test_unknown_job_is_not_found(sf: Salesforce, method: str, path: str) -> None:
    answer = call(sf, method, path, json={"state": "Aborted"} if method == "PATCH" else None)
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)


def test_query_job_is_not_an_ingest_job(sf: Salesforce) -> None:
    job_id = client(sf).create_job(Operation.query, query="SELECT Id FROM Lead")["id"]
    assert call(sf, "GET", f"ingest/{job_id}").json() == NOT_FOUND


def test_state_rules(sf: Salesforce) -> None:
    job_id = open_job(sf, "LastName,Company\nAda,Acme\n")
    call(sf, "PATCH", f"ingest/{job_id}", json={"state": "UploadComplete"})
    client(sf).wait_for_job(job_id, False, WAIT)

    late = call(sf, "PUT", f"ingest/{job_id}/batches", data=b"LastName\nx\n")
    assert late.status_code == 409 and late.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    again = call(sf, "PATCH", f"ingest/{job_id}", json={"state": "UploadComplete"})
    assert again.status_code == 409 and again.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    abort = call(sf, "PATCH", f"ingest/{job_id}", json={"state": "Aborted"})
    assert (abort.status_code, abort.json()) == (
        409, [{"errorCode": "INVALIDJOBSTATE", "message": "Aborting already Completed Job not allowed"}],
    )  # fmt: skip
    odd = call(sf, "PATCH", f"ingest/{job_id}", json={"state": "JobComplete"})
    assert odd.status_code == 400 and odd.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    wrong = call(sf, "POST", f"ingest/{job_id}")
    message = "HTTP Method 'POST' not allowed. Allowed are GET,PATCH,DELETE"
    assert (wrong.status_code, wrong.json()) == (
        405,
        [{"errorCode": "METHOD_NOT_ALLOWED", "message": message}],
    )


def test_abort_leaves_every_record_unprocessed(sf: Salesforce, emu: EmulatorProcess) -> None:
    job_id = open_job(sf, "LastName,Company\nAda,Acme\nBob,Beta\n")
    aborted = call(sf, "PATCH", f"ingest/{job_id}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    info = call(sf, "GET", f"ingest/{job_id}").json()
    assert (info["state"], info["numberRecordsProcessed"]) == ("Aborted", 0)
    assert rows(call(sf, "GET", f"ingest/{job_id}/unprocessedrecords/").text) == [
        {"LastName": "Ada", "Company": "Acme"},
        {"LastName": "Bob", "Company": "Beta"},
    ]
    assert (
        call(sf, "GET", f"ingest/{job_id}/successfulResults").text
        == '"sf__Id","sf__Created","LastName","Company"\n'
    )
    assert call(sf, "PATCH", f"ingest/{job_id}", json={"state": "UploadComplete"}).status_code == 409
    with pytest.raises(SalesforceOperationError, match="Job failure"):
        client(sf).wait_for_job(job_id, False, WAIT)
    assert leads(emu) == []


def test_a_second_upload_makes_closing_fail(sf: Salesforce) -> None:
    job_id = open_job(sf, "LastName,Company\nAda,Acme\n")
    call(sf, "PUT", f"ingest/{job_id}/batches", data=b"LastName,Company\nBob,Beta\n")
    answer = call(sf, "PATCH", f"ingest/{job_id}", json={"state": "UploadComplete"})
    assert (answer.status_code, answer.json()[0]["errorCode"]) == (400, "INVALIDJOB")
    assert answer.json()[0]["message"].startswith(f"Found multipe contents for job: <{job_id}>")


def test_list_and_delete_jobs(sf: Salesforce) -> None:
    job_id = open_job(sf)
    listed = call(sf, "GET", "ingest").json()
    assert (listed["done"], listed["nextRecordsUrl"]) == (True, None)
    assert job_id in [j["id"] for j in listed["records"]]
    assert call(sf, "DELETE", f"ingest/{job_id}").status_code == 409  # an Open job cannot be deleted
    call(sf, "PATCH", f"ingest/{job_id}", json={"state": "Aborted"})
    deleted = call(sf, "DELETE", f"ingest/{job_id}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert call(sf, "GET", f"ingest/{job_id}").json() == NOT_FOUND
    assert job_id not in [j["id"] for j in call(sf, "GET", "ingest").json()["records"]]


def test_reset_deletes_every_job(sf: Salesforce, emu: EmulatorProcess) -> None:
    done = run_job(sf, "LastName,Company\nA,C\n")["id"]
    still_open = open_job(sf, "LastName,Company\nB,C\n")
    query_job = {"operation": "query", "query": "SELECT Id FROM Lead"}
    query = call(sf, "POST", "query", json=query_job).json()["id"]
    assert emu.admin("POST", "reset") == {"reset": True}
    assert [call(sf, "GET", kind).json()["records"] for kind in ("ingest", "query")] == [[], []]
    for path in (f"ingest/{done}", f"ingest/{still_open}", f"query/{query}"):
        assert call(sf, "GET", path).json() == NOT_FOUND
    assert leads(emu) == []
    # Job ids are not reused, so a client holding an old id never reaches a new job.
    assert open_job(sf) not in (done, still_open, query)


def test_bulk_requests_count_as_bulk_calls(sf: Salesforce, emu: EmulatorProcess) -> None:
    emu.admin("POST", "calls/reset")
    call(sf, "GET", "ingest")
    call(sf, "GET", "query/7508c0000000zzzAAA")
    assert emu.admin("GET", "calls") == {"total": 2, "by_kind": {"bulk": 2}}


# ----------------------------------------------------------------------------------------------- query


def test_query_pages_with_locators(sf: Salesforce) -> None:
    insert(sf, [{"LastName": f"L{i}", "Company": "C"} for i in (3, 1, 5, 2, 4)])
    pages = list(
        sf.bulk2.Lead.query("SELECT LastName, Company FROM Lead ORDER BY LastName", max_records=2, wait=WAIT)
    )
    assert pages == [
        '"LastName","Company"\n"L1","C"\n"L2","C"\n',
        '"LastName","Company"\n"L3","C"\n"L4","C"\n',
        '"LastName","Company"\n"L5","C"\n',
    ]

    job = client(sf).create_job(Operation.query, query="SELECT LastName FROM Lead ORDER BY LastName")
    assert (job["state"], job["object"], job["operation"], job["jobType"]) == (
        "UploadComplete", "Lead", "query", "V2Query",
    )  # fmt: skip
    client(sf).wait_for_job(job["id"], True, WAIT)
    info = call(sf, "GET", f"query/{job['id']}").json()
    assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 5)
    first = call(sf, "GET", f"query/{job['id']}/results", params={"maxRecords": 4})
    assert first.headers["Sforce-NumberOfRecords"] == "4" and first.headers["Content-Type"].startswith(
        "text/csv"
    )
    rest = call(sf, "GET", f"query/{job['id']}/results", params={"locator": first.headers["Sforce-Locator"]})
    assert (rest.headers["Sforce-NumberOfRecords"], rest.headers["Sforce-Locator"], rest.text) == (
        "1", "null", '"LastName"\n"L5"\n',
    )  # fmt: skip
    bad = call(sf, "GET", f"query/{job['id']}/results", params={"locator": "!!"})
    assert bad.status_code == 400


def test_query_all_includes_deleted_records(sf: Salesforce) -> None:
    keep, gone = insert(sf, [{"LastName": "Keep", "Company": "C"}, {"LastName": "Gone", "Company": "C"}])
    sf.bulk2.Lead.delete(records=[{"Id": gone}], wait=WAIT)
    soql = "SELECT Id, LastName, IsDeleted FROM Lead ORDER BY LastName"
    assert list(sf.bulk2.Lead.query(soql, wait=WAIT)) == [
        f'"Id","LastName","IsDeleted"\n"{keep}","Keep","false"\n'
    ]
    assert list(sf.bulk2.Lead.query_all(soql, wait=WAIT)) == [
        f'"Id","LastName","IsDeleted"\n"{gone}","Gone","true"\n"{keep}","Keep","false"\n'
    ]


@pytest.mark.parametrize(
    "soql, code",
    [
        ("SELECT Nope FROM Lead", "INVALID_FIELD"),
        ("SELECT FROM Lead", "MALFORMED_QUERY"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
        ("SELECT COUNT() FROM Lead", "INVALIDJOB"),
    ],
)
def test_query_job_errors(sf: Salesforce, soql: str, code: str) -> None:
    answer = call(sf, "POST", "query", json={"operation": "query", "query": soql})
    assert answer.status_code == 400 and answer.json()[0]["errorCode"] == code


def test_query_job_abort_and_delete(sf: Salesforce) -> None:
    job_id = client(sf).create_job(Operation.query, query="SELECT Id FROM Lead")["id"]
    client(sf).wait_for_job(job_id, True, WAIT)
    assert call(sf, "PATCH", f"query/{job_id}", json={"state": "Aborted"}).status_code == 409
    assert call(sf, "GET", "query").json()["records"][-1]["id"] == job_id
    assert call(sf, "DELETE", f"query/{job_id}").status_code == 204
    assert call(sf, "GET", f"query/{job_id}/results").json() == NOT_FOUND


# --------------------------------------------------------------------------------------------- restart


def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    with start_emulator(tmp_path / "data") as first:
        [result] = first.salesforce().bulk2.Lead.insert(
            records=[{"LastName": "Ada", "Company": "Acme"}], wait=WAIT
        )
        job_id = result["job_id"]
        # The idle bulk workers must not hold up a clean SIGTERM stop.
        assert first.stop() == 0 and "Traceback" not in first.log_path.read_text()
    with start_emulator(tmp_path / "data") as second:
        sf = second.salesforce()
        info = call(sf, "GET", f"ingest/{job_id}").json()
        assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 1)
        [ok] = rows(sf.bulk2.Lead.get_successful_records(job_id))
        assert [ok["sf__Id"]] == [r["Id"] for r in leads(second)]


@pytest.mark.parametrize("stored_results", [0, 1], ids=["closed", "after-its-first-result"])
def test_jobs_a_stop_cut_off_resume_at_startup(tmp_path: Path, stored_results: int) -> None:
    # The data dir as a stop leaves it: a closed job not processed yet, or processed up to a stored result.
    data = tmp_path / "data"
    store = JobStore(data / "bulk2.sqlite3")
    job = store.create(
        job_type=INGEST, operation="insert", sobject="Lead", created_by_id="005000000000001AAA",
        api_version="59.0", line_ending="LF", column_delimiter="COMMA",
    )  # fmt: skip
    store.add_upload(job.id, b"LastName,Company\nA,C\nB,C\n")
    store.transition(job.id, UPLOAD_COMPLETE, (OPEN,))
    if stored_results:
        org = Org(data / "org.sqlite3", OrgConfig())
        first_id = org.create("Lead", {"LastName": "A", "Company": "C"})
        store.transition(job.id, IN_PROGRESS, (UPLOAD_COMPLETE,))
        store.add_results(job.id, [RecordResult(0, True, first_id, "true", ["A", "C"])], 0)
        org.close()
    store.close()

    with start_emulator(data) as emu:
        assert emu.admin("POST", "bulk/wait") == {"idle": True}
        assert emu.admin("GET", "calls") == {"total": 0, "by_kind": {}}  # no Bulk request set it going
        assert sorted(r["LastName"] for r in leads(emu)) == ["A", "B"]
        info = call(emu.salesforce(), "GET", f"ingest/{job.id}").json()
        assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
            "JobComplete",
            2,
            0,
        )
        assert emu.stop() == 0
    assert "Traceback" not in emu.log_path.read_text()


def test_runner_resumes_a_job_after_its_last_stored_chunk(tmp_path: Path) -> None:
    org = Org(tmp_path / "org.sqlite3", OrgConfig())
    store = JobStore(tmp_path / "bulk2.sqlite3")
    job = store.create(
        job_type=INGEST, operation="insert", sobject="Lead", created_by_id="005000000000001AAA",
        api_version="59.0", line_ending="LF", column_delimiter="COMMA",
    )  # fmt: skip
    store.add_upload(job.id, b"LastName,Company\nA,C\nB,C\nC,C\n")
    store.transition(job.id, IN_PROGRESS, (OPEN,))
    # As if the server stopped after storing the first record's result.
    first_id = org.create("Lead", {"LastName": "A", "Company": "C"})
    store.add_results(job.id, [RecordResult(0, True, first_id, "true", ["A", "C"])], 0)

    runner = JobRunner(store, org)
    try:
        assert runner.wait_idle(30)
    finally:
        runner.stop()
    done = store.get(job.id)
    assert done is not None
    assert (done.state, done.records_processed, done.records_failed) == ("JobComplete", 3, 0)
    assert sorted(r["LastName"] for r in org.records("Lead")) == ["A", "B", "C"]


_MISSING = "Required fields are missing: [LastName, Company]"


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            RecordError(
                [
                    {
                        "statusCode": "REQUIRED_FIELD_MISSING",
                        "message": _MISSING,
                        "fields": ["LastName", "Company"],
                    }
                ]
            ),
            f"REQUIRED_FIELD_MISSING:{_MISSING}:LastName,Company --",
        ),
        (
            ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", []),
            "ENTITY_IS_DELETED:entity is deleted:--",
        ),
        (ApiError(400, "MALFORMED_ID", "malformed id x"), "MALFORMED_ID:malformed id x:--"),
        (
            RecordError(
                [{"statusCode": "A", "message": "m1", "fields": ["F"]}, {"statusCode": "B", "message": "m2"}]
            ),
            "A:m1:F --B:m2:--",
        ),
    ],
)
def test_error_column_format(error: ApiError, expected: str) -> None:
    assert format_error(error) == expected


@pytest.mark.parametrize(
    "raw, field_type, expected",
    [
        ("#N/A", "string", None), ("#N/A", "int", None), ("text", "string", "text"),
        ("12", "int", "12"), ("-3", "int", "-3"), ("1.5e3", "currency", "1.5e3"),
        ("TRUE", "boolean", True), ("0", "boolean", False), ("no", "boolean", False),
        ("2026-11-28", "date", "2026-11-28"),
    ],
)  # fmt: skip
def test_csv_values_convert_by_field_type(raw: str, field_type: str, expected: Any) -> None:
    assert convert_value(raw, field_type) == expected


@pytest.mark.parametrize(
    "raw, field_type",
    [("1.5", "int"), ("many", "int"), ("1,5", "double"), ("maybe", "boolean"), ("nan", "double")],
)
def test_unreadable_csv_values_are_refused(raw: str, field_type: str) -> None:
    with pytest.raises(ValueError):
        convert_value(raw, field_type)


def test_locators_round_trip() -> None:
    assert [decode_locator(encode_locator(n)) for n in (0, 1, 2000, 123_456)] == [0, 1, 2000, 123_456]
    assert decode_locator("!!") is None and decode_locator(encode_locator(-1)) is None
