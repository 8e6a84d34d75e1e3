"""Table tests for the trait rules the Lead and Account mappings share."""

import pytest

from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from transforms.trait_mapping import (
    address_parts,
    custom_field_name,
    custom_field_value,
    custom_fields,
    is_blank,
    map_dead_letter,
    mapped_fields,
    with_address_traits,
)


@pytest.mark.parametrize(
    "value, blank",
    [(None, True), ("", True), (" \t\n", True), ("a", False), (" a ", False), (0, False), (False, False)],
)
def test_is_blank(value, blank):
    assert is_blank(value) is blank


@pytest.mark.parametrize(
    "traits, keep, fields",
    [
        ({"title": "VP", "other": 1}, {}, {"Title": "VP"}),
        # A null trait clears a field nothing else set, but never replaces a value in `keep`.
        ({"title": None}, {}, {"Title": None}),
        ({"title": None}, {"Title": "from name"}, {}),
        ({"title": "VP"}, {"Title": "from name"}, {"Title": "VP"}),
    ],
)
def test_mapped_fields(traits, keep, fields):
    assert mapped_fields(traits, {"title": "Title"}, keep) == fields


PARTS = {"street", "city", "state", "postalCode", "country"}


@pytest.mark.parametrize(
    "traits, used",
    [
        ({"city": "x", "name": "n"}, PARTS),
        ({"address": {"city": "x"}, "state": "RI"}, PARTS | {"address"}),
        # An `address` that is not an object is no address: it becomes a custom field.
        ({"address": "1 Main St"}, PARTS),
        ({}, PARTS),
    ],
)
def test_with_address_traits(traits, used):
    assert with_address_traits(frozenset({"email"}), traits) == used | {"email"}


def test_with_address_traits_leaves_the_other_traits_to_custom_fields():
    traits = {"email": "a@b.c", "city": "x", "address": "1 Main St", "plan": "pro"}
    handled = with_address_traits(frozenset({"email"}), traits)
    assert custom_fields(traits, handled) == {"address__c": "1 Main St", "plan__c": "pro"}


@pytest.mark.parametrize(
    "traits, prefix, fields",
    [
        ({"street": "1 Main"}, "Billing", {"BillingStreet": "1 Main"}),
        ({"address": {"postalCode": "02818", "country": "US"}}, "", {"PostalCode": "02818", "Country": "US"}),
        ({"address": ["x"]}, "", {}),
    ],
)
def test_address_parts(traits, prefix, fields):
    assert address_parts(traits, prefix) == fields


@pytest.mark.parametrize(
    "trait, name",
    [
        ("testProp", "testProp__c"),
        ("snake_case", "snake_case__c"),
        ("x__c", "x__c"),
        ("X__C", "X__C"),
        ("c", "c__c"),
    ],
)
def test_custom_field_name(trait, name):
    assert custom_field_name(trait) == name


@pytest.mark.parametrize(
    "value, expected",
    [(1, 1), (1.5, 1.5), ("s", "s"), (True, True), (None, None), ([1, "a"], '[1,"a"]'), ({}, "{}")],
)
def test_custom_field_value(value, expected):
    assert custom_field_value(value) == expected


def test_custom_fields_skip_handled_traits():
    traits = {"email": "a@b.c", "plan": "pro", "tags": ["a"], "x__c": 1}
    assert custom_fields(traits, {"email"}) == {"plan__c": "pro", "tags__c": '["a"]', "x__c": 1}


def test_map_dead_letter_carries_the_event_and_its_source():
    event = SegmentEvent("identify", "m1", "t", raw={"messageId": "m1"}, source="in/a.jsonl")
    dl = map_dead_letter(event, "missing_email", "no email")
    assert isinstance(dl, DeadLetter)
    assert (dl.stage, dl.reason, dl.message, dl.retryable, dl.event, dl.source) == (
        "map",
        "missing_email",
        "no email",
        False,
        {"messageId": "m1"},
        "in/a.jsonl",
    )
