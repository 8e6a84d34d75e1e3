"""Table tests for fit_fields: casing, unknown and read-only fields, trimming and lossless conversion."""

import pytest

from schemas.fields import ObjectMeta
from tests.unit.conftest import f
from transforms.fitting import FitResult, fit_fields, match_value_too_long

# Describe-like, as GET /sobjects/Lead/describe gives them (only the keys FieldMeta reads).
LEAD = ObjectMeta.from_describe(
    {
        "name": "Lead",
        "fields": [
            f("Id", "id", length=18, createable=False, updateable=False, nillable=False),
            f("FirstName", "string", length=40),
            f("LastName", "string", length=80, nillable=False),
            f("Email", "email", length=80),
            f("Phone", "phone", length=40),
            f("Website", "url", length=255),
            f("Street", "textarea", length=255),
            f("Rating", "picklist", length=255, picklistValues=[{"value": "Hot"}, {"value": "Cold"}]),
            f(
                "Tier__c",
                "picklist",
                length=255,
                custom=True,
                restrictedPicklist=True,
                picklistValues=[{"value": "Gold"}, {"value": "Silver"}, {"value": "Old", "active": False}],
            ),
            f(
                "Tags__c",
                "multipicklist",
                length=4099,
                custom=True,
                restrictedPicklist=True,
                picklistValues=[{"value": "A"}, {"value": "B"}],
            ),
            f("NumberOfEmployees", "int", digits=8),
            f("AnnualRevenue", "currency", precision=18, scale=0),
            f("Latitude", "double", precision=18, scale=15),
            f("Score__c", "double", precision=5, scale=2, custom=True),
            f("Share__c", "percent", precision=3, scale=0, custom=True),
            f("HasOptedOutOfEmail", "boolean", nillable=False),
            f("Born__c", "date", custom=True),
            f("SeenAt__c", "datetime", custom=True),
            f("OwnerId", "reference", length=18, nillable=False),
            f("IsConverted", "boolean", createable=False, updateable=False, nillable=False),
            f("CreateOnly__c", "string", length=10, updateable=False, custom=True),
            f("Secret__c", "encryptedstring", length=5, custom=True),
            f("Notes__c", "string", custom=True),
            f("Clock__c", "time", custom=True),
        ],
    }
)


def fit(fields, for_create=True):
    return fit_fields(fields, LEAD, for_create)


def test_a_fit_result_whole():
    assert fit(
        {
            "firstname": "Peter",
            "Title": "VP",
            "testProp__c": 1,
            "IsConverted": True,
            "Phone": 5706904150,
            "LastName": "x" * 90,
            "NumberOfEmployees": "4.5",
        }
    ) == FitResult(
        fields={"FirstName": "Peter", "Phone": "5706904150", "LastName": "x" * 80},
        trimmed=("LastName",),
        converted=("Phone",),
        dropped_type=("NumberOfEmployees",),
        dropped_unknown=("Title", "testProp__c"),
        dropped_readonly=("IsConverted",),
    )


@pytest.mark.parametrize(
    "fields, for_create, sent, dropped_readonly",
    [
        ({"CreateOnly__c": "x"}, True, {"CreateOnly__c": "x"}, ()),
        ({"CreateOnly__c": "x"}, False, {}, ("CreateOnly__c",)),
        ({"createonly__C": "x"}, False, {}, ("CreateOnly__c",)),
        ({"Id": "00Q000000000001AAA"}, True, {}, ("Id",)),
        ({"IsConverted": False}, False, {}, ("IsConverted",)),
    ],
)
def test_read_only_fields(fields, for_create, sent, dropped_readonly):
    result = fit(fields, for_create)
    assert (result.fields, result.dropped_readonly) == (sent, dropped_readonly)


@pytest.mark.parametrize(
    "fields, sent, unknown",
    [
        ({"EMAIL": "a@b.c", "lastname": "G"}, {"Email": "a@b.c", "LastName": "G"}, ()),
        ({"testProp__c": 1, "Status": "Open", "notes__C": "n"}, {"Notes__c": "n"}, ("testProp__c", "Status")),
        ({}, {}, ()),
    ],
)
def test_names_resolve_case_insensitively(fields, sent, unknown):
    result = fit(fields)
    assert (result.fields, result.dropped_unknown) == (sent, unknown)


# (field, value) -> (value sent or DROPPED, trimmed, converted)
DROPPED = object()


@pytest.mark.parametrize(
    "field, value, sent, trimmed, converted",
    [
        # Text: trimmed to length, numbers and booleans as text.
        ("FirstName", "Peter", "Peter", False, False),
        ("FirstName", "P" * 40, "P" * 40, False, False),
        ("FirstName", "P" * 41, "P" * 40, True, False),
        ("FirstName", "é" * 50, "é" * 40, True, False),
        # Salesforce counts UTF-16 code units: an emoji takes two, and is never split.
        ("FirstName", "😀" * 20, "😀" * 20, False, False),
        ("FirstName", "😀" * 21, "😀" * 20, True, False),
        ("FirstName", "a" + "😀" * 20, "a" + "😀" * 19, True, False),
        ("Email", "a" * 75 + "@b.com", "a" * 75 + "@b.co", True, False),
        ("Street", "s" * 300, "s" * 255, True, False),
        ("Secret__c", 1234567, "12345", True, True),
        ("Phone", 5706904150, "5706904150", False, True),
        ("Phone", 4.5, "4.5", False, True),
        ("FirstName", True, "true", False, True),
        ("FirstName", False, "false", False, True),
        ("FirstName", "", "", False, False),
        ("FirstName", {"a": 1}, DROPPED, False, False),
        ("FirstName", ["a"], DROPPED, False, False),
        ("Notes__c", "n" * 5000, "n" * 5000, False, False),  # no length in describe: no limit known
        ("Website", "https://example.com", "https://example.com", False, False),
        # Picklists: open ones take anything; restricted ones only their (active) values.
        ("Rating", "Lukewarm", "Lukewarm", False, False),
        ("Tier__c", "Gold", "Gold", False, False),
        ("Tier__c", "gold", "Gold", False, True),
        ("Tier__c", "Bronze", DROPPED, False, False),
        ("Tier__c", "Old", DROPPED, False, False),
        ("Tags__c", "A;B", "A;B", False, False),
        ("Tags__c", "a; b", "A;B", False, True),
        ("Tags__c", "A;C", DROPPED, False, False),
        # int: whole numbers only, within digits.
        ("NumberOfEmployees", 4, 4, False, False),
        ("NumberOfEmployees", "4", 4, False, True),
        ("NumberOfEmployees", " 4 ", 4, False, True),
        ("NumberOfEmployees", "4.0", 4, False, True),
        ("NumberOfEmployees", 4.0, 4, False, True),
        ("NumberOfEmployees", "-12", -12, False, True),
        ("NumberOfEmployees", "1e3", 1000, False, True),
        ("NumberOfEmployees", 99999999, 99999999, False, False),
        ("NumberOfEmployees", 100000000, DROPPED, False, False),
        ("NumberOfEmployees", "4.5", DROPPED, False, False),
        ("NumberOfEmployees", 4.5, DROPPED, False, False),
        ("NumberOfEmployees", "four", DROPPED, False, False),
        ("NumberOfEmployees", "1,000", DROPPED, False, False),
        ("NumberOfEmployees", "", DROPPED, False, False),
        ("NumberOfEmployees", "NaN", DROPPED, False, False),
        ("NumberOfEmployees", "1e999999999", DROPPED, False, False),
        ("NumberOfEmployees", True, DROPPED, False, False),
        ("NumberOfEmployees", [4], DROPPED, False, False),
        # double / currency / percent: exact numbers, within precision - scale integer digits.
        ("AnnualRevenue", 1500000, 1500000, False, False),
        ("AnnualRevenue", "1500000", 1500000, False, True),
        ("AnnualRevenue", "1500000.50", 1500000.5, False, True),
        ("Latitude", "41.6812", 41.6812, False, True),
        ("Latitude", 41.6812, 41.6812, False, False),
        ("Latitude", 1000.5, DROPPED, False, False),
        ("Latitude", "0.1234567890123456789", DROPPED, False, False),  # more digits than a float holds
        ("Score__c", 999.99, 999.99, False, False),
        ("Score__c", "999", 999, False, True),
        ("Score__c", 1000, DROPPED, False, False),
        ("Share__c", "12.5", 12.5, False, True),
        ("Share__c", False, DROPPED, False, False),
        ("Share__c", "12%", DROPPED, False, False),
        # boolean
        ("HasOptedOutOfEmail", True, True, False, False),
        ("HasOptedOutOfEmail", "TRUE", True, False, True),
        ("HasOptedOutOfEmail", " false ", False, False, True),
        ("HasOptedOutOfEmail", 1, True, False, True),
        ("HasOptedOutOfEmail", 0, False, False, True),
        ("HasOptedOutOfEmail", 2, DROPPED, False, False),
        ("HasOptedOutOfEmail", "yes", DROPPED, False, False),
        # date: only a date; a datetime's date part would lose the time.
        ("Born__c", "1990-05-17", "1990-05-17", False, False),
        ("Born__c", "1990-02-30", DROPPED, False, False),
        ("Born__c", "1990-05-17T10:00:00Z", DROPPED, False, False),
        ("Born__c", "17/05/1990", DROPPED, False, False),
        ("Born__c", 19900517, DROPPED, False, False),
        # datetime: ISO 8601 into Salesforce's own form, UTC, milliseconds.
        ("SeenAt__c", "2026-11-28T18:00:00.000+0000", "2026-11-28T18:00:00.000+0000", False, False),
        ("SeenAt__c", "2026-11-28T18:00:00Z", "2026-11-28T18:00:00.000+0000", False, True),
        ("SeenAt__c", "2026-11-28T20:00:00.123456+02:00", "2026-11-28T18:00:00.123+0000", False, True),
        ("SeenAt__c", "2026-11-28", "2026-11-28T00:00:00.000+0000", False, True),
        ("SeenAt__c", "2026-11-28T18:00:00", "2026-11-28T18:00:00.000+0000", False, True),
        ("SeenAt__c", "last week", DROPPED, False, False),
        ("SeenAt__c", 1764352800, DROPPED, False, False),
        # reference: an id is never cut.
        ("OwnerId", "005000000000001AAA", "005000000000001AAA", False, False),
        ("OwnerId", "005000000000001AAAX", DROPPED, False, False),
        ("OwnerId", 5, DROPPED, False, False),
        # A type without rules here: Salesforce decides.
        ("Clock__c", "10:00:00.000Z", "10:00:00.000Z", False, False),
    ],
)
def test_values(field, value, sent, trimmed, converted):
    result = fit({field: value})
    if sent is DROPPED:
        assert (result.fields, result.dropped_type) == ({}, (field,))
    else:
        assert result.fields == {field: sent}
        assert type(result.fields[field]) is type(sent)
        assert result.dropped_type == ()
    assert result.trimmed == ((field,) if trimmed else ())
    assert result.converted == ((field,) if converted else ())


@pytest.mark.parametrize(
    "field, for_create, sent",
    [
        # None clears a nillable field ...
        ("FirstName", True, {"FirstName": None}),
        ("FirstName", False, {"FirstName": None}),
        ("SeenAt__c", False, {"SeenAt__c": None}),
        # ... and cannot be written to one that must hold a value.
        ("LastName", False, {}),
        ("HasOptedOutOfEmail", True, {}),
    ],
)
def test_none(field, for_create, sent):
    result = fit({field: None}, for_create)
    assert result.fields == sent
    assert result.dropped_type == (() if sent else (field,))


def test_report_order_follows_the_fields():
    result = fit({"NumberOfEmployees": "x", "Born__c": "x", "FirstName": "a" * 41, "Street": "b" * 256})
    assert (result.dropped_type, result.trimmed) == (
        ("NumberOfEmployees", "Born__c"),
        ("FirstName", "Street"),
    )


def test_input_is_not_changed():
    fields = {"NumberOfEmployees": "4", "FirstName": "P" * 50}
    fit(fields)
    assert fields == {"NumberOfEmployees": "4", "FirstName": "P" * 50}


@pytest.mark.parametrize(
    "field, value, too_long",
    [
        ("Email", "a" * 68 + "@example.com", False),  # 80: fits
        ("Email", "a" * 69 + "@example.com", True),  # 81: never trimmed, the key would change
        ("email", "\U0001f600" * 40, False),  # 80 UTF-16 units
        ("Email", "\U0001f600" * 41, True),
        ("Unknown__c", "x" * 500, False),  # the org decides
    ],
)
def test_match_value_too_long(field, value, too_long):
    answer = match_value_too_long(field, value, LEAD)
    assert (answer is not None) is too_long
    if too_long:
        assert answer.startswith("Email holds 80 characters")
