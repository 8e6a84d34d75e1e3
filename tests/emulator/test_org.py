"""Tests of the org's records: DML, ids, audit fields, upsert, transactions, queries, describe, restarts."""

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from emulator.config import CustomField, OrgConfig
from emulator.errors import ApiError, MultipleChoicesError, RecordError
from emulator.org import Org

CONFIG = OrgConfig(
    custom_fields={
        "Lead": (
            CustomField("Ext__c", "external_id"),
            CustomField("Code__c", "external_id", unique=True),
            CustomField("Tier__c", "picklist", values=("Gold", "Silver"), restricted=True),
            CustomField("Plain__c", "string", unique=True),
        ),
        "account": (CustomField("Ref__c", "external_id"),),
    }
)
V = "59.0"
USER = "005000000000001AAA"
LEAD = {"LastName": "Smith", "Company": "Acme"}
T0 = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


class Clock:
    """A clock the tests move by hand."""

    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def org(tmp_path, clock):
    return Org(tmp_path / "org" / "org.db", CONFIG, clock=clock)


def api_error(exc):
    return (exc.status, exc.error_code, exc.message, exc.fields)


# --- create / get ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sobject", "body", "prefix"),
    [
        ("Lead", LEAD, "00Q"),
        ("Account", {"Name": "Acme"}, "001"),
        ("Contact", {"LastName": "Smith"}, "003"),
        ("Case", {"Subject": "Broken"}, "500"),
        ("Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-12-31"}, "006"),
        ("lead", LEAD, "00Q"),  # object names are case-insensitive
    ],
)
def test_create_gives_an_18_char_id_with_the_key_prefix(org, sobject, body, prefix):
    record_id = org.create(sobject, body)
    assert len(record_id) == 18
    assert record_id.startswith(prefix)
    assert org.sobject_of_id(record_id) == org.canonical_sobject(sobject)


def test_create_sets_defaults_and_audit_fields(org):
    record_id = org.create("Lead", {"attributes": {"type": "Lead"}, "FirstName": "Ann", **LEAD})
    record = org.get("Lead", record_id, None, V)
    stamp = "2026-11-28T18:00:00.000+0000"
    assert record["attributes"] == {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{record_id}"}
    expected = {
        "Id": record_id,
        "IsDeleted": False,
        "Status": "Open - Not Contacted",
        "IsConverted": False,
        "HasOptedOutOfEmail": False,
        "Name": "Ann Smith",
        "OwnerId": USER,
        "CreatedById": USER,
        "LastModifiedById": USER,
        "CreatedDate": stamp,
        "LastModifiedDate": stamp,
        "SystemModstamp": stamp,
        "Email": None,
        "Address": None,
    }
    assert {k: record[k] for k in expected} == expected
    assert set(record) == {"attributes"} | {f["name"] for f in org.describe("Lead", V)["fields"]}


def test_get_selected_fields_and_id_forms(org):
    record_id = org.create("Lead", {**LEAD, "Email": "a@example.com"})
    want = {
        "attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{record_id}"},
        "Email": "a@example.com",
        "Company": "Acme",
        "Id": record_id,
    }
    assert org.get("Lead", record_id, ["email", "Company"], V) == want
    assert org.get("LEAD", record_id[:15], ["Email", "Company"], V) == want
    assert org.get("Lead", record_id.lower(), ["Email", "Company"], V) == want


@pytest.mark.parametrize(
    ("record_id", "fields", "expected"),
    [
        (
            "nope",
            None,
            (404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: nope", None),
        ),
        ("00Q8c000000zzzzEAA", None, (404, "NOT_FOUND", "The requested resource does not exist", None)),
        ("0018c0000000001AAA", None, (404, "NOT_FOUND", "The requested resource does not exist", None)),
        (
            None,
            ["Email", "Foo"],
            (
                400,
                "INVALID_FIELD",
                "No such column 'Foo' on entity 'Lead'. If you are attempting to use a custom field, be sure "
                "to append the '__c' after the custom field name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
                None,
            ),
        ),
    ],
)
def test_get_errors(org, record_id, fields, expected):
    existing = org.create("Lead", LEAD)
    with pytest.raises(ApiError) as exc:
        org.get("Lead", record_id or existing, fields, V)
    assert api_error(exc.value) == expected


def test_create_validation_error(org):
    with pytest.raises(RecordError) as exc:
        org.create("Lead", {"Title": "x" * 129})
    assert exc.value.errors == [
        {
            "statusCode": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [LastName, Company]",
            "fields": ["LastName", "Company"],
        },
        {
            "statusCode": "STRING_TOO_LONG",
            "message": f"Title: data value too large: {'x' * 129} (max length=128)",
            "fields": ["Title"],
        },
    ]
    assert api_error(exc.value) == (
        400,
        "REQUIRED_FIELD_MISSING",
        "Required fields are missing: [LastName, Company]",
        ["LastName", "Company"],
    )
    assert exc.value.to_body()[1] == {
        "message": f"Title: data value too large: {'x' * 129} (max length=128)",
        "errorCode": "STRING_TOO_LONG",
        "fields": ["Title"],
    }
    assert org.records("Lead") == []


@pytest.mark.parametrize(
    ("sobject", "body", "code", "message", "fields"),
    [
        (
            "Lead",
            {**LEAD, "Tier__c": "Bronze"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "Tier: bad value for restricted picklist field: Bronze",
            ["Tier__c"],
        ),
        (
            "Lead",
            {**LEAD, "IsConverted": True},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "Unable to create/update fields: IsConverted. Please check the security settings of this field "
            "and verify that it is read/write for your profile or permission set.",
            ["IsConverted"],
        ),
        (
            "Lead",
            {**LEAD, "NumberOfEmployees": 123456789},
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Employees: value outside of valid range on numeric field: 123456789",
            ["NumberOfEmployees"],
        ),
        (
            "Lead",
            {**LEAD, "Email": "x"},
            "INVALID_EMAIL_ADDRESS",
            "Email: invalid email address: x",
            ["Email"],
        ),
        (
            "Contact",
            {"LastName": "S", "AccountId": "0018c0000000999AAA"},
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            ["AccountId"],
        ),
        (
            "Contact",
            {"LastName": "S", "OwnerId": "005000000000002AAA"},
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            ["OwnerId"],
        ),
        (
            "Contact",
            {"LastName": "S", "AccountId": "00Q8c0000000001EAA"},
            "FIELD_INTEGRITY_EXCEPTION",
            "Account ID: id value of incorrect type: 00Q8c0000000001EAA",
            ["AccountId"],
        ),
        (
            "Contact",
            {"LastName": "S", "AccountId": "bad"},
            "MALFORMED_ID",
            "Account ID: id value of incorrect type: bad",
            ["AccountId"],
        ),
    ],
)
def test_create_errors(org, sobject, body, code, message, fields):
    with pytest.raises(RecordError) as exc:
        org.create(sobject, body)
    assert exc.value.errors == [{"statusCode": code, "message": message, "fields": fields}]
    assert org.records(sobject) == []


@pytest.mark.parametrize(
    ("operation", "body", "code", "message"),
    [
        (
            "create",
            {**LEAD, "Id": "00Q8c0000000001EAA"},
            "INVALID_FIELD",
            "The Id field should not be specified in the sobject data.",
        ),
        (
            "create",
            {**LEAD, "Foo__c": "x"},
            "INVALID_FIELD",
            "No such column 'Foo__c' on sobject of type Lead",
        ),
        ("update", {"foo__c": 1}, "INVALID_FIELD", "No such column 'foo__c' on sobject of type Lead"),
        (
            "upsert",
            {**LEAD, "Foo__c": "x"},
            "INVALID_FIELD",
            "No such column 'Foo__c' on sobject of type Lead",
        ),
        (
            "create",
            {**LEAD, "AnnualRevenue": "abc"},
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of double from VALUE_STRING value abc or request may be missing a "
            "required field at [line:1, column:59]",
        ),
        (
            "update",
            {"AnnualRevenue": "abc"},
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of double from VALUE_STRING value abc or request may be missing a "
            "required field at [line:1, column:23]",
        ),
    ],
)
def test_bodies_refused_while_read_are_plain_api_errors(org, operation, body, code, message):
    # Salesforce refuses these while deserializing the body, before any DML: its error has no "fields".
    record_id = org.create("Lead", LEAD)
    calls = {
        "create": lambda: org.create("Lead", body),
        "update": lambda: org.update("Lead", record_id, body),
        "upsert": lambda: org.upsert("Lead", "Ext__c", "new", body),
    }
    with pytest.raises(ApiError) as exc:
        calls[operation]()
    assert type(exc.value) is ApiError
    assert exc.value.to_body() == [{"message": message, "errorCode": code}]
    assert exc.value.status == 400
    assert len(org.records("Lead")) == 1


def test_references_to_live_records_are_accepted(org):
    account = org.create("Account", {"Name": "Acme"})
    contact = org.create("Contact", {"LastName": "S", "AccountId": account[:15], "OwnerId": USER})
    assert org.get("Contact", contact, ["AccountId"], V)["AccountId"] == account
    org.delete("Account", account)
    with pytest.raises(RecordError) as exc:
        org.update("Contact", contact, {"AccountId": account})
    assert exc.value.error_code == "INVALID_CROSS_REFERENCE_KEY"


def test_unknown_object(org):
    for call in (
        lambda: org.create("Foo", {}),
        lambda: org.describe("Foo", V),
        lambda: org.records("Foo"),
        lambda: org.canonical_sobject("Foo"),
    ):
        with pytest.raises(ApiError) as exc:
            call()
        assert api_error(exc.value) == (404, "NOT_FOUND", "The requested resource does not exist", None)
        assert exc.value.to_body() == [
            {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
        ]


@pytest.mark.parametrize("record_id", ["abc", "0058c0000000001AAA", "001D000000IqhSLIA9"])
def test_sobject_of_id_malformed(org, record_id):
    with pytest.raises(ApiError) as exc:
        org.sobject_of_id(record_id)
    assert api_error(exc.value) == (400, "MALFORMED_ID", f"malformed id {record_id}", None)


# --- update / delete ------------------------------------------------------------------------------


def test_update_changes_fields_and_audit(org, clock):
    record_id = org.create("Lead", {**LEAD, "Title": "CTO", "Email": "a@example.com"})
    clock.now = T0 + timedelta(seconds=5, milliseconds=250)
    org.update("Lead", record_id, {"title": "CEO", "Email": None, "Id": record_id})
    record = org.get(
        "Lead", record_id, ["Title", "Email", "CreatedDate", "LastModifiedDate", "SystemModstamp"], V
    )
    assert {k: v for k, v in record.items() if k != "attributes"} == {
        "Title": "CEO",
        "Email": None,
        "CreatedDate": "2026-11-28T18:00:00.000+0000",
        "LastModifiedDate": "2026-11-28T18:00:05.000+0000",  # stored to the second, as Salesforce does
        "SystemModstamp": "2026-11-28T18:00:05.000+0000",
        "Id": record_id,
    }


def test_audit_dates_never_go_backwards(org, clock):
    record_id = org.create("Lead", LEAD)
    clock.now = T0 - timedelta(hours=1)
    org.update("Lead", record_id, {"Title": "x"})
    assert (
        org.get("Lead", record_id, ["LastModifiedDate"], V)["LastModifiedDate"]
        == "2026-11-28T18:00:00.000+0000"
    )


@pytest.mark.parametrize(
    ("moves", "expected"),
    [
        # The stamp is formatted once per second of the clock: moves within a second keep it, the next
        # second (in any time zone) gives a new one.
        ([timedelta(milliseconds=400), timedelta(milliseconds=999)], "2026-11-28T18:00:00.000+0000"),
        ([timedelta(milliseconds=400), timedelta(seconds=1)], "2026-11-28T18:00:01.000+0000"),
        ([timedelta(seconds=61, microseconds=5)], "2026-11-28T18:01:01.000+0000"),
    ],
)
def test_audit_stamps_follow_the_clock_to_the_second(org, clock, moves, expected):
    for move in moves:
        clock.now = T0 + move
        record_id = org.create("Lead", LEAD)
    assert org.get("Lead", record_id, ["CreatedDate"], V)["CreatedDate"] == expected


def test_audit_stamps_are_utc_whatever_the_clock_zone(org, clock):
    org.create("Lead", LEAD)
    clock.now = datetime(2026, 11, 28, 20, 0, 1, tzinfo=timezone(timedelta(hours=2)))  # 18:00:01 UTC
    record_id = org.create("Lead", LEAD)
    assert org.get("Lead", record_id, ["CreatedDate"], V)["CreatedDate"] == "2026-11-28T18:00:01.000+0000"


@pytest.mark.parametrize(
    ("body", "code", "message", "fields"),
    [
        (
            {"LastName": None},
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [LastName]",
            ["LastName"],
        ),
        (
            {"LastName": "x" * 81},
            "STRING_TOO_LONG",
            f"Last Name: data value too large: {'x' * 81} (max length=80)",
            ["LastName"],
        ),
        (
            {"CreatedDate": "2026-01-01"},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "Unable to create/update fields: CreatedDate. Please check the security settings of this field "
            "and verify that it is read/write for your profile or permission set.",
            ["CreatedDate"],
        ),
    ],
)
def test_update_errors_leave_the_record_alone(org, body, code, message, fields):
    record_id = org.create("Lead", LEAD)
    before = org.get("Lead", record_id, None, V)
    with pytest.raises(RecordError) as exc:
        org.update("Lead", record_id, body)
    assert exc.value.errors == [{"statusCode": code, "message": message, "fields": fields}]
    assert org.get("Lead", record_id, None, V) == before


def test_converted_lead_cannot_be_updated(org):
    record_id = org.seed("Lead", {**LEAD, "IsConverted": True, "ConvertedDate": "2026-11-01"})
    assert org.get("Lead", record_id, ["IsConverted", "ConvertedDate"], V)["IsConverted"] is True
    with pytest.raises(RecordError) as exc:
        org.update("Lead", record_id, {"Title": "x"})
    assert api_error(exc.value) == (
        400,
        "CANNOT_UPDATE_CONVERTED_LEAD",
        "cannot reference converted lead",
        [],
    )
    assert exc.value.to_body() == [
        {
            "message": "cannot reference converted lead",
            "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD",
            "fields": [],
        }
    ]


def test_seed_keeps_given_audit_fields(org):
    record_id = org.seed("Lead", {**LEAD, "LastModifiedDate": "2025-01-01T00:00:00Z"})
    record = org.get("Lead", record_id, ["LastModifiedDate", "CreatedDate"], V)
    assert (record["LastModifiedDate"], record["CreatedDate"]) == (
        "2025-01-01T00:00:00.000+0000",
        "2026-11-28T18:00:00.000+0000",
    )


def test_delete_is_soft(org, clock):
    keep = org.create("Lead", {**LEAD, "LastName": "Keep"})
    gone = org.create("Lead", {**LEAD, "LastName": "Gone"})
    clock.now = T0 + timedelta(minutes=1)
    org.delete("Lead", gone)
    assert [r["Id"] for r in org.records("Lead")] == [keep]
    assert org.query("SELECT Id FROM Lead", False, V) == [
        {"attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{keep}"}, "Id": keep}
    ]
    assert org.query("SELECT LastName, IsDeleted, LastModifiedDate FROM Lead ORDER BY LastName", True, V) == [
        {
            "attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{gone}"},
            "LastName": "Gone",
            "IsDeleted": True,
            "LastModifiedDate": "2026-11-28T18:01:00.000+0000",
        },
        {
            "attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{keep}"},
            "LastName": "Keep",
            "IsDeleted": False,
            "LastModifiedDate": "2026-11-28T18:00:00.000+0000",
        },
    ]


@pytest.mark.parametrize(
    ("operation", "target", "expected"),
    [
        ("delete", "deleted", (404, "ENTITY_IS_DELETED", "entity is deleted", [])),
        ("update", "deleted", (404, "ENTITY_IS_DELETED", "entity is deleted", [])),
        ("get", "deleted", (404, "ENTITY_IS_DELETED", "entity is deleted", [])),
        ("delete", "00Q8c000000zzzzEAA", (404, "NOT_FOUND", "The requested resource does not exist", None)),
        ("update", "00Q8c000000zzzzEAA", (404, "NOT_FOUND", "The requested resource does not exist", None)),
        ("delete", "x1", (400, "MALFORMED_ID", "malformed id x1", None)),
        ("update", "x1", (400, "MALFORMED_ID", "malformed id x1", None)),
    ],
)
def test_missing_records(org, operation, target, expected):
    deleted = org.create("Lead", LEAD)
    org.delete("Lead", deleted)
    record_id = deleted if target == "deleted" else target
    calls = {
        "delete": lambda: org.delete("Lead", record_id),
        "update": lambda: org.update("Lead", record_id, {"Title": "x"}),
        "get": lambda: org.get("Lead", record_id, None, V),
    }
    with pytest.raises(ApiError) as exc:
        calls[operation]()
    assert api_error(exc.value) == expected


# --- upsert and unique values ---------------------------------------------------------------------


def test_upsert_creates_then_updates(org):
    record_id, created = org.upsert("Lead", "ext__c", "K-1", {**LEAD, "Title": "A"})
    assert created is True
    assert org.get("Lead", record_id, ["Ext__c", "Title"], V)["Ext__c"] == "K-1"
    again, created = org.upsert("Lead", "Ext__c", "k-1", {"Title": "B", "Ext__c": "k-1"})  # case-insensitive
    assert (again, created) == (record_id, False)
    assert org.get("Lead", record_id, ["Ext__c", "Title"], V)["Title"] == "B"
    assert len(org.records("Lead")) == 1


def test_upsert_several_matches_is_300(org):
    first = org.create("Lead", {**LEAD, "Ext__c": "dup"})
    second = org.create("Lead", {**LEAD, "Ext__c": "DUP"})
    with pytest.raises(MultipleChoicesError) as exc:
        org.upsert("Lead", "Ext__c", "Dup", {"Title": "x"}, version="62.0")
    assert exc.value.status == 300
    assert exc.value.error_code == "MULTIPLE_CHOICES"
    assert exc.value.to_body() == sorted(
        [f"/services/data/v62.0/sobjects/Lead/{first}", f"/services/data/v62.0/sobjects/Lead/{second}"]
    )


def test_upsert_ignores_deleted_matches(org):
    old = org.create("Lead", {**LEAD, "Ext__c": "k"})
    org.delete("Lead", old)
    record_id, created = org.upsert("Lead", "Ext__c", "k", LEAD)
    assert created is True
    assert record_id != old


def test_upsert_by_id(org):
    record_id, created = org.upsert("Lead", "Id", "", LEAD)
    assert created is True
    assert org.upsert("Lead", "Id", record_id[:15], {"Title": "x"}) == (record_id, False)


@pytest.mark.parametrize("field", ["Nope__c", "Title", "Company"])
def test_upsert_on_a_field_that_is_not_an_external_id(org, field):
    with pytest.raises(ApiError) as exc:
        org.upsert("Lead", field, "x", LEAD)
    assert api_error(exc.value) == (404, "NOT_FOUND", "The requested resource does not exist", None)


def test_upsert_by_an_idlookup_standard_field(org):
    # Lead.Email is no External ID field, but standard fields with idLookup serve as upsert keys.
    record_id, created = org.upsert("Lead", "Email", "Peter@Example.com", {"LastName": "G", "Company": "I"})
    assert created is True
    assert org.get("Lead", record_id, ["Email"], V)["Email"] == "Peter@Example.com"
    assert org.upsert("Lead", "email", "peter@example.com", {"Title": "VP"}) == (record_id, False)
    assert org.get("Lead", record_id, ["Title"], V)["Title"] == "VP"


def test_upsert_validation_errors(org):
    with pytest.raises(RecordError) as exc:
        org.upsert("Lead", "Ext__c", "new", {"LastName": "S"})
    assert exc.value.error_code == "REQUIRED_FIELD_MISSING"


@pytest.mark.parametrize("field", ["Code__c", "Plain__c"])
def test_unique_fields_refuse_duplicates(org, field):
    first = org.create("Lead", {**LEAD, field: "u-1"})
    other = org.create("Lead", {**LEAD, field: "u-2"})
    expected = [
        {
            "statusCode": "DUPLICATE_VALUE",
            "message": f"duplicate value found: {field} duplicates value on record with id: {first}",
            "fields": [],
        }
    ]
    with pytest.raises(RecordError) as exc:
        org.create("Lead", {**LEAD, field: "U-1"})
    assert exc.value.errors == expected
    with pytest.raises(RecordError) as exc:
        org.update("Lead", other, {field: "u-1"})
    assert exc.value.errors == expected
    org.update("Lead", first, {field: "u-1", "Title": "same record, same value"})
    org.delete("Lead", first)
    org.update("Lead", other, {field: "u-1"})  # a deleted record no longer holds the value


# --- transactions and persistence -----------------------------------------------------------------


def test_transaction_commits(org):
    with org.transaction():
        a = org.create("Lead", LEAD)
        b = org.create("Lead", LEAD)
    assert {r["Id"] for r in org.records("Lead")} == {a, b}


def test_transaction_rolls_back_db_and_cache(org, tmp_path, clock):
    kept = org.create("Lead", {**LEAD, "Title": "before", "Code__c": "c1"})
    with pytest.raises(RecordError), org.transaction():
        org.update("Lead", kept, {"Title": "during", "Code__c": "c2"})
        org.create("Lead", {**LEAD, "Code__c": "c3"})
        org.delete("Lead", kept)
        org.create("Lead", {"LastName": "no company"})
    assert [(r["Id"], r["Title"]) for r in org.records("Lead")] == [(kept, "before")]
    # the unique index was rolled back too: c1 is still taken, c2 and c3 are free
    org.create("Lead", {**LEAD, "Code__c": "c2"})
    org.create("Lead", {**LEAD, "Code__c": "c3"})
    with pytest.raises(RecordError):
        org.create("Lead", {**LEAD, "Code__c": "c1"})
    reopened = Org(tmp_path / "org" / "org.db", CONFIG, clock=clock)
    assert sorted(r["Code__c"] for r in reopened.records("Lead")) == ["c1", "c2", "c3"]
    assert reopened.get("Lead", kept, ["Title"], V)["Title"] == "before"


def test_nested_transactions(org, tmp_path):
    with org.transaction():
        outer = org.create("Lead", {**LEAD, "LastName": "outer"})
        with pytest.raises(ValueError), org.transaction():
            org.create("Lead", {**LEAD, "LastName": "inner"})
            raise ValueError("roll back the inner savepoint only")
        with org.transaction():
            kept = org.create("Lead", {**LEAD, "LastName": "kept"})
    expected = {outer, kept}
    assert {r["Id"] for r in org.records("Lead")} == expected
    reopened = Org(tmp_path / "org" / "org.db", CONFIG)
    assert {r["Id"] for r in reopened.records("Lead")} == expected


def test_counters_are_stored_with_the_transaction_that_advanced_them(org, tmp_path, clock):
    # Written once per transaction rather than per record: a restart must still continue where the
    # committed records end, and a rolled-back savepoint takes back what it wrote.
    with org.transaction():
        org.create("Case", {"Subject": "outer"})
        with pytest.raises(ValueError), org.transaction():
            org.create("Case", {"Subject": "inner"})
            raise ValueError("roll back the inner savepoint only")
        org.create("Case", {"Subject": "after"})
    with pytest.raises(ValueError), org.transaction():
        org.create("Case", {"Subject": "rolled back"})
        raise ValueError("roll back everything")
    reopened = Org(tmp_path / "org" / "org.db", CONFIG, clock=clock)
    assert reopened.records("Case") == org.records("Case")
    assert [r["CaseNumber"] for r in reopened.records("Case")] == ["00001001", "00001003"]
    # Numbers handed out by rolled-back writes are not handed out again by this process, and a
    # restart continues after the last committed one.
    created = reopened.get("Case", reopened.create("Case", {"Subject": "next"}), ["CaseNumber"], V)
    assert created["CaseNumber"] == "00001004"
    assert org.get("Case", org.create("Case", {"Subject": "next"}), ["CaseNumber"], V)["CaseNumber"] == (
        "00001005"
    )


def test_survives_restart_and_keeps_ids_unique(org, tmp_path):
    first = org.create("Case", {"Subject": "one"})
    org.delete("Case", first)
    reopened = Org(tmp_path / "org" / "org.db", CONFIG)
    second = reopened.create("Case", {"Subject": "two"})
    assert second != first
    assert reopened.query("SELECT Subject, CaseNumber FROM Case", True, V) == [
        {
            "attributes": {"type": "Case", "url": f"/services/data/v59.0/sobjects/Case/{first}"},
            "Subject": "one",
            "CaseNumber": "00001001",
        },
        {
            "attributes": {"type": "Case", "url": f"/services/data/v59.0/sobjects/Case/{second}"},
            "Subject": "two",
            "CaseNumber": "00001002",
        },
    ]


def test_reset_deletes_every_record(org, tmp_path):
    org.create("Lead", LEAD)
    org.create("Account", {"Name": "A"})
    org.reset()
    assert org.records("Lead") == [] and org.records("Account") == []
    assert org.query("SELECT COUNT() FROM Lead", True, V) == 0
    assert Org(tmp_path / "org" / "org.db", CONFIG).records("Account") == []


def test_concurrent_writers(org):
    def work(n):
        for i in range(50):
            record_id = org.create("Lead", {**LEAD, "Ext__c": f"{n}-{i}"})
            org.update("Lead", record_id, {"Title": str(i)})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = org.records("Lead")
    assert len(records) == 400
    assert len({r["Id"] for r in records}) == 400


# --- derived fields -------------------------------------------------------------------------------


def test_derived_fields(org):
    opp = org.create(
        "Opportunity", {"Name": "D", "StageName": "Closed Won", "CloseDate": "2026-12-01", "Amount": 10}
    )
    assert {
        k: v
        for k, v in org.get(
            "Opportunity",
            opp,
            ["IsClosed", "IsWon", "Probability", "ExpectedRevenue", "ForecastCategoryName"],
            V,
        ).items()
        if k not in ("attributes", "Id")
    } == {
        "IsClosed": True,
        "IsWon": True,
        "Probability": 100.0,
        "ExpectedRevenue": 10.0,
        "ForecastCategoryName": "Closed",
    }
    case = org.create("Case", {})
    assert org.get("Case", case, ["Status", "Priority", "IsClosed"], V)["Status"] == "New"
    org.update("Case", case, {"Status": "Closed"})
    closed = org.get("Case", case, ["IsClosed", "ClosedDate"], V)
    assert (closed["IsClosed"], closed["ClosedDate"]) == (True, "2026-11-28T18:00:00.000+0000")
    account = org.create("Account", {"Name": "A", "BillingCity": "Paris", "BillingLatitude": "48.85"})
    assert org.get("Account", account, ["BillingAddress"], V)["BillingAddress"] == {
        "street": None,
        "city": "Paris",
        "state": None,
        "postalCode": None,
        "country": None,
        "latitude": 48.85,
        "longitude": None,
        "geocodeAccuracy": None,
    }


# --- query ----------------------------------------------------------------------------------------


def test_query(org):
    a = org.create("Lead", {**LEAD, "Email": "A@example.com", "LastName": "A"})
    b = org.create("Lead", {**LEAD, "Email": "b@example.com", "LastName": "B"})
    org.create("Lead", {**LEAD, "LastName": "C"})
    got = org.query(
        "select email, id from LEAD where Email in ('a@example.com', 'B@EXAMPLE.COM') order by LastName",
        False,
        "61.0",
    )
    assert got == [
        {
            "attributes": {"type": "Lead", "url": f"/services/data/v61.0/sobjects/Lead/{a}"},
            "Email": "A@example.com",
            "Id": a,
        },
        {
            "attributes": {"type": "Lead", "url": f"/services/data/v61.0/sobjects/Lead/{b}"},
            "Email": "b@example.com",
            "Id": b,
        },
    ]
    assert org.query("SELECT COUNT() FROM Lead WHERE Email != null", False, V) == 2


@pytest.mark.parametrize(
    ("soql", "code", "message"),
    [
        (
            "SELECT Id FROM Foo",
            "INVALID_TYPE",
            "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
            "sObject type 'Foo' is not supported. If you are attempting to use a custom object, be sure to "
            "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
            "appropriate names.",
        ),
        (
            "SELECT Id, Foo FROM Lead",
            "INVALID_FIELD",
            "\nSELECT Id, Foo FROM Lead\n           ^\nERROR at Row:1:Column:12\n"
            "No such column 'Foo' on entity 'Lead'. If you are attempting to use a custom field, be sure to "
            "append the '__c' after the custom field name. Please reference your WSDL or the describe call "
            "for the appropriate names.",
        ),
    ],
)
def test_query_errors(org, soql, code, message):
    with pytest.raises(ApiError) as exc:
        org.query(soql, False, V)
    assert api_error(exc.value) == (400, code, message, None)


def test_malformed_query(org):
    with pytest.raises(ApiError) as exc:
        org.query("SELECT FROM Lead", False, V)
    assert (exc.value.status, exc.value.error_code) == (400, "MALFORMED_QUERY")


# --- describe -------------------------------------------------------------------------------------


def test_describe_global(org):
    body = org.describe_global(V)
    assert (body["encoding"], body["maxBatchSize"]) == ("UTF-8", 200)
    assert [(o["name"], o["keyPrefix"]) for o in body["sobjects"]] == [
        ("Lead", "00Q"),
        ("Account", "001"),
        ("Contact", "003"),
        ("Case", "500"),
        ("Opportunity", "006"),
        ("Organization", "00D"),
    ]
    assert body["sobjects"][0]["urls"]["describe"] == "/services/data/v59.0/sobjects/Lead/describe"
    assert org.sobject_names() == ["Lead", "Account", "Contact", "Case", "Opportunity", "Organization"]
    assert org.metadata("lead", V) == {"objectDescribe": body["sobjects"][0], "recentItems": []}


def test_describe_lead_fields(org):
    body = org.describe("Lead", V)
    assert (body["name"], body["label"], body["labelPlural"], body["keyPrefix"], body["custom"]) == (
        "Lead",
        "Lead",
        "Leads",
        "00Q",
        False,
    )
    fields = {f["name"]: f for f in body["fields"]}
    pick = lambda f, *keys: tuple(fields[f][k] for k in keys)  # noqa: E731
    keys = ("type", "length", "byteLength", "nillable", "createable", "updateable", "defaultedOnCreate")
    assert pick("LastName", *keys) == ("string", 80, 240, False, True, True, False)
    assert pick("Company", *keys) == ("string", 255, 765, False, True, True, False)
    assert pick("Email", *keys, "idLookup") == ("email", 80, 240, True, True, True, False, True)
    assert pick("Status", *keys) == ("picklist", 255, 765, False, True, True, True)
    assert pick("Id", "type", "createable", "idLookup", "soapType") == ("id", False, True, "tns:ID")
    assert pick("IsConverted", "type", "createable", "updateable", "defaultValue") == (
        "boolean",
        False,
        False,
        False,
    )
    assert pick("Name", "createable", "updateable", "nameField") == (False, False, True)
    assert pick("NumberOfEmployees", "type", "digits", "label", "soapType") == (
        "int",
        8,
        "Employees",
        "xsd:int",
    )
    assert pick("AnnualRevenue", "type", "precision", "scale") == ("currency", 18, 0)
    assert pick("OwnerId", "referenceTo", "relationshipName") == (["Group", "User"], "Owner")
    assert pick("Description", "length", "filterable", "sortable") == (32000, False, False)
    assert fields["Status"]["picklistValues"][0] == {
        "active": True,
        "defaultValue": True,
        "label": "Open - Not Contacted",
        "validFor": None,
        "value": "Open - Not Contacted",
    }
    assert [p["value"] for p in fields["Status"]["picklistValues"]] == [
        "Open - Not Contacted",
        "Working - Contacted",
        "Closed - Converted",
        "Closed - Not Converted",
    ]
    assert fields["Status"]["restrictedPicklist"] is False
    assert pick("Ext__c", "custom", "externalId", "idLookup", "unique", "length", "label") == (
        True,
        True,
        True,
        False,
        255,
        "Ext",
    )
    assert pick("Code__c", "externalId", "unique") == (True, True)
    assert pick("Tier__c", "restrictedPicklist", "type") == (True, "picklist")


@pytest.mark.parametrize(
    ("sobject", "required"),
    [
        ("Lead", ["LastName", "Company"]),
        ("Account", ["Name"]),
        ("Contact", ["LastName"]),
        ("Case", []),
        ("Opportunity", ["Name", "StageName", "CloseDate"]),
    ],
)
def test_describe_required_fields(org, sobject, required):
    fields = org.describe(sobject, V)["fields"]
    got = [f["name"] for f in fields if not f["nillable"] and f["createable"] and not f["defaultedOnCreate"]]
    assert got == required


# --- indexed lookups ------------------------------------------------------------------------------------

# Queries naming an indexed text field (Email, an external id, a unique field) that the index answers
# for, with other conditions, orders and limits beside it, and queries it cannot answer (a scan).
INDEXED_QUERIES = [
    ("SELECT Id, Email FROM Lead WHERE Email = 'B@example.com'", True),
    ("SELECT Id FROM Lead WHERE Email IN ('a@example.com', 'C@EXAMPLE.COM', 'nobody@example.com')", True),
    ("SELECT Id FROM Lead WHERE Lead.Email IN ('a@example.com', 'b@example.com') ORDER BY Email DESC", True),
    ("SELECT Id FROM Lead WHERE Email IN ('a@example.com', 'b@example.com') AND LastName = 'Other'", True),
    ("SELECT Id FROM Lead WHERE (LastName != 'x' AND Ext__c = 'K1') AND Company = 'Acme' LIMIT 1", True),
    ("SELECT Id FROM Lead WHERE Code__c IN ('c1', 'C2')", True),
    ("SELECT Id FROM Lead WHERE Plain__c = 'P'", True),
    ("SELECT COUNT() FROM Lead WHERE Email IN ('a@example.com', 'b@example.com')", True),
    ("SELECT Id FROM Lead WHERE Email IN ('a@example.com', null)", False),
    ("SELECT Id FROM Lead WHERE Email NOT IN ('a@example.com')", False),
    ("SELECT Id FROM Lead WHERE Email = 'a@example.com' OR LastName = 'Other'", False),
    ("SELECT Id FROM Lead WHERE LastName = 'Smith'", False),
    ("SELECT Id FROM Lead", False),
]


@pytest.mark.parametrize("text, indexed", INDEXED_QUERIES)
def test_an_indexed_lookup_finds_what_a_scan_finds(org, text, indexed):
    from emulator import soql

    made = [
        org.create("Lead", {**LEAD, "Email": "a@example.com", "Ext__c": "K1", "Code__c": "C1"}),
        org.create("Lead", {**LEAD, "Email": "A@Example.com"}),  # the same address in other case
        org.create("Lead", {**LEAD, "LastName": "Other", "Email": "b@example.com", "Plain__c": "p"}),
        org.create("Lead", {**LEAD, "Email": "c@example.com", "Code__c": "c2"}),
        org.create("Lead", {**LEAD, "Email": "gone@example.com"}),
        org.create("Lead", LEAD),  # no email
    ]
    org.update("Lead", made[2], {"Email": "B@example.com"})  # indexed under its new address
    org.delete("Lead", made[4])  # no longer found by a live query
    query = soql.parse(text)
    assert (org._indexed_rows("Lead", query) is not None) == indexed

    answer = org.query(text, False, V)

    live = [r for r in org._records["Lead"].values() if not r["IsDeleted"]]
    scanned = soql.execute(query, live, org._objects["Lead"].field_types)
    assert scanned  # every query finds something: the comparison is not an empty one
    if isinstance(answer, int):
        assert answer == scanned
    else:
        assert [r["Id"] for r in answer] == [r["Id"] for r in scanned]
