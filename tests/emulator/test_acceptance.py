"""Acceptance: sObject CRUD, upsert, ids, audit fields and describe, as Salesforce documents them.

Written from issue 2 and Salesforce's REST API Developer Guide, not from the emulator's code. Each test
drives the emulator subprocess through simple-salesforce, unchanged, or raw HTTP for status codes,
headers and bodies.
"""

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMoreThanOneRecord, SalesforceResourceNotFound

from tests.emulator.conftest import API, Raw

JSON = "application/json;charset=UTF-8"  # REST API guide, "Limit Info Header" example response
LEAD = {"LastName": "Lovelace", "Company": "Analytical Engines"}
# Well-formed ids (with the right case-safe suffix) that no record has.
NO_LEAD = "00Q000000000000EAA"
NO_ACCOUNT = "001000000000000AAA"


def url(sobject: str, record_id: str) -> str:
    return f"/services/data/v{API}/sobjects/{sobject}/{record_id}"


# ------------------------------------------------------------------------------------- create/get


def test_create_answers_201_with_the_documented_body(raw: Raw):
    response = raw("POST", "sobjects/Lead/", json=LEAD)

    assert response.status_code == 201
    assert response.headers["Content-Type"] == JSON
    body = response.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    assert len(body["id"]) == 18 and body["id"].startswith("00Q")


@pytest.mark.parametrize(
    ("sobject", "fields", "prefix"),
    [
        ("Lead", LEAD, "00Q"),
        ("Account", {"Name": "Acme"}, "001"),
        ("Contact", {"LastName": "Hopper"}, "003"),
        ("Case", {"Subject": "Broken"}, "500"),
        ("Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-12-31"}, "006"),
    ],
)
def test_ids_carry_each_objects_key_prefix(sf: Salesforce, sobject: str, fields: dict, prefix: str):
    record_id = getattr(sf, sobject).create(fields)["id"]

    assert (len(record_id), record_id[:3]) == (18, prefix)


def test_get_returns_attributes_and_every_field(sf: Salesforce):
    record_id = sf.Lead.create(LEAD)["id"]

    record = sf.Lead.get(record_id)

    assert record["attributes"] == {"type": "Lead", "url": url("Lead", record_id)}
    assert (record["Id"], record["LastName"], record["Company"], record["Email"]) == (
        record_id,
        "Lovelace",
        "Analytical Engines",
        None,
    )
    assert record["Name"] == "Lovelace"  # the compound name is derived, not stored as sent
    assert record["Status"] == "Open - Not Contacted"  # Status is defaulted on create
    assert (record["IsConverted"], record["IsDeleted"]) == (False, False)


def test_get_with_fields_returns_only_those_and_id(raw: Raw, sf: Salesforce):
    record_id = sf.Lead.create(LEAD)["id"]

    response = raw("GET", f"sobjects/Lead/{record_id}", params={"fields": "LastName,Company"})

    assert response.json() == {
        "attributes": {"type": "Lead", "url": url("Lead", record_id)},
        "LastName": "Lovelace",
        "Company": "Analytical Engines",
        "Id": record_id,
    }


def test_fifteen_character_and_lowercased_ids_name_the_same_record(sf: Salesforce):
    record_id = sf.Lead.create(LEAD)["id"]

    assert sf.Lead.get(record_id[:15])["Id"] == record_id
    # The 18-character form is case-insensitive: its suffix says which letters are uppercase.
    assert sf.Lead.get(record_id.lower())["Id"] == record_id


def test_head_answers_like_get_without_a_body_and_changes_nothing(raw: Raw, sf: Salesforce):
    # The REST guide lists HEAD for sObject Rows and sObject Basic Information: a GET without its body.
    record_id = sf.Lead.create(LEAD)["id"]

    row = raw("HEAD", f"sobjects/Lead/{record_id}")
    basic = raw("HEAD", "sobjects/Lead")

    assert (row.status_code, row.content, row.headers["Content-Type"]) == (200, b"", JSON)
    assert (basic.status_code, basic.content) == (200, b"")
    assert sf.Lead.get(record_id)["IsDeleted"] is False
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 1


def test_the_id_must_not_be_in_a_create_body(raw: Raw):
    response = raw("POST", "sobjects/Lead/", json={**LEAD, "Id": NO_LEAD})

    assert response.status_code == 400
    assert response.json() == [
        {"message": "The Id field should not be specified in the sobject data.", "errorCode": "INVALID_FIELD"}
    ]


# ------------------------------------------------------------------------------ update and delete


def test_update_answers_204_with_no_body_and_changes_the_record(raw: Raw, sf: Salesforce):
    record_id = sf.Lead.create(LEAD)["id"]

    response = raw("PATCH", f"sobjects/Lead/{record_id}", json={"FirstName": "Ada"})

    assert (response.status_code, response.content) == (204, b"")
    assert "Content-Type" not in response.headers
    assert sf.Lead.update(record_id, {"Title": "Countess"}) == 204
    record = sf.Lead.get(record_id)
    assert (record["FirstName"], record["Title"], record["Name"]) == ("Ada", "Countess", "Ada Lovelace")


def test_delete_answers_204_and_the_record_is_then_deleted(raw: Raw, sf: Salesforce):
    record_id = sf.Lead.create(LEAD)["id"]

    response = raw("DELETE", f"sobjects/Lead/{record_id}")

    assert (response.status_code, response.content) == (204, b"")
    again = raw("DELETE", f"sobjects/Lead/{record_id}")
    assert again.status_code == 404
    assert again.json() == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}]
    assert raw("GET", f"sobjects/Lead/{record_id}").json()[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_unknown_well_formed_id_is_404_not_found(raw: Raw):
    for method in ("PATCH", "DELETE"):
        response = raw(method, f"sobjects/Lead/{NO_LEAD}", json={"FirstName": "x"})
        assert response.status_code == 404, method
        assert response.json() == [
            {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
        ]


def test_malformed_id_is_400_malformed_id(raw: Raw):
    response = raw("PATCH", "sobjects/Lead/abc", json={"FirstName": "x"})

    assert response.status_code == 400
    assert response.json() == [{"message": "malformed id abc", "errorCode": "MALFORMED_ID"}]


def test_unknown_object_is_404(raw: Raw):
    response = raw("POST", "sobjects/Widget__c/", json={"Name": "x"})

    assert response.status_code == 404
    assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_audit_fields_move_on_update_and_created_date_stays(emu, sf: Salesforce):
    # Seeded with old stamps, so that the update's stamps are later whatever the clock's resolution.
    old = "2020-01-01T00:00:00.000+0000"
    record_id = emu.admin(
        "POST",
        "records/Lead",
        {**LEAD, "CreatedDate": old, "LastModifiedDate": old, "SystemModstamp": old},
    )["id"]

    sf.Lead.update(record_id, {"FirstName": "Ada"})

    record = sf.Lead.get(record_id)
    assert record["CreatedDate"] == old
    assert record["LastModifiedDate"] > old
    assert record["SystemModstamp"] == record["LastModifiedDate"]


def test_datetimes_are_stored_to_the_second(sf: Salesforce):
    # Salesforce datetime fields keep no milliseconds: API values always end in ".000+0000".
    record = sf.Lead.get(sf.Lead.create(LEAD)["id"])

    for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
        assert record[name].endswith(".000+0000"), (name, record[name])


# ----------------------------------------------------------------------------- upsert by external id


def test_upsert_answers_201_created_then_200_updated(raw: Raw):
    first = raw("PATCH", "sobjects/Lead/Ext__c/E-1", json=LEAD)
    second = raw("PATCH", "sobjects/Lead/Ext__c/E-1", json={"Title": "Countess"})

    assert first.status_code == 201
    record_id = first.json()["id"]
    assert first.json() == {"id": record_id, "success": True, "errors": [], "created": True}
    assert second.status_code == 200
    assert second.json() == {"id": record_id, "success": True, "errors": [], "created": False}


def test_simple_salesforce_upsert_returns_the_status_codes(sf: Salesforce):
    assert sf.Lead.upsert("Ext__c/E-2", LEAD) == 201
    assert sf.Lead.upsert("Ext__c/E-2", {"Title": "Countess"}) == 200
    record = sf.Lead.get_by_custom_id("Ext__c", "E-2")
    assert (record["Ext__c"], record["Title"]) == ("E-2", "Countess")


def test_upsert_matching_several_records_answers_300_with_their_urls(raw: Raw, sf: Salesforce):
    ids = sorted(sf.Lead.create({**LEAD, "Ext__c": "DUP"})["id"] for _ in range(2))

    response = raw("PATCH", "sobjects/Lead/Ext__c/DUP", json={"Title": "x"})

    assert response.status_code == 300
    assert response.json() == [url("Lead", i) for i in ids]
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Lead.upsert("Ext__c/DUP", {"Title": "x"})
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Lead.get_by_custom_id("Ext__c", "DUP")


@pytest.mark.parametrize("field", ["Nope__c", "LastName"])
def test_upsert_on_a_field_that_is_no_external_id_is_404(raw: Raw, field: str):
    response = raw("PATCH", f"sobjects/Lead/{field}/x", json=LEAD)

    assert response.status_code == 404
    assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_upsert_by_an_id_lookup_field(sf: Salesforce):
    # The REST guide's upsert example uses Lead/Email: standard idLookup fields can match too.
    assert sf.Lead.upsert("Email/ada@example.org", LEAD) == 201
    assert sf.Lead.upsert("Email/ada@example.org", {"Title": "Countess"}) == 200
    assert sf.Lead.get_by_custom_id("Email", "ada@example.org")["Title"] == "Countess"


def test_upsert_with_update_only_never_creates(emu, raw: Raw):
    # "To prevent a new record from being created, use the updateOnly parameter" (REST guide). The
    # answer when nothing matches is not documented; 404 NOT_FOUND is the resource's answer for "no such
    # record" and what the guide's wording implies.
    response = raw("PATCH", "sobjects/Lead/Ext__c/NEW", params={"updateOnly": "true"}, json=LEAD)

    assert response.status_code == 404
    assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    assert emu.admin("GET", "records/Lead")["totalSize"] == 0


def test_upsert_with_update_only_updates_a_match(raw: Raw, sf: Salesforce):
    record_id = sf.Lead.create({**LEAD, "Ext__c": "OLD"})["id"]

    response = raw("PATCH", "sobjects/Lead/Ext__c/OLD?updateOnly=true", json={"Title": "Countess"})

    assert response.status_code == 200
    assert response.json() == {"id": record_id, "success": True, "errors": [], "created": False}


def test_post_to_the_id_external_id_creates(raw: Raw):
    # "In API version 37.0 and later, you can use this resource to create a record by POSTing to
    # /vXX.X/sobjects/SObjectName/Id" (REST guide, sObject Rows by External ID).
    response = raw("POST", "sobjects/Lead/Id", json=LEAD)

    assert response.status_code == 201
    record_id = response.json()["id"]
    assert response.json() == {"id": record_id, "success": True, "errors": [], "created": True}
    assert record_id.startswith("00Q")


def test_get_by_unknown_external_id_value_is_404(sf: Salesforce):
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get_by_custom_id("Ext__c", "missing")

    assert caught.value.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


# -------------------------------------------------------------------------------------- describe


def _fields(sf: Salesforce, sobject: str) -> dict[str, dict]:
    return {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}


def test_describe_top_level(sf: Salesforce):
    describe = sf.Lead.describe()

    assert (describe["name"], describe["label"], describe["labelPlural"], describe["keyPrefix"]) == (
        "Lead",
        "Lead",
        "Leads",
        "00Q",
    )
    assert (describe["custom"], describe["createable"], describe["updateable"], describe["queryable"]) == (
        False,
        True,
        True,
        True,
    )
    assert describe["urls"]["describe"] == f"/services/data/v{API}/sobjects/Lead/describe"


def test_describe_lead_email(sf: Salesforce):
    email = _fields(sf, "Lead")["Email"]

    assert {k: email[k] for k in ("type", "length", "byteLength", "idLookup", "nillable", "soapType")} == {
        "type": "email",
        "length": 80,
        "byteLength": 240,
        "idLookup": True,
        "nillable": True,
        "soapType": "xsd:string",
    }
    assert (email["createable"], email["updateable"], email["custom"], email["externalId"]) == (
        True,
        True,
        False,
        False,
    )


def test_describe_lead_status_is_a_picklist_defaulted_on_create(sf: Salesforce):
    status = _fields(sf, "Lead")["Status"]

    assert (status["type"], status["defaultedOnCreate"], status["nillable"], status["createable"]) == (
        "picklist",
        True,
        False,
        True,
    )
    defaults = [v["value"] for v in status["picklistValues"] if v["defaultValue"]]
    assert defaults == ["Open - Not Contacted"]
    assert set(status["picklistValues"][0]) == {"active", "defaultValue", "label", "validFor", "value"}


@pytest.mark.parametrize("sobject", ["Lead", "Account"])
def test_describe_number_of_employees_is_an_int_of_8_digits(sf: Salesforce, sobject: str):
    field = _fields(sf, sobject)["NumberOfEmployees"]

    assert (field["type"], field["digits"], field["soapType"], field["label"]) == (
        "int",
        8,
        "xsd:int",
        "Employees",
    )


@pytest.mark.parametrize(
    ("sobject", "name", "createable", "updateable", "nillable"),
    [
        ("Lead", "IsConverted", False, False, False),
        ("Lead", "Name", False, False, True),
        ("Lead", "Id", False, False, False),
        ("Lead", "CreatedDate", False, False, False),
        ("Lead", "LastName", True, True, False),
        ("Account", "Name", True, True, False),
    ],
)
def test_describe_write_properties(
    sf: Salesforce, sobject: str, name: str, createable: bool, updateable: bool, nillable: bool
):
    field = _fields(sf, sobject)[name]

    assert (field["createable"], field["updateable"], field["nillable"]) == (createable, updateable, nillable)


def test_describe_custom_external_id_field(sf: Salesforce):
    ext = _fields(sf, "Lead")["Ext__c"]

    assert {k: ext[k] for k in ("type", "length", "custom", "externalId", "idLookup", "label")} == {
        "type": "string",
        "length": 80,
        "custom": True,
        "externalId": True,
        "idLookup": True,
        "label": "Ext",
    }


def test_describe_global_and_metadata(sf: Salesforce):
    described = sf.describe()
    metadata = sf.Lead.metadata()

    assert (described["encoding"], described["maxBatchSize"]) == ("UTF-8", 200)
    names = {s["name"] for s in described["sobjects"]}
    assert {"Lead", "Account", "Contact", "Case", "Opportunity"} <= names
    assert metadata["objectDescribe"]["name"] == "Lead"
    assert metadata["recentItems"] == []


def test_describe_of_an_unknown_object_is_404(raw: Raw):
    response = raw("GET", "sobjects/Widget__c/describe")

    assert response.status_code == 404
    assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
