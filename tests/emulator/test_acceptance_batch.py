"""Acceptance: sObject Collections, Composite, Bulk API 2.0, and robustness against bad requests."""

import csv
import io

import pytest
from simple_salesforce import Salesforce

from tests.emulator.conftest import API, Raw, calls

ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header",
    "fields": [],
}
MISSING_COMPANY = {
    "statusCode": "REQUIRED_FIELD_MISSING",
    "message": "Required fields are missing: [Company]",
    "fields": ["Company"],
}
NOT_FOUND = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
V = f"/services/data/v{API}"


def lead(**fields) -> dict:
    return {"attributes": {"type": "Lead"}, **fields}


# ------------------------------------------------------------------------------ sObject Collections


def test_collection_create_without_all_or_none_saves_the_valid_records_in_order(emu, sf: Salesforce):
    records = [lead(LastName="a", Company="c"), lead(LastName="b"), lead(LastName="c", Company="c")]

    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})

    assert [r["success"] for r in results] == [True, False, True]
    assert results[1] == {"id": None, "success": False, "errors": [MISSING_COMPANY]}
    assert results[0]["errors"] == results[2]["errors"] == []
    stored = {r["Id"]: r["LastName"] for r in emu.admin("GET", "records/Lead")["records"]}
    assert stored == {results[0]["id"]: "a", results[2]["id"]: "c"}


def test_collection_create_with_all_or_none_saves_nothing(emu, sf: Salesforce):
    records = [lead(LastName="a", Company="c"), lead(LastName="b"), lead(LastName="c", Company="c")]

    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})

    assert results == [
        {"id": None, "success": False, "errors": [ROLLED_BACK]},
        {"id": None, "success": False, "errors": [MISSING_COMPANY]},
        {"id": None, "success": False, "errors": [ROLLED_BACK]},
    ]
    assert emu.admin("GET", "records/Lead")["totalSize"] == 0


def create_two_leads(sf: Salesforce) -> list[str]:
    """Two Leads created through sObject Collections; their ids in request order."""
    body = {"records": [lead(LastName="a", Company="c"), lead(LastName="b", Company="c")]}
    return [r["id"] for r in sf.restful("composite/sobjects", method="POST", json=body)]


def test_collection_update_and_delete(sf: Salesforce):
    ids = create_two_leads(sf)

    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"records": [lead(id=ids[0], Title="x"), lead(id=ids[1], LastName=None)]},
    )
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})

    assert updated[0] == {"id": ids[0], "success": True, "errors": []}
    assert updated[1]["success"] is False
    assert updated[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert deleted == [{"id": i, "success": True, "errors": []} for i in ids]


def test_collection_results_name_records_by_their_18_character_ids(sf: Salesforce):
    ids = create_two_leads(sf)

    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"records": [lead(id=ids[0][:15], Title="x"), lead(id=ids[1].lower(), Title="y")]},
    )
    deleted = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": f"{ids[0].lower()},{ids[1][:15]}"}
    )

    assert [r["id"] for r in updated] == ids
    assert [r["id"] for r in deleted] == ids


def test_collections_take_at_most_200_records(raw: Raw):
    records = [lead(LastName=str(i), Company="c") for i in range(201)]

    response = raw("POST", "composite/sobjects", json={"records": records})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_a_collection_of_200_is_one_api_call(emu, sf: Salesforce):
    records = [lead(LastName=str(i), Company="c") for i in range(200)]

    results = sf.restful("composite/sobjects", method="POST", json={"records": records})

    assert len(results) == 200 and all(r["success"] for r in results)
    assert calls(emu) == {"login": 1, "collections": 1}


def test_collection_upsert_by_external_id(sf: Salesforce):
    # PATCH /composite/sobjects/{Object}/{ExternalIdField}, API 46.0 and later (REST guide, "Upsert
    # Multiple Records"): results in request order, each with "created".
    existing = sf.Lead.create({"LastName": "old", "Company": "c", "Ext__c": "E1"})["id"]
    twins = sorted(sf.Lead.create({"LastName": "twin", "Company": "c", "Ext__c": "TWIN"})["id"] for _ in "ab")
    records = [
        lead(Ext__c="E1", Title="updated"),
        lead(Ext__c="E2", LastName="new", Company="c"),
        lead(Ext__c="E3", LastName="no company"),
        lead(Ext__c="TWIN", Title="which?"),
    ]

    results = sf.restful("composite/sobjects/Lead/Ext__c", method="PATCH", json={"records": records})

    assert results[0] == {"id": existing, "success": True, "errors": [], "created": False}
    assert results[1]["success"] is True and results[1]["created"] is True
    assert results[2] == {"id": None, "success": False, "errors": [MISSING_COMPANY], "created": False}
    # The StatusCode Salesforce gives an upsert key that matches several records.
    assert results[3]["errors"] == [
        {
            "statusCode": "DUPLICATE_EXTERNAL_ID",
            "message": f"Ext__c: more than one record found for external id field: [{', '.join(twins)}]",
            "fields": ["Ext__c"],
        }
    ]
    assert sf.Lead.get(existing)["Title"] == "updated"
    assert sf.Lead.get_by_custom_id("Ext__c", "E2")["Id"] == results[1]["id"]


# ---------------------------------------------------------------------------------------- Composite


def test_composite_references_and_one_api_call(emu, sf: Salesforce):
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "acc", "body": {"Name": "A"}},
            {
                "method": "POST",
                "url": f"{V}/sobjects/Contact",
                "referenceId": "con",
                "body": {"LastName": "C", "AccountId": "@{acc.id}"},
            },
            {
                "method": "GET",
                "url": f"{V}/sobjects/Contact/@{{con.id}}?fields=AccountId",
                "referenceId": "get",
            },
        ],
    }

    [acc, con, get] = sf.restful("composite", method="POST", json=body)["compositeResponse"]

    account_id = acc["body"]["id"]
    assert acc == {
        "body": {"id": account_id, "success": True, "errors": []},
        "httpHeaders": {"Location": f"{V}/sobjects/Account/{account_id}"},
        "httpStatusCode": 201,
        "referenceId": "acc",
    }
    assert con["httpStatusCode"] == 201
    assert get["body"]["AccountId"] == account_id
    assert calls(emu) == {"login": 1, "composite": 1}


def test_composite_all_or_none_rolls_everything_back(emu, sf: Salesforce):
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "ok", "body": {"Name": "A"}},
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "bad", "body": {}},
        ],
    }

    [ok, bad] = sf.restful("composite", method="POST", json=body)["compositeResponse"]

    assert (ok["httpStatusCode"], ok["body"][0]["errorCode"]) == (400, "PROCESSING_HALTED")
    assert (bad["httpStatusCode"], bad["body"][0]["errorCode"]) == (400, "REQUIRED_FIELD_MISSING")
    assert emu.admin("GET", "records/Account")["totalSize"] == 0


def test_composite_upsert_subrequests_honour_update_only(emu, sf: Salesforce):
    body = {
        "compositeRequest": [
            {
                "method": "PATCH",
                "url": f"{V}/sobjects/Lead/Ext__c/NEW?updateOnly=true",
                "referenceId": "only",
                "body": {"LastName": "a", "Company": "c"},
            },
            {
                "method": "PATCH",
                "url": f"{V}/sobjects/Lead/Ext__c/NEW",
                "referenceId": "upsert",
                "body": {"LastName": "a", "Company": "c"},
            },
        ]
    }

    [only, upsert] = sf.restful("composite", method="POST", json=body)["compositeResponse"]

    assert (only["httpStatusCode"], only["body"]) == (404, NOT_FOUND)
    assert (upsert["httpStatusCode"], upsert["body"]["created"]) == (201, True)
    assert emu.admin("GET", "records/Lead")["totalSize"] == 1


# ----------------------------------------------------------------------------------------- Bulk 2.0


def _csv(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def test_bulk_insert_results_have_salesforces_columns(sf: Salesforce):
    records = [
        {"LastName": "a", "Company": "c"},
        {"LastName": "b", "Company": ""},
        {"LastName": "c", "Company": "c", "Email": "bad"},
    ]

    [summary] = sf.bulk2.Lead.insert(records=records, wait=0.05)

    job_id = summary["job_id"]
    assert summary == {
        "numberRecordsFailed": 2,
        "numberRecordsProcessed": 3,
        "numberRecordsTotal": 3,
        "job_id": job_id,
    }
    ok_header, ok_rows = _csv(sf.bulk2.Lead.get_successful_records(job_id))
    failed_header, failed_rows = _csv(sf.bulk2.Lead.get_failed_records(job_id))
    unprocessed_header, unprocessed_rows = _csv(sf.bulk2.Lead.get_unprocessed_records(job_id))
    assert ok_header[:2] == ["sf__Id", "sf__Created"]
    assert set(ok_header[2:]) == {"LastName", "Company", "Email"}
    assert [(r["sf__Created"], r["LastName"]) for r in ok_rows] == [("true", "a")]
    assert ok_rows[0]["sf__Id"].startswith("00Q")
    assert failed_header[:2] == ["sf__Id", "sf__Error"]
    assert sorted((r["LastName"], r["sf__Id"], r["sf__Error"]) for r in failed_rows) == [
        ("b", "", "REQUIRED_FIELD_MISSING:Required fields are missing: [Company]:Company --"),
        ("c", "", "INVALID_EMAIL_ADDRESS:Email: invalid email address: bad:Email --"),
    ]
    assert set(unprocessed_header) == {"LastName", "Company", "Email"} and unprocessed_rows == []


def test_bulk_update_results_carry_18_character_ids(sf: Salesforce):
    record_id = sf.Lead.create({"LastName": "a", "Company": "c"})["id"]

    [summary] = sf.bulk2.Lead.update(records=[{"Id": record_id[:15], "Title": "Dr"}], wait=0.05)

    _, rows = _csv(sf.bulk2.Lead.get_successful_records(summary["job_id"]))
    assert [(r["sf__Id"], r["sf__Created"], r["Id"]) for r in rows] == [(record_id, "false", record_id[:15])]


def test_bulk_na_sets_a_field_to_null(sf: Salesforce):
    record_id = sf.Lead.create({"LastName": "a", "Company": "c", "Title": "Dr"})["id"]

    sf.bulk2.Lead.update(records=[{"Id": record_id, "Title": "#N/A"}], wait=0.05)

    assert sf.Lead.get(record_id)["Title"] is None


def test_bulk_job_info_and_unknown_job(raw: Raw):
    created = raw("POST", "jobs/ingest", json={"object": "Lead", "operation": "insert", "contentType": "CSV"})
    info = created.json()

    assert created.status_code == 200
    assert (info["state"], info["object"], info["operation"], info["jobType"]) == (
        "Open",
        "Lead",
        "insert",
        "V2Ingest",
    )
    assert info["id"].startswith("750") and len(info["id"]) == 18
    assert info["contentUrl"] == f"services/data/v{API}/jobs/ingest/{info['id']}/batches"
    missing = raw("GET", "jobs/ingest/750000000000000AAA")
    assert missing.status_code == 404
    assert missing.json() == [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


def test_malformed_csv_fails_the_job_and_the_server_keeps_serving(emu, raw: Raw, sf: Salesforce):
    job = raw(
        "POST", "jobs/ingest", json={"object": "Lead", "operation": "insert", "contentType": "CSV"}
    ).json()
    upload = raw(
        "PUT",
        f"jobs/ingest/{job['id']}/batches",
        data='LastName,Company\n"unterminated,c\n',
        headers={"Content-Type": "text/csv"},
    )
    raw("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    emu.admin("POST", "bulk/wait")

    info = raw("GET", f"jobs/ingest/{job['id']}").json()

    assert (upload.status_code, upload.content) == (201, b"")
    assert info["state"] == "Failed"
    assert info["errorMessage"].startswith("InvalidBatch")
    assert sf.Lead.create({"LastName": "still", "Company": "up"})["success"] is True


# --------------------------------------------------------------------------------------- robustness


def test_unknown_paths_are_404_not_found(raw: Raw):
    for path in ("nothing/here", "sobjects/Lead/describe/extra/parts"):
        response = raw("GET", path)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), path


def test_unknown_api_version_is_404(raw: Raw):
    response = raw("GET", "/services/data/v99.0/sobjects", absolute=True)

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_a_wrong_method_is_405_with_allow(raw: Raw):
    response = raw("PUT", "sobjects/Lead/")

    assert response.status_code == 405
    assert response.headers["Allow"] == "HEAD,GET,POST"
    assert response.json() == [
        {
            "message": "HTTP Method 'PUT' not allowed. Allowed are HEAD,GET,POST",
            "errorCode": "METHOD_NOT_ALLOWED",
        }
    ]


def test_malformed_soap_is_a_soap_fault(emu):
    response = emu.session().post(
        f"{emu.info['login_url']}/services/Soap/u/{API}",
        data="<env:Envelope><unclosed>",
        headers={"Content-Type": "text/xml", "SOAPAction": "login"},
    )

    assert response.status_code == 500
    assert "<soapenv:Fault>" in response.text and "<faultcode>" in response.text


def test_an_oversized_body_is_refused_and_the_server_keeps_serving(raw: Raw, sf: Salesforce):
    response = raw(
        "POST", "sobjects/Lead/", data=b" " * (51 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()[0]["errorCode"] == "EXCEEDED_MAX_SIZE_REQUEST"
    assert sf.Lead.create({"LastName": "still", "Company": "up"})["success"] is True


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe{", b'{"LastName": "a", "Company": ', b"null", b'"text"', b"[[[[[[[[[[[[[[[[[[[[[["],
)
def test_garbage_bodies_are_json_parser_errors(raw: Raw, data: bytes):
    response = raw("POST", "sobjects/Lead/", data=data, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
