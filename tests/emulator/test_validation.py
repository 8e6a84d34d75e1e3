"""Tests of Salesforce's create/update checks: each error code, its message and the stored value forms."""

import pytest

from emulator.config import CustomField, OrgConfig
from emulator.validation import sf_length, validate

CONFIG = OrgConfig(
    custom_fields={
        "Lead": (
            CustomField("Tier__c", "picklist", values=("Gold", "Silver"), restricted=True),
            CustomField("Color__c", "picklist", values=("Red",)),
            CustomField("Score__c", "number", precision=5, scale=2),
            CustomField("Ext__c", "external_id", length=10),
            CustomField("Active__c", "boolean"),
            CustomField("Seen__c", "datetime"),
            CustomField("Born__c", "date"),
            CustomField("Count__c", "int", precision=3),
            CustomField("Must__c", "string", required=True),
        ),
    }
)


@pytest.fixture(scope="module")
def objects():
    from emulator.objects import build_objects

    return build_objects(CONFIG)


LEAD = {"LastName": "Smith", "Company": "Acme", "Must__c": "x"}
UNWRITABLE = (
    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it "
    "is read/write for your profile or permission set."
)


def err(code, message, fields=()):
    return {"statusCode": code, "message": message, "fields": list(fields)}


def parser_error(type_name, token, shown, column):
    return err(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {type_name} from {token} value {shown} or request may be missing a "
        f"required field at [line:1, column:{column}]",
    )


@pytest.mark.parametrize(
    ("sobject", "body", "for_create", "errors"),
    [
        # unknown fields: the whole body is refused at the first one
        (
            "Lead",
            {**LEAD, "Foo__c": 1},
            True,
            [err("INVALID_FIELD", "No such column 'Foo__c' on sobject of type Lead")],
        ),
        (
            "Account",
            {"Bogus": 1, "Other": 2},
            False,
            [err("INVALID_FIELD", "No such column 'Bogus' on sobject of type Account")],
        ),
        (
            "Lead",
            {**LEAD, "Id": "00Q8c0000000001EAA"},
            True,
            [err("INVALID_FIELD", "The Id field should not be specified in the sobject data.")],
        ),
        (
            "Lead",
            {**LEAD, "id": None},
            True,
            [err("INVALID_FIELD", "The Id field should not be specified in the sobject data.")],
        ),
        # read-only fields
        (
            "Lead",
            {**LEAD, "IsConverted": True, "CreatedDate": "2026-01-01T00:00:00Z"},
            True,
            [
                err(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    UNWRITABLE.format("IsConverted, CreatedDate"),
                    ["IsConverted", "CreatedDate"],
                )
            ],
        ),
        (
            "Lead",
            {"name": "Full Name"},
            False,
            [err("INVALID_FIELD_FOR_INSERT_UPDATE", UNWRITABLE.format("Name"), ["Name"])],
        ),
        (
            "Case",
            {"CaseNumber": "1"},
            True,  # autonumber
            [err("INVALID_FIELD_FOR_INSERT_UPDATE", UNWRITABLE.format("CaseNumber"), ["CaseNumber"])],
        ),
        (
            "Opportunity",
            {"ExpectedRevenue": 1},
            False,  # formula
            [
                err(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    UNWRITABLE.format("ExpectedRevenue"),
                    ["ExpectedRevenue"],
                )
            ],
        ),
        # required fields
        (
            "Lead",
            {"Must__c": "x"},
            True,
            [
                err(
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [LastName, Company]",
                    ["LastName", "Company"],
                )
            ],
        ),
        (
            "Lead",
            {"LastName": None, "Company": "", "Must__c": "x"},
            True,
            [
                err(
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [LastName, Company]",
                    ["LastName", "Company"],
                )
            ],
        ),
        (
            "Account",
            {},
            True,
            [err("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"])],
        ),
        (
            "Contact",
            {"FirstName": "Ann"},
            True,
            [err("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"])],
        ),
        (
            "Opportunity",
            {"Amount": 5},
            True,
            [
                err(
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [Name, StageName, CloseDate]",
                    ["Name", "StageName", "CloseDate"],
                )
            ],
        ),
        (
            "Lead",
            {"Company": None},
            False,
            [err("REQUIRED_FIELD_MISSING", "Required fields are missing: [Company]", ["Company"])],
        ),
        (
            "Lead",
            {"Status": None},
            False,  # defaulted on create, but never blank
            [err("REQUIRED_FIELD_MISSING", "Required fields are missing: [Status]", ["Status"])],
        ),
        # lengths: label in the message, API name in fields
        (
            "Lead",
            {"LastName": "x" * 81},
            False,
            [
                err(
                    "STRING_TOO_LONG",
                    f"Last Name: data value too large: {'x' * 81} (max length=80)",
                    ["LastName"],
                )
            ],
        ),
        (
            "Account",
            {"Name": "A", "BillingPostalCode": "123456789012345678901"},
            True,
            [
                err(
                    "STRING_TOO_LONG",
                    "Billing Zip/Postal Code: data value too large: 123456789012345678901 (max length=20)",
                    ["BillingPostalCode"],
                )
            ],
        ),
        (
            "Lead",
            {"ext__c": "12345678901"},
            False,
            [err("STRING_TOO_LONG", "Ext: data value too large: 12345678901 (max length=10)", ["Ext__c"])],
        ),
        (
            "Lead",
            {"FirstName": "😀" * 21},
            False,  # UTF-16 units: 42 > 40
            [
                err(
                    "STRING_TOO_LONG",
                    f"First Name: data value too large: {'😀' * 21} (max length=40)",
                    ["FirstName"],
                )
            ],
        ),
        # several value errors are reported together
        (
            "Lead",
            {"Title": "t" * 129, "Email": "nope"},
            False,
            [
                err(
                    "STRING_TOO_LONG", f"Title: data value too large: {'t' * 129} (max length=128)", ["Title"]
                ),
                err("INVALID_EMAIL_ADDRESS", "Email: invalid email address: nope", ["Email"]),
            ],
        ),
        (
            "Lead",
            {"Must__c": "x", "Title": "t" * 129},
            True,
            [
                err(
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [LastName, Company]",
                    ["LastName", "Company"],
                ),
                err(
                    "STRING_TOO_LONG", f"Title: data value too large: {'t' * 129} (max length=128)", ["Title"]
                ),
            ],
        ),
        # emails
        (
            "Contact",
            {"Email": "a@b"},
            False,
            [err("INVALID_EMAIL_ADDRESS", "Email: invalid email address: a@b", ["Email"])],
        ),
        (
            "Case",
            {"SuppliedEmail": "x y@z.com"},
            False,
            [err("INVALID_EMAIL_ADDRESS", "Web Email: invalid email address: x y@z.com", ["SuppliedEmail"])],
        ),
        # numbers
        (
            "Lead",
            {"NumberOfEmployees": 100_000_000},
            False,
            [
                err(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    "Employees: value outside of valid range on numeric field: 100000000",
                    ["NumberOfEmployees"],
                )
            ],
        ),
        (
            "Account",
            {"NumberOfEmployees": "-123456789"},
            False,
            [
                err(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    "Employees: value outside of valid range on numeric field: -123456789",
                    ["NumberOfEmployees"],
                )
            ],
        ),
        (
            "Lead",
            {"Score__c": 1000.0},
            False,  # precision 5, scale 2: three integer digits
            [
                err(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    "Score: value outside of valid range on numeric field: 1000",
                    ["Score__c"],
                )
            ],
        ),
        (
            "Lead",
            {"Count__c": 1000},
            False,
            [
                err(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    "Count: value outside of valid range on numeric field: 1000",
                    ["Count__c"],
                )
            ],
        ),
        # picklists: only restricted ones refuse unknown values
        (
            "Lead",
            {"Tier__c": "Bronze"},
            False,
            [
                err(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    "Tier: bad value for restricted picklist field: Bronze",
                    ["Tier__c"],
                )
            ],
        ),
        (
            "Lead",
            {"Tier__c": "gold"},
            False,
            [
                err(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    "Tier: bad value for restricted picklist field: gold",
                    ["Tier__c"],
                )
            ],
        ),
        # references
        (
            "Contact",
            {"AccountId": "not-an-id"},
            False,
            [err("MALFORMED_ID", "Account ID: id value of incorrect type: not-an-id", ["AccountId"])],
        ),
        (
            "Contact",
            {"AccountId": "00Q8c0000000001EAA"},
            False,
            [
                err(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "Account ID: id value of incorrect type: 00Q8c0000000001EAA",
                    ["AccountId"],
                )
            ],
        ),
        # values that cannot be deserialized into the field's type
        (
            "Lead",
            {"LastName": "X", "NumberOfEmployees": "abc"},
            False,
            [parser_error("int", "VALUE_STRING", "abc", 42)],
        ),
        ("Lead", {"AnnualRevenue": "12a"}, False, [parser_error("double", "VALUE_STRING", "12a", 23)]),
        ("Lead", {"AnnualRevenue": True}, False, [parser_error("double", "VALUE_TRUE", "true", 22)]),
        ("Lead", {"NumberOfEmployees": 4.5}, False, [parser_error("int", "VALUE_NUMBER_FLOAT", "4.5", 25)]),
        ("Lead", {"HasOptedOutOfEmail": "yes"}, False, [parser_error("boolean", "VALUE_STRING", "yes", 28)]),
        ("Lead", {"HasOptedOutOfEmail": 1}, False, [parser_error("boolean", "VALUE_NUMBER_INT", "1", 24)]),
        ("Lead", {"Born__c": "28/11/2026"}, False, [parser_error("date", "VALUE_STRING", "28/11/2026", 24)]),
        ("Lead", {"Born__c": "2026-02-30"}, False, [parser_error("date", "VALUE_STRING", "2026-02-30", 24)]),
        (
            "Lead",
            {"Seen__c": "yesterday"},
            False,
            [parser_error("datetime", "VALUE_STRING", "yesterday", 23)],
        ),
        (
            "Lead",
            {"Seen__c": 1700000000},
            False,
            [parser_error("datetime", "VALUE_NUMBER_INT", "1700000000", 22)],
        ),
        ("Lead", {"Title": {"a": 1}}, False, [parser_error("string", "START_OBJECT", "{", 10)]),
        ("Lead", {"Title": ["a"]}, False, [parser_error("string", "START_ARRAY", "[", 10)]),
        # nothing wrong
        ("Lead", LEAD, True, []),
        ("Lead", {}, False, []),
        ("Case", {}, True, []),
        ("Lead", {"Id": "00Q8c0000000001EAA", "Title": "CEO"}, False, []),  # update: Id comes from the URL
        ("Lead", {"attributes": {"type": "Lead"}, "Color__c": "Purple"}, False, []),
    ],
)
def test_errors(objects, sobject, body, for_create, errors):
    _, got = validate(objects[sobject], body, for_create=for_create)
    assert got == errors


@pytest.mark.parametrize(
    ("body", "values"),
    [
        (
            {"lastname": "Smith", "EMAIL": "a@b.co"},
            {"LastName": "Smith", "Email": "a@b.co"},
        ),  # canonical casing
        ({"NumberOfEmployees": "4"}, {"NumberOfEmployees": 4}),  # numeric strings are accepted
        ({"NumberOfEmployees": 4.0}, {"NumberOfEmployees": 4}),
        ({"AnnualRevenue": "1234.5"}, {"AnnualRevenue": 1235.0}),  # currency scale 0: rounded half up
        ({"Score__c": 1.005}, {"Score__c": 1.01}),
        ({"Score__c": "-2"}, {"Score__c": -2.0}),
        ({"Title": 42}, {"Title": "42"}),  # JSON numbers and booleans are accepted by text fields
        ({"Title": True}, {"Title": "true"}),
        ({"Title": ""}, {"Title": None}),  # an empty string is stored as null
        ({"Title": None}, {"Title": None}),
        ({"HasOptedOutOfEmail": "TRUE"}, {"HasOptedOutOfEmail": True}),
        ({"HasOptedOutOfEmail": None}, {"HasOptedOutOfEmail": False}),  # checkboxes are never null
        ({"Born__c": "2026-11-28"}, {"Born__c": "2026-11-28"}),
        ({"Born__c": "2026-11-28T23:30:00Z"}, {"Born__c": "2026-11-28"}),
        ({"Seen__c": "2026-11-28T18:00:00Z"}, {"Seen__c": "2026-11-28T18:00:00.000+0000"}),
        # Salesforce stores datetimes to the second: the milliseconds sent are dropped.
        ({"Seen__c": "2026-11-28T19:30:05.123+01:30"}, {"Seen__c": "2026-11-28T18:00:05.000+0000"}),
        ({"Seen__c": "2026-11-28T18:00:00.5-0100"}, {"Seen__c": "2026-11-28T19:00:00.000+0000"}),
        ({"Seen__c": "2026-11-28"}, {"Seen__c": "2026-11-28T00:00:00.000+0000"}),
        ({"Color__c": "Purple", "Tier__c": "Gold"}, {"Color__c": "Purple", "Tier__c": "Gold"}),
        ({"Industry": "Space Mining"}, {"Industry": "Space Mining"}),  # standard picklists are not restricted
        ({"OwnerId": "005000000000001"}, {"OwnerId": "005000000000001AAA"}),
    ],
)
def test_values(objects, body, values):
    got, errors = validate(objects["Lead"], body, for_create=False)
    assert errors == []
    assert got == values


def test_admin_may_write_read_only_fields_and_skip_required(objects):
    body = {"IsConverted": True, "CreatedDate": "2026-01-02T03:04:05Z", "Id": "00Q8c0000000001EAA"}
    got, errors = validate(objects["Lead"], body, for_create=True, admin=True)
    assert errors == []
    assert got == {"IsConverted": True, "CreatedDate": "2026-01-02T03:04:05.000+0000"}


@pytest.mark.parametrize(("text", "length"), [("abc", 3), ("é", 1), ("😀", 2), ("", 0)])
def test_sf_length(text, length):
    assert sf_length(text) == length


@pytest.mark.parametrize("value", ["1e30", 1e30, "-" + "9" * 40, 1e300])
def test_a_number_of_more_digits_than_decimal_holds_is_out_of_range(objects, value):
    # Rounding such a number to the field's scale raised decimal.InvalidOperation (a 500).
    _, errors = validate(objects["Lead"], {"Score__c": value}, for_create=False)
    assert [(e["statusCode"], e["fields"]) for e in errors] == [("NUMBER_OUTSIDE_VALID_RANGE", ["Score__c"])]
