"""REST resources through simple-salesforce's SFType and raw HTTP: versions, describe, CRUD, upsert."""

import re

import pytest
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from tests.emulator.conftest import API, calls

LEAD = {"LastName": "Lovelace", "Company": "Analytical Engines", "Email": "ada@example.com"}
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


def test_versions_list_needs_no_session(emu, raw):
    response = raw("GET", "/services/data/", auth=False, absolute=True)
    assert response.status_code == 200
    versions = response.json()
    assert len(versions) == 36
    assert versions[0] == {"label": "Summer '14", "url": "/services/data/v31.0", "version": "31.0"}
    assert versions[19] == {"label": "Winter '21", "url": "/services/data/v50.0", "version": "50.0"}
    assert versions[-1] == {"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"}
    assert "sforce-limit-info" not in response.headers


def test_resources_of_a_version(emu, raw):
    response = raw("GET", "/services/data/v66.0/", absolute=True)
    assert response.status_code == 200
    assert response.json()["sobjects"] == "/services/data/v66.0/sobjects"
    assert response.json()["query"] == "/services/data/v66.0/query"


@pytest.mark.parametrize("version", ["6.0", "67.0", "99.0", "59", "abc", "1234.0"])
def test_unknown_versions_are_not_found(emu, raw, version):
    response = raw("GET", f"/services/data/v{version}/limits", absolute=True)
    assert (response.status_code, response.json()) == (
        404,
        [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}],
    )


@pytest.mark.parametrize(
    ("version", "path"),
    [("7.0", "limits"), ("20.0", "sobjects"), ("21.0", "query?q=SELECT+Id+FROM+Lead"), ("30.0", "")],
)
def test_retired_versions_are_gone(emu, raw, version, path):
    """Versions 7.0-30.0 are retired: "REST API returns the 410:GONE error code" (End-of-Life Policy)."""
    before = calls(emu)
    response = raw("GET", f"/services/data/v{version}/{path}", absolute=True)
    assert (response.status_code, response.json()) == (
        410,
        [
            {
                "message": f"API version {version} is retired and no longer available; use 31.0 or later.",
                "errorCode": "GONE",
            }
        ],
    )
    assert "sforce-limit-info" not in response.headers
    assert calls(emu) == before  # refused before the session is checked: not an API call


@pytest.mark.parametrize(
    ("method", "version", "path", "status"),
    [
        ("GET", "31.0", "limits", 200),
        ("GET", "40.0", "sobjects/Lead/describe", 200),
        ("POST", "37.0", "composite", 404),  # Composite came in 38.0
        ("POST", "41.0", "composite/sobjects", 404),  # sObject Collections in 42.0
        ("POST", "42.0", "composite/sobjects", 400),  # served: the empty body is refused
        ("PATCH", "45.0", "composite/sobjects/Lead/Ext__c", 404),  # collection upsert in 46.0
        ("GET", "40.0", "jobs/ingest", 404),  # Bulk API 2.0 ingest in 41.0
        ("GET", "46.0", "jobs/query", 404),  # Bulk API 2.0 query in 47.0
        ("GET", "47.0", "jobs/query", 200),
    ],
)
def test_older_supported_versions_serve_what_they_had(emu, raw, method, version, path, status):
    response = raw(method, f"/services/data/v{version}/{path}", absolute=True)
    assert response.status_code == status
    if status == 404:
        assert response.json() == NOT_FOUND


def test_a_client_on_an_older_version_works(emu):
    sf = emu.salesforce("45.0")
    created = sf.Lead.create(LEAD)
    assert sf.query(f"SELECT Id FROM Lead WHERE Id = '{created['id']}'")["totalSize"] == 1
    assert (
        sf.Lead.get(created["id"])["attributes"]["url"]
        == f"/services/data/v45.0/sobjects/Lead/{created['id']}"
    )


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_missing_or_bad_session_is_401(emu, raw, header):
    headers = {"Authorization": header} if header else {}
    response = raw("GET", "limits", auth=False, headers=headers)
    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_every_api_response_carries_limit_info(emu, sf, raw):
    first = raw("GET", "limits")
    second = raw("GET", "sobjects/Lead/00Q000000000000AAA")
    used = int(re.fullmatch(r"api-usage=(\d+)/100000", first.headers["sforce-limit-info"]).group(1))
    assert second.headers["sforce-limit-info"] == f"api-usage={used + 1}/100000"
    assert first.json()["DailyApiRequests"] == {"Max": 100000, "Remaining": 100000 - used}
    sf.query("SELECT COUNT() FROM Lead")
    assert sf.api_usage["api-usage"] == (used + 2, 100000)


def test_create_get_update_delete(emu, sf, raw):
    created = raw("POST", "sobjects/Lead/", json=LEAD)
    assert created.status_code == 201
    body = created.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    lead_id = body["id"]
    assert lead_id.startswith("00Q") and len(lead_id) == 18
    record = sf.Lead.get(lead_id)
    assert record["attributes"] == {"type": "Lead", "url": f"/services/data/v{API}/sobjects/Lead/{lead_id}"}
    assert (record["LastName"], record["Status"]) == ("Lovelace", "Open - Not Contacted")
    some = raw("GET", f"sobjects/Lead/{lead_id}", params={"fields": "Email,Company"}).json()
    assert some == {
        "attributes": record["attributes"],
        "Email": "ada@example.com",
        "Company": "Analytical Engines",
        "Id": lead_id,
    }
    assert sf.Lead.update(lead_id, {"FirstName": "Ada"}) == 204
    assert sf.Lead.get(lead_id)["FirstName"] == "Ada"
    assert sf.Lead.delete(lead_id) == 204
    again = raw("DELETE", f"sobjects/Lead/{lead_id}")
    assert (again.status_code, again.json()) == (
        404,
        [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}],
    )
    assert calls(emu) == {"login": 1, "create": 1, "get": 3, "update": 1, "delete": 2}


def test_create_with_sftype(emu, sf):
    result = sf.Account.create({"Name": "Acme"})
    assert result["success"] is True and result["errors"] == []
    assert emu.admin("GET", "records/Account")["records"][0]["Name"] == "Acme"


def test_validation_errors_are_400_with_the_domain_error(emu, sf, raw):
    response = raw("POST", "sobjects/Lead", json={"LastName": "x"})
    assert (response.status_code, response.json()) == (
        400,
        [
            {
                "message": "Required fields are missing: [Company]",
                "errorCode": "REQUIRED_FIELD_MISSING",
                "fields": ["Company"],
            }
        ],
    )
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Lead.create({"LastName": "x"})
    assert err.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_get_unknown_record_and_object(emu, sf, raw):
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get("00Q000000000000AAA")
    response = raw("GET", "sobjects/Nope__c/describe")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_describe_global_object_and_metadata(emu, sf):
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Lead", "Account", "Contact", "Case", "Opportunity"} <= names
    describe = sf.Lead.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert (describe["name"], describe["keyPrefix"]) == ("Lead", "00Q")
    assert (fields["LastName"]["length"], fields["Ext__c"]["externalId"]) == (80, True)
    assert sf.Lead.metadata()["objectDescribe"]["name"] == "Lead"
    assert calls(emu) == {"login": 1, "describe": 3}


def test_upsert_creates_then_updates(emu, sf, raw):
    created = raw("PATCH", "sobjects/Lead/Ext__c/E-1", json=LEAD)
    assert created.status_code == 201
    lead_id = created.json()["id"]
    assert created.json() == {"id": lead_id, "success": True, "errors": [], "created": True}
    updated = raw("PATCH", "sobjects/Lead/Ext__c/E-1", json={"FirstName": "Ada"})
    assert (updated.status_code, updated.json()) == (
        200,
        {"id": lead_id, "success": True, "errors": [], "created": False},
    )
    assert sf.Lead.upsert("Ext__c/E-2", LEAD) == 201
    assert sf.Lead.upsert("Ext__c/E-2", {"FirstName": "B"}) == 200
    assert sf.Lead.get_by_custom_id("Ext__c", "E-1")["Id"] == lead_id
    assert calls(emu)["upsert"] == 4


def test_upsert_by_lead_email_an_idlookup_field(emu, sf):
    # The REST guide's own example upserts a Lead by /sobjects/Lead/Email/<address>.
    assert (
        sf.Lead.upsert("Email/peter.gibbons@example.com", {"LastName": "Gibbons", "Company": "Initech"})
        == 201
    )
    assert sf.Lead.upsert("Email/PETER.GIBBONS@example.com", {"Title": "VP of Derp"}) == 200
    lead = sf.Lead.get_by_custom_id("Email", "peter.gibbons@example.com")
    assert (lead["LastName"], lead["Title"]) == ("Gibbons", "VP of Derp")


def test_upsert_with_several_matches_is_300(emu, sf, raw):
    first = sf.Lead.create({**LEAD, "Ext__c": "dup"})["id"]
    second = sf.Lead.create({**LEAD, "Ext__c": "dup"})["id"]
    response = raw("PATCH", "sobjects/Lead/Ext__c/dup", json={"FirstName": "x"})
    assert response.status_code == 300
    assert sorted(response.json()) == sorted(
        f"/services/data/v{API}/sobjects/Lead/{i}" for i in (first, second)
    )
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Lead.upsert("Ext__c/dup", {"FirstName": "x"})


def test_upsert_on_a_field_that_is_not_an_external_id_is_404(emu, sf, raw):
    response = raw("PATCH", "sobjects/Lead/LastName/x", json=LEAD)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.upsert("Nope__c/x", LEAD)


def test_wrong_method_is_405(emu, raw):
    response = raw("PUT", "sobjects/Lead/00Q000000000000AAA", json=LEAD)
    assert response.status_code == 405
    assert response.json() == [
        {
            "message": "HTTP Method 'PUT' not allowed. Allowed are HEAD,GET,PATCH,DELETE",
            "errorCode": "METHOD_NOT_ALLOWED",
        }
    ]


def test_unknown_resource_is_404(emu, raw):
    response = raw("GET", "nothing/here")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
