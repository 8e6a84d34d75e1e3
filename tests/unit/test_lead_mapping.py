"""Table tests for identify → Lead, including the seed's two identify calls."""

import json

import pytest

from schemas.dead_letter import DeadLetter
from schemas.events import EventRef
from schemas.records import RecordOp
from tests.seed_examples import SEED_IDENTIFY_FLAT, SEED_IDENTIFY_OBJECTS, SEED_LEAD
from transforms.lead_mapping import LEAD_CREATE_DEFAULTS, identify_to_lead, lead_fields, split_name
from transforms.parsing import parse_line


def identify(traits, **members):
    obj = {"type": "identify", "userId": "u", "messageId": "m", "timestamp": "2026-11-28T18:00:00Z"}
    return parse_line(json.dumps({**obj, **members, "traits": traits}), "src")


@pytest.mark.parametrize(
    "line, message_id", [(SEED_IDENTIFY_FLAT, "seed-identify-1"), (SEED_IDENTIFY_OBJECTS, "seed-identify-2")]
)
def test_the_seeds_identify_calls(line, message_id):
    event = parse_line(line, "seed/identify.jsonl")
    assert identify_to_lead(event) == RecordOp(
        sobject="Lead",
        match_field="Email",
        match_value="peter.gibbons@example.com",
        fields=SEED_LEAD,
        create_defaults={"LastName": "n/a", "Company": "n/a"},
        timestamp=event.timestamp,
        message_id=message_id,
        ref=EventRef("seed/identify.jsonl", 0),
    )


@pytest.mark.parametrize(
    "traits, fields",
    [
        ({"email": "a@b.c"}, {"Email": "a@b.c"}),
        # The match value is trimmed; its case is kept (Salesforce matches case-insensitively).
        ({"email": "  Peter@Example.COM \n"}, {"Email": "Peter@Example.COM"}),
        # name: first word → FirstName, the rest → LastName; one word → LastName.
        (
            {"email": "a@b.c", "name": "Peter Gibbons"},
            {"Email": "a@b.c", "FirstName": "Peter", "LastName": "Gibbons"},
        ),
        (
            {"email": "a@b.c", "name": "  Mary  Ann   van Dyke "},
            {"Email": "a@b.c", "FirstName": "Mary", "LastName": "Ann van Dyke"},
        ),
        ({"email": "a@b.c", "name": "Prince"}, {"Email": "a@b.c", "LastName": "Prince"}),
        ({"email": "a@b.c", "name": "   "}, {"Email": "a@b.c"}),
        ({"email": "a@b.c", "name": 42}, {"Email": "a@b.c"}),
        # Explicit firstName / lastName win over the split name.
        (
            {"email": "a@b.c", "name": "Peter Gibbons", "firstName": "Pete"},
            {"Email": "a@b.c", "FirstName": "Pete", "LastName": "Gibbons"},
        ),
        (
            {"email": "a@b.c", "name": "Peter Gibbons", "lastName": "Gibbons-Smith", "firstName": "P."},
            {"Email": "a@b.c", "FirstName": "P.", "LastName": "Gibbons-Smith"},
        ),
        # ... but a null one does not erase what the name gave.
        (
            {"email": "a@b.c", "name": "Peter Gibbons", "firstName": None},
            {"Email": "a@b.c", "FirstName": "Peter", "LastName": "Gibbons"},
        ),
        # Without a name, an explicit null asks to clear the field (fitting checks nillable).
        ({"email": "a@b.c", "firstName": None}, {"Email": "a@b.c", "FirstName": None}),
        # The table of standard fields.
        (
            {
                "email": "a@b.c",
                "firstName": "Peter",
                "lastName": "Gibbons",
                "title": "VP",
                "phone": "1",
                "website": "https://x.io",
                "description": "d",
                "rating": "Hot",
                "leadSource": "Web",
                "industry": "Software",
                "employees": 40,
            },
            {
                "Email": "a@b.c",
                "FirstName": "Peter",
                "LastName": "Gibbons",
                "Title": "VP",
                "Phone": "1",
                "Website": "https://x.io",
                "Description": "d",
                "Rating": "Hot",
                "LeadSource": "Web",
                "Industry": "Software",
                "NumberOfEmployees": 40,
            },
        ),
        # company: a string, or an object's name (its other keys have no Lead field).
        ({"email": "a@b.c", "company": "Initech"}, {"Email": "a@b.c", "Company": "Initech"}),
        (
            {"email": "a@b.c", "company": {"id": 666, "name": "Initech"}},
            {"Email": "a@b.c", "Company": "Initech"},
        ),
        ({"email": "a@b.c", "company": {"id": 666}}, {"Email": "a@b.c"}),
        ({"email": "a@b.c", "company": 7}, {"Email": "a@b.c", "Company": 7}),
        # Address: flat traits, the object, or both (the object wins part by part).
        (
            {"email": "a@b.c", "city": "Austin", "state": "TX"},
            {"Email": "a@b.c", "City": "Austin", "State": "TX"},
        ),
        (
            {
                "email": "a@b.c",
                "state": "California",
                "city": "Austin",
                "address": {"state": "RI", "zip": "x"},
            },
            {"Email": "a@b.c", "State": "RI", "City": "Austin"},
        ),
        (
            {"email": "a@b.c", "state": "California", "address": {"state": None}},
            {"Email": "a@b.c", "State": "California"},
        ),
        ({"email": "a@b.c", "address": {"state": None}}, {"Email": "a@b.c", "State": None}),
        # An address that is not an object is no address: it is kept as a custom field.
        ({"email": "a@b.c", "address": "1 Main St"}, {"Email": "a@b.c", "address__c": "1 Main St"}),
        # Every other trait → <trait>__c, casing kept; reserved Segment traits too; Status never.
        (
            {"email": "a@b.c", "testProp": 1, "snake_case": True, "createdAt": "2026-01-01", "id": "u1"},
            {
                "Email": "a@b.c",
                "testProp__c": 1,
                "snake_case__c": True,
                "createdAt__c": "2026-01-01",
                "id__c": "u1",
            },
        ),
        (
            {"email": "a@b.c", "status": "Open", "Status": "x"},
            {"Email": "a@b.c", "status__c": "Open", "Status__c": "x"},
        ),
        # Trait names are case-sensitive (Segment's spec): `Title` is not `title`.
        (
            {"email": "a@b.c", "Title": "VP", "Email": "x@y.z"},
            {"Email": "a@b.c", "Title__c": "VP", "Email__c": "x@y.z"},
        ),
        # Already a custom field's name: used as it is.
        (
            {"email": "a@b.c", "plan__c": "pro", "Tier__C": 2},
            {"Email": "a@b.c", "plan__c": "pro", "Tier__C": 2},
        ),
        # A blank LastName or Company is no value: never blanks a Lead's, never overrides n/a.
        ({"email": "a@b.c", "lastName": None, "company": None}, {"Email": "a@b.c"}),
        ({"email": "a@b.c", "lastName": "  ", "company": ""}, {"Email": "a@b.c"}),
        ({"email": "a@b.c", "company": {"name": None}}, {"Email": "a@b.c"}),
        # A blank explicit name part does not undo the split of `name`.
        (
            {"email": "a@b.c", "name": "Peter Gibbons", "firstName": "", "lastName": None},
            {"Email": "a@b.c", "FirstName": "Peter", "LastName": "Gibbons"},
        ),
        # Objects and lists as JSON text; null kept (clears).
        (
            {"email": "a@b.c", "tags": ["a", "b"], "prefs": {"x": 1, "é": None}, "nothing": None},
            {"Email": "a@b.c", "tags__c": '["a","b"]', "prefs__c": '{"x":1,"é":null}', "nothing__c": None},
        ),
    ],
)
def test_traits_to_lead_fields(traits, fields):
    op = identify_to_lead(identify(traits))
    assert isinstance(op, RecordOp)
    assert op.fields == fields
    assert "Status" not in op.fields
    assert op.match_value == fields["Email"]
    assert op.create_defaults == LEAD_CREATE_DEFAULTS


def test_traits_from_context_traits():
    event = identify(None, context={"traits": {"email": "a@b.c", "name": "Peter Gibbons"}})
    assert identify_to_lead(event).fields == {"Email": "a@b.c", "FirstName": "Peter", "LastName": "Gibbons"}


def test_create_defaults_are_a_copy():
    op = identify_to_lead(identify({"email": "a@b.c"}))
    op.create_defaults["LastName"] = "changed"
    assert LEAD_CREATE_DEFAULTS == {"LastName": "n/a", "Company": "n/a"}


@pytest.mark.parametrize(
    "traits, reason, message",
    [
        (
            {},
            "missing_email",
            "identify has no traits.email: a Lead cannot be matched without it; add traits.email",
        ),
        (
            {"email": None, "name": "Peter"},
            "missing_email",
            "identify has no traits.email: a Lead cannot be matched without it; add traits.email",
        ),
        (
            {"email": "  "},
            "missing_email",
            "identify has no traits.email: a Lead cannot be matched without it; add traits.email",
        ),
        (
            {"Email": "a@b.c"},
            "missing_email",
            "identify has no traits.email: a Lead cannot be matched without it; add traits.email",
        ),
        (
            {"email": 12},
            "invalid_email",
            "identify traits.email must be a string, not int: a Lead is matched by email",
        ),
    ],
)
def test_identify_without_an_email_is_a_dead_letter(traits, reason, message):
    event = identify(traits)
    result = identify_to_lead(event)
    assert isinstance(result, DeadLetter)
    assert (result.stage, result.reason, result.message, result.retryable, result.event, result.source) == (
        "map",
        reason,
        message,
        False,
        event.raw,
        "src",
    )


@pytest.mark.parametrize(
    "name, fields",
    [
        ("Peter Gibbons", {"FirstName": "Peter", "LastName": "Gibbons"}),
        ("Peter", {"LastName": "Peter"}),
        ("", {}),
        (None, {}),
        ("a\tb\nc", {"FirstName": "a", "LastName": "b c"}),
    ],
)
def test_split_name(name, fields):
    assert split_name(name) == fields


@pytest.mark.parametrize(
    ("traits", "require_email"),
    [
        ({"email": " a@b.c ", "name": "Peter Gibbons", "address": {"city": "Austin"}, "plan": "pro"}, True),
        ({"name": "Peter Gibbons", "city": "Austin", "address": "1 Main St"}, False),
    ],
)
def test_lead_fields_are_the_leads(traits, require_email):
    event = identify(traits)
    lead = identify_to_lead(event, require_email=require_email)
    assert lead_fields(event, require_email=require_email) == (lead.match_value, lead.fields)


def test_lead_fields_dead_letter_is_the_leads():
    event = identify({"name": "Peter Gibbons"})
    assert lead_fields(event).reason == identify_to_lead(event).reason == "missing_email"
