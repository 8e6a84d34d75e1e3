"""Acceptance: Salesforce's validation errors, each with its documented code, status, message and fields."""

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.emulator.conftest import Raw

LEAD = {"LastName": "Lovelace", "Company": "Analytical Engines"}


def _refused(raw: Raw, body: dict, sobject: str = "Lead") -> list[dict]:
    response = raw("POST", f"sobjects/{sobject}/", json=body)
    assert response.status_code == 400, response.text
    return response.json()


def test_string_too_long_names_the_label_value_maximum_and_field(raw: Raw):
    value = "x" * 81

    assert _refused(raw, {**LEAD, "LastName": value}) == [
        {
            "message": f"Last Name: data value too large: {value} (max length=80)",
            "errorCode": "STRING_TOO_LONG",
            "fields": ["LastName"],
        }
    ]


def test_a_value_at_the_maximum_length_is_accepted(sf: Salesforce):
    record_id = sf.Lead.create({**LEAD, "LastName": "x" * 80, "Email": "a" * 68 + "@example.org"})["id"]

    assert len(sf.Lead.get(record_id)["LastName"]) == 80


@pytest.mark.parametrize(
    ("sobject", "body", "missing"),
    [
        ("Lead", {"FirstName": "Ada"}, ["LastName", "Company"]),
        ("Lead", {"LastName": "Lovelace"}, ["Company"]),
        ("Lead", {"Company": "Engines", "LastName": None}, ["LastName"]),
        ("Account", {}, ["Name"]),
        ("Contact", {"FirstName": "Grace"}, ["LastName"]),
    ],
)
def test_required_fields_missing_lists_every_missing_field(raw: Raw, sobject: str, body: dict, missing: list):
    assert _refused(raw, body, sobject) == [
        {
            "message": f"Required fields are missing: [{', '.join(missing)}]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": missing,
        }
    ]


def test_unknown_field_is_invalid_field(raw: Raw):
    assert _refused(raw, {**LEAD, "Shoe_Size__c": 42}) == [
        {"message": "No such column 'Shoe_Size__c' on sobject of type Lead", "errorCode": "INVALID_FIELD"}
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [("IsConverted", True), ("Name", "Ada Lovelace"), ("CreatedDate", "2020-01-01T00:00:00Z")],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_fields_that_cannot_be_written_are_refused(raw: Raw, sf: Salesforce, method: str, name: str, value):
    path = "sobjects/Lead/" if method == "POST" else f"sobjects/Lead/{sf.Lead.create(LEAD)['id']}"

    response = raw(method, path, json={**LEAD, name: value})

    assert response.status_code == 400
    assert response.json() == [
        {
            "message": f"Unable to create/update fields: {name}. Please check the security settings of this "
            "field and verify that it is read/write for your profile or permission set.",
            "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
            "fields": [name],
        }
    ]


@pytest.mark.parametrize(
    ("field", "value", "token"),
    [
        ("NumberOfEmployees", "many", "Cannot deserialize instance of int from VALUE_STRING value many"),
        ("NumberOfEmployees", 1.5, "Cannot deserialize instance of int from VALUE_NUMBER_FLOAT value 1.5"),
        ("HasOptedOutOfEmail", "yes", "Cannot deserialize instance of boolean from VALUE_STRING value yes"),
        ("FirstName", ["Ada"], "Cannot deserialize instance of string from START_ARRAY value ["),
    ],
)
def test_wrong_json_types_are_json_parser_errors(raw: Raw, field: str, value: object, token: str):
    [error] = _refused(raw, {**LEAD, field: value})

    assert error["errorCode"] == "JSON_PARSER_ERROR"
    assert error["message"].startswith(token)
    assert "fields" not in error


def test_invalid_email_address(raw: Raw):
    assert _refused(raw, {**LEAD, "Email": "not-an-email"}) == [
        {
            "message": "Email: invalid email address: not-an-email",
            "errorCode": "INVALID_EMAIL_ADDRESS",
            "fields": ["Email"],
        }
    ]


def test_number_outside_valid_range_uses_the_label(raw: Raw):
    assert _refused(raw, {**LEAD, "NumberOfEmployees": 123456789}) == [
        {
            "message": "Employees: value outside of valid range on numeric field: 123456789",
            "errorCode": "NUMBER_OUTSIDE_VALID_RANGE",
            "fields": ["NumberOfEmployees"],
        }
    ]


def test_a_converted_lead_cannot_be_updated(emu, raw: Raw):
    record_id = emu.admin("POST", "records/Lead", {**LEAD, "IsConverted": True})["id"]

    response = raw("PATCH", f"sobjects/Lead/{record_id}", json={"Title": "x"})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_simple_salesforce_raises_malformed_request_with_the_body(sf: Salesforce):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"FirstName": "Ada"})

    assert caught.value.status == 400
    assert caught.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{bad", "Expecting property name enclosed in double quotes at [line:1, column:2]"),
        ("", "No content to map due to end-of-input at [line:1, column:0]"),
        ("[1]", "Cannot deserialize SObject out of START_ARRAY token at [line:1, column:1]"),
    ],
)
def test_malformed_json_is_json_parser_error(raw: Raw, data: str, message: str):
    response = raw("POST", "sobjects/Lead/", data=data, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json() == [{"message": message, "errorCode": "JSON_PARSER_ERROR"}]
