"""Table tests for group → Account, including the seed's group call."""

import json

import pytest

from schemas.dead_letter import DeadLetter
from schemas.events import EventRef, SegmentEvent
from schemas.records import RecordOp
from tests.seed_examples import SEED_ACCOUNT, SEED_GROUP
from transforms.account_mapping import ADDRESS_MAPPINGS, account_fields, group_to_account
from transforms.parsing import parse_line

SEED_SHIPPING = {k.replace("Billing", "Shipping"): v for k, v in SEED_ACCOUNT.items()}


def group(traits, group_id="g1"):
    obj = {"type": "group", "userId": "u", "messageId": "m", "groupId": group_id, "traits": traits}
    return parse_line(json.dumps(obj), "src")


def unusable_name(kind):
    return (
        f"group traits.name is a JSON {kind}, not a name: Salesforce requires an Account Name as text; "
        "set traits.name to the company's name"
    )


def test_the_seeds_group_call():
    event = parse_line(SEED_GROUP, "seed/group.jsonl")
    assert group_to_account(event) == RecordOp(
        sobject="Account",
        match_field="AccountNumber",
        match_value="813",
        fields=SEED_ACCOUNT,
        create_defaults={},
        timestamp="2026-11-01T10:10:00.000Z",
        message_id="seed-group-1",
        ref=EventRef("seed/group.jsonl", 0),
    )


@pytest.mark.parametrize(
    "address_mapping, fields",
    [
        ("billing", SEED_ACCOUNT),
        ("shipping", SEED_SHIPPING),
        ("both", {**SEED_ACCOUNT, **SEED_SHIPPING}),
    ],
)
def test_address_mapping(address_mapping, fields):
    assert group_to_account(parse_line(SEED_GROUP), address_mapping).fields == fields


def test_address_mappings_are_the_three_choices():
    assert ADDRESS_MAPPINGS == ("billing", "shipping", "both")


@pytest.mark.parametrize("address_mapping", ["Billing", "mailing", ""])
def test_bad_address_mapping_raises(address_mapping):
    with pytest.raises(ValueError, match="address_mapping must be one of billing, shipping, both"):
        group_to_account(parse_line(SEED_GROUP), address_mapping)


@pytest.mark.parametrize(
    "traits, group_id, fields",
    [
        ({"name": "Initech"}, "g1", {"Name": "Initech", "AccountNumber": "g1"}),
        # groupId as a JSON number, and with surrounding blanks.
        ({"name": "Initech"}, 813, {"Name": "Initech", "AccountNumber": "813"}),
        ({"name": "Initech"}, " 813 ", {"Name": "Initech", "AccountNumber": "813"}),
        # Flat address traits, and the object winning part by part.
        (
            {"name": "I", "city": "Austin", "state": "TX", "address": {"state": "RI"}},
            "g1",
            {"Name": "I", "AccountNumber": "g1", "BillingCity": "Austin", "BillingState": "RI"},
        ),
        # Only what the seed maps is standard: industry, plan, ... become custom fields.
        (
            {
                "name": "I",
                "industry": "Software",
                "plan": "enterprise",
                "tags": ["a"],
                "createdAt": "2020-01-01",
            },
            "g1",
            {
                "Name": "I",
                "AccountNumber": "g1",
                "industry__c": "Software",
                "plan__c": "enterprise",
                "tags__c": '["a"]',
                "createdAt__c": "2020-01-01",
            },
        ),
        (
            {"name": "I", "employees": "4"},
            "g1",
            {"Name": "I", "AccountNumber": "g1", "NumberOfEmployees": "4"},
        ),
        ({"name": "I", "Region__c": "EMEA"}, "g1", {"Name": "I", "AccountNumber": "g1", "Region__c": "EMEA"}),
        # A number is a name as Segment's JavaScript writes it.
        ({"name": 42}, "g1", {"Name": "42", "AccountNumber": "g1"}),
        ({"name": 4.0}, "g1", {"Name": "4", "AccountNumber": "g1"}),
        ({"name": 1e21}, "g1", {"Name": "1e+21", "AccountNumber": "g1"}),
        ({"name": -0.5}, "g1", {"Name": "-0.5", "AccountNumber": "g1"}),
    ],
)
def test_traits_to_account_fields(traits, group_id, fields):
    op = group_to_account(group(traits, group_id))
    assert isinstance(op, RecordOp)
    assert (op.fields, op.match_value, op.create_defaults) == (fields, fields["AccountNumber"], {})


@pytest.mark.parametrize(
    "traits, group_id, reason, message",
    [
        (
            {},
            "g1",
            "missing_name",
            "group has no traits.name: Salesforce requires an Account Name; add traits.name",
        ),
        (
            {"name": None},
            "g1",
            "missing_name",
            "group has no traits.name: Salesforce requires an Account Name; add traits.name",
        ),
        (
            {"name": " "},
            "g1",
            "missing_name",
            "group has no traits.name: Salesforce requires an Account Name; add traits.name",
        ),
        (
            {"Name": "Initech"},
            "g1",
            "missing_name",
            "group has no traits.name: Salesforce requires an Account Name; add traits.name",
        ),
        ({"name": ["Initech"]}, "g1", "missing_name", unusable_name("array")),
        ({"name": {"name": "Initech"}}, "g1", "missing_name", unusable_name("object")),
        ({"name": True}, "g1", "missing_name", unusable_name("boolean")),
        ({"name": False}, "g1", "missing_name", unusable_name("boolean")),
        ({"name": []}, "g1", "missing_name", unusable_name("array")),
        (
            {"name": ""},
            "g1",
            "missing_name",
            "group has no traits.name: Salesforce requires an Account Name; add traits.name",
        ),
        (
            {"name": "\t\n"},
            "g1",
            "missing_name",
            "group has no traits.name: Salesforce requires an Account Name; add traits.name",
        ),
    ],
)
def test_group_dead_letters(traits, group_id, reason, message):
    event = group(traits, group_id)
    result = group_to_account(event)
    assert isinstance(result, DeadLetter)
    assert (result.stage, result.reason, result.message, result.event, result.source) == (
        "map",
        reason,
        message,
        event.raw,
        "src",
    )


@pytest.mark.parametrize("name", [float("inf"), float("nan")])
def test_a_name_that_is_not_a_finite_number_is_a_dead_letter(name):
    # Only a hand-built event can hold one: the parser dead-letters numbers a double cannot hold.
    event = SegmentEvent(type="group", message_id="m", timestamp="", group_id="g", traits={"name": name})
    result = group_to_account(event)
    assert (result.reason, result.message) == ("missing_name", unusable_name("number that is not finite"))


def test_group_without_group_id_is_a_dead_letter():
    # The parser already dead-letters these; the mapping does not rely on it.
    event = SegmentEvent(type="group", message_id="m", timestamp="", traits={"name": "I"})
    result = group_to_account(event)
    assert (result.reason, result.message) == (
        "missing_group_id",
        "group has no groupId: an Account is matched by AccountNumber = groupId",
    )


@pytest.mark.parametrize("address_mapping", ADDRESS_MAPPINGS)
def test_account_fields_are_the_accounts(address_mapping):
    event = group({"name": "Initech", "city": "Austin", "address": {"state": "TX"}, "plan": "pro"})
    account = group_to_account(event, address_mapping)
    assert account_fields(event, address_mapping) == (account.match_value, account.fields)


def test_account_fields_dead_letter_is_the_accounts():
    event = group({"plan": "pro"})
    assert account_fields(event).reason == group_to_account(event).reason == "missing_name"
