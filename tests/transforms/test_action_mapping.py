"""Table tests for action_op: one event and one custom action into the exact RecordOp, or DeadLetter."""

import dataclasses
import json
import math

import pytest

from actions.config import Action, parse_actions
from schemas.dead_letter import DeadLetter
from schemas.events import EventRef, SegmentEvent
from schemas.records import MATCH_SEPARATOR, RecordOp, split_match
from transforms.account_mapping import group_to_account
from transforms.action_mapping import action_op
from transforms.lead_mapping import identify_to_lead
from transforms.parsing import parse_line

SOURCE = "events.jsonl"

ORDER = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u-1",
    "messageId": "m-1",
    "timestamp": "2026-03-01T12:00:00Z",
    "properties": {
        "title": "Big order",
        "total": 42.5,
        "count": 3,
        "gift": False,
        "coupon": None,
        "code": "SAVE",
        "empty": "",
        "tags": ["a", "b"],
        "empty_obj": {},
        "shipping": {"method": "ups", "days": 2, "note": "Café"},
        "products": [{"sku": "SKU-1", "price": 10}, {"sku": "SKU-2", "name": "Café"}],
    },
    "context": {"traits": {"address": {"city": "Austin", "state": None}}},
}


def parse(obj: dict, seq: int = 3) -> SegmentEvent:
    event = parse_line(json.dumps(obj), SOURCE, seq)
    assert isinstance(event, SegmentEvent), event
    return event


def order(**properties) -> SegmentEvent:
    return parse({**ORDER, "properties": {**ORDER["properties"], **properties}})


def action(body: str) -> Action:
    """The one action of an actions file whose `actions:` list holds `body` (indented four spaces)."""
    config = parse_actions("version: 1\nactions:\n  - " + body.strip().replace("\n", "\n    ") + "\n")
    (only,) = config.actions
    return only


def track_action(operation: str = "update", extra: str = "", name: str = "orders") -> Action:
    return action(
        f"name: {name}\ntrigger: {{track: Order Completed}}\nobject: Order__c\n"
        f"operation: {operation}\n{extra}"
    )


def dead(letter) -> tuple:
    """A dead letter without its time (the moment it was made)."""
    assert isinstance(letter, DeadLetter), letter
    return (letter.stage, letter.reason, letter.message, letter.retryable, letter.event, letter.source)


def map_dead(event: SegmentEvent, reason: str, message: str) -> tuple:
    return ("map", reason, message, False, event.raw, SOURCE)


# --- field values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fields"),
    [
        # Scalars as they are: text, numbers (int and float kept apart), booleans.
        ("properties.title", {"Out__c": "Big order"}),
        ("properties.total", {"Out__c": 42.5}),
        ("properties.count", {"Out__c": 3}),
        ("properties.gift", {"Out__c": False}),
        # Empty text is a value (present, not null): written.
        ("properties.empty", {"Out__c": ""}),
        # Missing or null: not written (a missing value never clears a field).
        ("properties.coupon", {}),
        ("properties.nope", {}),
        ("context.traits.address.state", {}),
        # Nested keys and list indexes.
        ("context.traits.address.city", {"Out__c": "Austin"}),
        ("properties.products.0.sku", {"Out__c": "SKU-1"}),
        ("properties.products.1.name", {"Out__c": "Café"}),
        ("properties.products.2.sku", {}),
        ("properties.products.first.sku", {}),
        ("properties.title.length", {}),
        ("properties.products.0.name", {}),
        # Objects and lists as compact JSON text, non-ASCII kept.
        ("properties.products", {"Out__c": '[{"sku":"SKU-1","price":10},{"sku":"SKU-2","name":"Café"}]'}),
        ("properties.shipping", {"Out__c": '{"method":"ups","days":2,"note":"Café"}'}),
        ("properties.tags", {"Out__c": '["a","b"]'}),
        ("properties.empty_obj", {"Out__c": "{}"}),
        # Fallbacks: the first present and not null wins.
        ("[properties.coupon, properties.code]", {"Out__c": "SAVE"}),
        ("[properties.nope, properties.code, properties.title]", {"Out__c": "SAVE"}),
        ("[properties.empty, properties.code]", {"Out__c": ""}),
        ("[properties.products.5, properties.products.1.sku]", {"Out__c": "SKU-2"}),
        ("[properties.nope, properties.coupon]", {}),
        # Top-level keys, as the event has them (not the parsed, normalized values).
        ("messageId", {"Out__c": "m-1"}),
        ("timestamp", {"Out__c": "2026-03-01T12:00:00Z"}),
        ("event", {"Out__c": "Order Completed"}),
        # Literals.
        ("{literal: Web}", {"Out__c": "Web"}),
        ("{literal: 7}", {"Out__c": 7}),
        ("{literal: 2.5}", {"Out__c": 2.5}),
        ("{literal: false}", {"Out__c": False}),
        ("{literal: ''}", {"Out__c": ""}),
    ],
)
def test_field_sources(source, fields):
    op = action_op(order(), track_action(extra=f"match: {{User__c: userId}}\nfields: {{Out__c: {source}}}"))
    assert isinstance(op, RecordOp), op
    assert op.fields == fields
    assert type(op.fields.get("Out__c")) is type(fields.get("Out__c"))  # 3 stays an int, False a bool


def test_a_whole_op():
    a = track_action(
        operation="upsert",
        extra="match: {External_Id__c: properties.products.0.sku}\n"
        "fields:\n"
        "  Name: properties.title\n"
        "  Total__c: properties.total\n"
        "  Coupon__c: properties.coupon\n"
        "  Items__c: properties.products\n"
        "  Channel__c: {literal: Web}\n"
        "create_defaults: {Status__c: New, Priority__c: 3}",
    )
    assert action_op(order(), a) == RecordOp(
        sobject="Order__c",
        match_field="External_Id__c",
        match_value="SKU-1",
        fields={
            "Name": "Big order",
            "Total__c": 42.5,
            "Items__c": '[{"sku":"SKU-1","price":10},{"sku":"SKU-2","name":"Café"}]',
            "Channel__c": "Web",
        },
        create_defaults={"Status__c": "New", "Priority__c": 3},
        timestamp="2026-03-01T12:00:00.000Z",
        message_id="m-1",
        ref=EventRef(SOURCE, 3),
        action="orders",
        instance="",
    )


# --- match values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "match_value"),
    [
        ("A-1", "A-1"),
        ("  A-1 \n\t", "A-1"),  # trimmed
        ("Café Ü", "Café Ü"),  # case and accents kept
        (10, "10"),
        (-7, "-7"),
        (0, "0"),
        (2**53 + 1, "9007199254740993"),  # an integer as it is
        (10.0, "10"),  # as JavaScript writes numbers
        (-0.0, "0"),
        (1.5, "1.5"),
        (123456.789, "123456.789"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (-2.5e30, "-2.5e+30"),
    ],
)
def test_match_values(value, match_value):
    op = action_op(order(key=value), track_action(extra="match: {Key__c: properties.key}"))
    assert isinstance(op, RecordOp), op
    assert (op.match_field, op.match_value) == ("Key__c", match_value)


MISSING = (
    "missing_match_value",
    "action 'orders' matches Order__c.Key__c on properties.key, which this event lacks: add properties.key "
    "to the event or change the action's match rules",
)


def invalid(kind: str) -> tuple[str, str]:
    return (
        "invalid_match_value",
        f"action 'orders' matches Order__c.Key__c on properties.key, which is a JSON {kind}: a record is "
        "matched on text or a number",
    )


SEPARATOR = (
    "invalid_match_value",
    "action 'orders' matches Order__c.Key__c on properties.key, which holds the control character U+001F",
)


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({}, MISSING),
        ({"key": None}, MISSING),
        ({"key": ""}, MISSING),
        ({"key": " \t\n"}, MISSING),
        ({"key": {"id": 1}}, invalid("object")),
        ({"key": {}}, invalid("object")),
        ({"key": [1]}, invalid("array")),
        ({"key": []}, invalid("array")),
        ({"key": True}, invalid("boolean")),
        ({"key": False}, invalid("boolean")),
        ({"key": "a\x1fb"}, SEPARATOR),
        ({"key": "a b\x1f\x1fc"}, SEPARATOR),
        # Python's str.strip counts U+001F as whitespace: a lone one is blank, not the separator.
        ({"key": "\x1f"}, MISSING),
    ],
)
def test_match_values_dead_lettered(properties, expected):
    event = order(**properties)
    letter = action_op(event, track_action(extra="match: {Key__c: properties.key}"))
    assert dead(letter) == map_dead(event, *expected)


def test_separator_at_the_ends_is_trimmed_as_whitespace():
    # Not the join's separator any more once trimmed: matched on what is left (as " a b " would be).
    op = action_op(order(key="\x1fa b\x1f "), track_action(extra="match: {Key__c: properties.key}"))
    assert isinstance(op, RecordOp), op
    assert op.match_value == "a b"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_match_values(value):
    # The parser refuses NaN and Infinity; a hand-built event (or a YAML literal) can still hold them.
    event = dataclasses.replace(order(), raw={**ORDER, "properties": {"key": value}})
    letter = action_op(event, track_action(extra="match: {Key__c: properties.key}"))
    assert dead(letter) == (
        "map",
        "invalid_match_value",
        "action 'orders' matches Order__c.Key__c on properties.key, a number that is not finite",
        False,
        event.raw,
        SOURCE,
    )


def literal_dead(reason: str, what: str, rest: str) -> tuple[str, str]:
    return reason, f"action 'orders' matches Order__c.Key__c on literal {what}{rest}"


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("' Web '", "Web"),
        ("5", "5"),
        ("5.0", "5"),
        ("1.0e+21", "1e+21"),
        (
            "true",
            literal_dead(
                "invalid_match_value",
                "True",
                ", which is a JSON boolean: a record is matched on text or a number",
            ),
        ),
        (
            "''",
            literal_dead(
                "missing_match_value",
                "''",
                ", which this event lacks: add literal '' to the event or change the action's match rules",
            ),
        ),
        # (.nan and .inf literals are refused when the file is read: tests/actions/test_config.py)
        (
            '"a\\x1fb"',
            literal_dead("invalid_match_value", "'a\\x1fb'", ", which holds the control character U+001F"),
        ),
    ],
)
def test_literal_match_values(literal, expected):
    event = order()
    op = action_op(event, track_action(extra=f"match: {{Key__c: {{literal: {literal}}}}}"))
    if isinstance(expected, str):
        assert isinstance(op, RecordOp), op
        assert op.match_value == expected
    else:
        assert dead(op) == map_dead(event, *expected)


def test_match_fallbacks():
    a = track_action(extra="match: {Key__c: [properties.coupon, properties.nope, properties.count]}")
    op = action_op(order(), a)
    assert isinstance(op, RecordOp), op
    assert op.match_value == "3"
    event = order(count=None)
    assert dead(action_op(event, a)) == map_dead(
        event,
        "missing_match_value",
        "action 'orders' matches Order__c.Key__c on properties.coupon or properties.nope or "
        "properties.count, which this event lacks: add properties.coupon or properties.nope or "
        "properties.count to the event or change the action's match rules",
    )


MULTI = "match:\n  Email__c: properties.email\n  Region__c: properties.region\n  Year__c: properties.year"


def test_a_match_on_several_fields_joins_them():
    op = action_op(order(email=" A@B.example ", region="EU", year=2026.0), track_action(extra=MULTI))
    assert isinstance(op, RecordOp), op
    assert op.match_field == "Email__c\x1fRegion__c\x1fYear__c"
    assert op.match_value == "A@B.example\x1fEU\x1f2026"
    assert op.match_field == MATCH_SEPARATOR.join(["Email__c", "Region__c", "Year__c"])
    assert split_match(op.match_field, op.match_value) == (
        ("Email__c", "Region__c", "Year__c"),
        ("A@B.example", "EU", "2026"),
    )
    assert op.key == "orders|Order__c|a@b.example\x1feu\x1f2026"


@pytest.mark.parametrize(
    ("properties", "field", "source", "problem"),
    [
        ({"region": "EU", "year": 1}, "Email__c", "properties.email", "missing"),
        ({"email": "a@b", "year": 1}, "Region__c", "properties.region", "missing"),
        ({"email": "a@b", "region": "EU", "year": [2026]}, "Year__c", "properties.year", "array"),
        # The first rule that fails is reported.
        ({"email": True, "region": None}, "Email__c", "properties.email", "boolean"),
    ],
)
def test_a_match_on_several_fields_needs_every_value(properties, field, source, problem):
    event = order(**properties)
    if problem == "missing":
        expected = (
            "missing_match_value",
            f"action 'orders' matches Order__c.{field} on {source}, which this event lacks: add {source} to "
            "the event or change the action's match rules",
        )
    else:
        expected = (
            "invalid_match_value",
            f"action 'orders' matches Order__c.{field} on {source}, which is a JSON {problem}: a record is "
            "matched on text or a number",
        )
    assert dead(action_op(event, track_action(extra=MULTI))) == map_dead(event, *expected)


# --- presets ----------------------------------------------------------------------------------------------

LEAD = "name: identify_lead\ntrigger: identify\nobject: Lead\noperation: upsert\npreset: segment_lead\n"
ACCOUNT = "name: group_account\ntrigger: group\nobject: Account\noperation: upsert\npreset: segment_account\n"

IDENTIFY = {
    "type": "identify",
    "userId": "u-1",
    "messageId": "i-1",
    "timestamp": "2026-03-01T12:00:00+02:00",
    "traits": {
        "email": "  Peter@Initech.example ",
        "name": "Peter Gibbons",
        "company": {"name": "Initech", "id": 7},
        "title": "Engineer",
        "phone": "555-0100",
        "address": {"street": "1 Main St", "city": "Austin", "state": "TX", "zip": "x"},
        "plan": "pro",
        "tags": ["a", "b"],
        "lastName": "",
    },
}
GROUP = {
    "type": "group",
    "userId": "u-1",
    "groupId": 813,
    "messageId": "g-1",
    "traits": {"name": "Initech", "employees": 120, "city": "Austin", "industry": "Software"},
}


def without_action(op) -> RecordOp:
    assert isinstance(op, RecordOp), op
    return dataclasses.replace(op, action="", instance="")


@pytest.mark.parametrize(
    "traits",
    [
        IDENTIFY["traits"],
        {"email": "a@b.example"},
        {"email": "a@b.example", "name": "Prince", "company": "", "lastName": None},
    ],
)
def test_segment_lead_is_the_built_in_mapping(traits):
    event = parse({**IDENTIFY, "traits": traits})
    op = action_op(event, action(LEAD + "match: {Email: traits.email}"))
    lead = identify_to_lead(event)
    assert isinstance(lead, RecordOp), lead
    assert (op.action, op.instance) == ("identify_lead", "")
    assert (op.match_field, op.match_value) == (lead.match_field, lead.match_value)
    assert (op.fields, op.create_defaults) == (lead.fields, lead.create_defaults)
    assert without_action(op) == lead


def test_segment_lead_exact_op():
    op = action_op(parse(IDENTIFY), action(LEAD + "match: {Email: traits.email}"))
    assert op == RecordOp(
        sobject="Lead",
        match_field="Email",
        match_value="Peter@Initech.example",
        fields={
            "FirstName": "Peter",
            "LastName": "Gibbons",
            "Title": "Engineer",
            "Phone": "555-0100",
            "Email": "Peter@Initech.example",
            "Company": "Initech",
            "Street": "1 Main St",
            "City": "Austin",
            "State": "TX",
            "plan__c": "pro",
            "tags__c": '["a","b"]',
        },
        create_defaults={"LastName": "n/a", "Company": "n/a"},
        timestamp="2026-03-01T10:00:00.000Z",
        message_id="i-1",
        ref=EventRef(SOURCE, 3),
        action="identify_lead",
        instance="",
    )


def test_segment_lead_finds_the_email_in_context_traits():
    event = parse(
        {**IDENTIFY, "traits": {"name": "Peter Gibbons"}, "context": {"traits": {"email": " p@x.io"}}}
    )
    op = action_op(event, action(LEAD + "match: {email: traits.email}"))
    assert isinstance(op, RecordOp), op
    assert (op.match_field, op.match_value) == ("email", "p@x.io")
    assert op.fields == {"FirstName": "Peter", "LastName": "Gibbons", "Email": "p@x.io"}
    assert without_action(dataclasses.replace(op, match_field="Email")) == identify_to_lead(event)


@pytest.mark.parametrize(
    ("traits", "reason", "message"),
    [
        (
            {"name": "Peter"},
            "missing_email",
            "identify has no traits.email: a Lead cannot be matched without it; add traits.email",
        ),
        (
            {"email": "  "},
            "missing_email",
            "identify has no traits.email: a Lead cannot be matched without it; add traits.email",
        ),
        (
            {"email": 42},
            "invalid_email",
            "identify traits.email must be a string, not int: a Lead is matched by email",
        ),
    ],
)
def test_segment_lead_dead_letters_as_the_built_in_mapping(traits, reason, message):
    event = parse({**IDENTIFY, "traits": traits})
    letter = action_op(event, action(LEAD + "match: {Email: traits.email}"))
    assert dead(letter) == map_dead(event, reason, message)
    assert dead(letter) == dead(identify_to_lead(event))


def test_own_fields_add_to_and_override_the_preset():
    a = action(
        LEAD + "match: {Email: traits.email}\n"
        "fields:\n"
        "  title: traits.plan\n"  # overrides Title, whatever its case
        "  Phone: traits.mobile\n"  # missing: the preset's Phone stays
        "  LeadSource: {literal: Web}\n"  # added
        "  Street: traits.address\n"  # an object: JSON text over the preset's street
        "create_defaults: {Status: Open - Not Contacted}"
    )
    op = action_op(parse(IDENTIFY), a)
    assert isinstance(op, RecordOp), op
    assert op.fields == {
        "FirstName": "Peter",
        "LastName": "Gibbons",
        "Phone": "555-0100",
        "Email": "Peter@Initech.example",
        "Company": "Initech",
        "City": "Austin",
        "State": "TX",
        "plan__c": "pro",
        "tags__c": '["a","b"]',
        "title": "pro",
        "LeadSource": "Web",
        "Street": '{"street":"1 Main St","city":"Austin","state":"TX","zip":"x"}',
    }
    assert op.create_defaults == {"LastName": "n/a", "Company": "n/a", "Status": "Open - Not Contacted"}
    assert (op.match_field, op.match_value) == ("Email", "Peter@Initech.example")


def test_a_preset_matching_on_more_fields():
    a = action(LEAD + "match: {Segment_Id__c: userId, EMAIL: traits.email}")
    op = action_op(parse(IDENTIFY), a)
    assert isinstance(op, RecordOp), op
    assert (op.match_field, op.match_value) == ("Segment_Id__c\x1fEMAIL", "u-1\x1fPeter@Initech.example")
    event = parse({**IDENTIFY, "userId": None, "anonymousId": "anon"})
    assert dead(action_op(event, a)) == map_dead(
        event,
        "missing_match_value",
        "action 'identify_lead' matches Lead.Segment_Id__c on userId, which this event lacks: add userId to "
        "the event or change the action's match rules",
    )


def test_a_preset_match_rule_uses_its_own_source():
    event = parse({**IDENTIFY, "traits": {**IDENTIFY["traits"], "workEmail": "peter@work.example"}})
    op = action_op(event, action(LEAD + "match: {Email: traits.workEmail}"))
    assert isinstance(op, RecordOp), op
    assert op.match_value == "peter@work.example"
    # The record holds the email it is matched on, not the preset's traits.email.
    assert op.fields["Email"] == "peter@work.example"


@pytest.mark.parametrize("address_mapping", ["billing", "shipping", "both"])
def test_segment_account_is_the_built_in_mapping(address_mapping):
    event = parse(GROUP)
    op = action_op(event, action(ACCOUNT + "match: {AccountNumber: groupId}"), address_mapping)
    assert without_action(op) == group_to_account(event, address_mapping)
    assert op == RecordOp(
        sobject="Account",
        match_field="AccountNumber",
        match_value="813",
        fields={
            "AccountNumber": "813",
            "Name": "Initech",
            "NumberOfEmployees": 120,
            **{
                f"{p}City": "Austin"
                for p in {"billing": ["Billing"], "shipping": ["Shipping"]}.get(
                    address_mapping, ["Billing", "Shipping"]
                )
            },
            "industry__c": "Software",
        },
        create_defaults={},
        timestamp="",
        message_id="g-1",
        ref=EventRef(SOURCE, 3),
        action="group_account",
        instance="",
    )


def test_segment_account_dead_letters_as_the_built_in_mapping():
    event = parse({**GROUP, "traits": {"employees": 3}})
    letter = action_op(event, action(ACCOUNT + "match: {AccountNumber: groupId}"))
    assert dead(letter) == dead(group_to_account(event))
    assert letter.reason == "missing_name"


# --- instance, action names and record keys ------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "extra", "match", "instance"),
    [
        ("create", "fields: {Name: properties.title}", ("", ""), "m-1"),
        ("read", "match: {Name: properties.title}\nread_fields: [Id]", ("Name", "Big order"), "m-1"),
        ("update", "match: {Name: properties.title}", ("Name", "Big order"), ""),
        ("upsert", "match: {Name: properties.title}", ("Name", "Big order"), ""),
        ("delete", "match: {Name: properties.title}", ("Name", "Big order"), ""),
        ("upsert", "match: {Name: properties.title}\non_multiple: all", ("Name", "Big order"), ""),
    ],
)
def test_instance_is_set_for_per_event_operations(operation, extra, match, instance):
    op = action_op(order(), track_action(operation, extra))
    assert isinstance(op, RecordOp), op
    assert ((op.match_field, op.match_value), op.instance, op.action) == (match, instance, "orders")


def test_a_per_event_op_without_message_id_uses_where_it_was_read():
    event = dataclasses.replace(order(), message_id="", seq=7)
    op = action_op(event, track_action("create", "fields: {Name: properties.title}"))
    assert isinstance(op, RecordOp), op
    assert (op.instance, op.message_id, op.key) == ("events.jsonl:7", "", "orders|Order__c||@events.jsonl:7")


def test_record_keys_of_actions_and_events():
    upsert = track_action("upsert", "match: {Name: properties.title}", name="a_upsert")
    update = track_action("update", "match: {name: properties.title}", name="b_update")
    create = track_action("create", "fields: {Name: properties.title}", name="c_create")
    first, second = order(), parse({**ORDER, "messageId": "m-2", "properties": {"title": "BIG ORDER "}})
    keys = [action_op(e, a).key for a in (upsert, update, create) for e in (first, second)]
    assert keys == [
        "a_upsert|Order__c|big order",
        "a_upsert|Order__c|big order",
        "b_update|Order__c|big order",
        "b_update|Order__c|big order",
        "c_create|Order__c||@m-1",
        "c_create|Order__c||@m-2",
    ]


def test_a_preset_needs_its_own_key_only_when_the_action_matches_on_it():
    # Matched on UserId__c: an identify without an email still gets the preset's fields, without Email.
    traits = {k: v for k, v in IDENTIFY["traits"].items() if k != "email"}
    event = parse({**IDENTIFY, "traits": traits})
    op = action_op(event, action(LEAD + "match: {UserId__c: userId}"))
    assert isinstance(op, RecordOp), op
    assert (op.match_field, op.match_value) == ("UserId__c", "u-1")
    assert "Email" not in op.fields
    assert (op.fields["FirstName"], op.fields["LastName"], op.fields["Company"]) == (
        "Peter",
        "Gibbons",
        "Initech",
    )
