"""Table tests for fit_item: one merged op fitted for update and create, in one pass over its fields.

Each case states the whole result. The same cases, and every mix of their fields, are also checked
against the rule fit_item's docstring gives: fitting.fit_fields for either a create or an update, split
by what an update may write, the create defaults fitted for a create where no event value is left.
"""

import itertools

import pytest

from salesforce.upsert import UpsertItem
from schemas.fields import ObjectMeta
from schemas.records import MergedOp
from tests.unit.conftest import f
from transforms.batch_writer import RESERVED_FIELDS, FittedItem, fit_item
from transforms.fitting import fit_fields

LEAD = ObjectMeta.from_describe(
    {
        "name": "Lead",
        "fields": [
            f("Id", "id", length=18, createable=False, updateable=False, nillable=False),
            f("Email", "email", length=80),
            f("FirstName", "string", length=40),
            f("LastName", "string", length=80, nillable=False),
            f("Company", "string", length=255, nillable=False),
            f("Title", "string", length=5),
            f("NumberOfEmployees", "int", digits=8),
            f("Rating", "picklist", length=255, restrictedPicklist=True, picklistValues=[{"value": "Hot"}]),
            f("IsConverted", "boolean", createable=False, updateable=False, nillable=False),
            f("Source__c", "string", length=10, updateable=False, custom=True),
            f("Seen__c", "datetime", custom=True),
            f("Beamforce_Key__c", "string", length=255, custom=True, externalId=True, unique=True),
            f("Beamforce_Field_Times__c", "textarea", length=131072, custom=True),
        ],
    }
)
DEFAULTS = {"LastName": "n/a", "Company": "n/a"}
NO_NOTES = {"trimmed": (), "converted": (), "dropped_type": (), "dropped_unknown": (), "dropped_readonly": ()}


def op(fields, defaults=DEFAULTS, times=None, match_value="a@example.com"):
    return MergedOp("Lead", "Email", match_value, fields, dict(defaults), times or {}, ())


def notes(**changed):
    return {**NO_NOTES, **changed}


CASES = [
    pytest.param(
        op({"Email": "a@example.com", "LastName": "Ada", "Company": "Acme"}),
        {"Email": "a@example.com", "LastName": "Ada", "Company": "Acme"},
        {},
        notes(),
        id="event values displace every default",
    ),
    pytest.param(
        op({"Email": "a@example.com", "Company": ["A", "B"]}),
        {"Email": "a@example.com"},
        {"LastName": "n/a", "Company": "n/a"},
        notes(dropped_type=("Company",)),
        id="a wrong-typed company leaves its default",
    ),
    pytest.param(
        op({"email": "a@example.com", "company": None, "FIRSTNAME": None}),
        {"Email": "a@example.com", "FirstName": None},
        {"LastName": "n/a", "Company": "n/a"},
        notes(dropped_type=("Company",)),
        id="org casing; null clears a nillable field, is dropped on a required one",
    ),
    pytest.param(
        op({"Title": "Head of Sales", "NumberOfEmployees": "12", "Rating": "hot"}, defaults={}),
        {"Title": "Head ", "NumberOfEmployees": 12, "Rating": "Hot"},
        {},
        notes(trimmed=("Title",), converted=("NumberOfEmployees", "Rating")),
        id="trimmed and converted",
    ),
    pytest.param(
        op({"Source__c": "web", "IsConverted": True, "Id": "00Q", "Nope__c": 1, "nope__c": 2}),
        {},
        {"Source__c": "web", "LastName": "n/a", "Company": "n/a"},
        notes(dropped_unknown=("Nope__c", "nope__c"), dropped_readonly=("IsConverted", "Id")),
        id="create-only, read-only and unknown fields",
    ),
    pytest.param(
        op({"Beamforce_Key__c": "x", "beamforce_field_times__c": "{}", "LastName": "Ada"}, defaults={}),
        {"LastName": "Ada"},
        {},
        notes(dropped_readonly=("Beamforce_Key__c", "beamforce_field_times__c")),
        id="the writer's own fields are never taken from an event",
    ),
    pytest.param(
        op({"Company": "Acme", "company": ["x"], "COMPANY": "Acme Ltd"}, defaults={"company": "n/a"}),
        {"Company": "Acme Ltd"},
        {},
        notes(dropped_type=("Company",)),
        id="one field in several spellings: the last usable value, each report once",
    ),
    pytest.param(
        op(
            {"Rating": "Cold"},
            defaults={"Rating": "Hot", "NumberOfEmployees": "many", "Nope__c": 1, "Id": "x"},
        ),
        {},
        {"Rating": "Hot"},
        notes(dropped_type=("Rating",)),
        id="defaults are fitted for a create; unusable ones are left out",
    ),
    pytest.param(
        op({"Seen__c": "2026-01-02T03:04:05.678912+01:00"}, defaults={"Source__c": "a much too long source"}),
        {"Seen__c": "2026-01-02T02:04:05.678+0000"},
        {"Source__c": "a much too"},
        notes(converted=("Seen__c",)),
        id="a default is trimmed to its field",
    ),
]


@pytest.mark.parametrize(("merged", "fields", "create_defaults", "expected_notes"), CASES)
def test_fit_item(merged, fields, create_defaults, expected_notes):
    fitted = fit_item(merged, LEAD)
    assert fitted == FittedItem(UpsertItem(merged.match_value, fields, create_defaults), expected_notes)
    # Key order too: a Bulk job's columns follow it.
    assert list(fitted.item.fields) == list(fields)
    assert list(fitted.item.create_defaults) == list(create_defaults)


def test_field_times_take_the_orgs_names_and_drop_unknown_fields():
    merged = op(
        {"email": "a@example.com", "Nope__c": 1, "Company": ["x"]},
        times={"email": "2026-01-01T00:00:00.000Z", "Nope__c": "t", "Company": "u", "title": "v"},
    )
    assert fit_item(merged, LEAD).item.field_times == {
        "Email": "2026-01-01T00:00:00.000Z",
        "Company": "u",
        "Title": "v",
    }


def test_a_match_value_longer_than_its_field_is_an_error_not_an_item():
    fitted = fit_item(op({"Email": "x" * 81}, match_value="x" * 81), LEAD)
    assert fitted.item is None
    assert fitted.error[0] == "STRING_TOO_LONG"
    assert fitted.error[1].startswith("Lead.Email holds 80 characters and the event's value has 81")


def by_the_rule(merged: MergedOp, meta: ObjectMeta) -> FittedItem:
    """fit_item as its docstring defines it, composed of fit_fields calls."""
    reserved = tuple(k for k in merged.fields if k.lower() in RESERVED_FIELDS)
    wanted = {k: v for k, v in merged.fields.items() if k.lower() not in RESERVED_FIELDS}
    fitted = fit_fields(wanted, meta, for_create=None)
    update = {k: v for k, v in fitted.fields.items() if meta.get(k).updateable}
    create_only = {k: v for k, v in fitted.fields.items() if not meta.get(k).updateable}
    written = {k.lower() for k in fitted.fields if meta.get(k).createable}
    defaults = {k: v for k, v in merged.create_defaults.items() if k.lower() not in written}
    create_only.update(fit_fields(defaults, meta, for_create=True).fields)
    once = lambda names: tuple(dict.fromkeys(names))  # noqa: E731
    times = {meta.get(k).name: t for k, t in merged.field_times.items() if meta.get(k) is not None}
    item_notes = {
        "trimmed": once(fitted.trimmed),
        "converted": once(fitted.converted),
        "dropped_type": once(fitted.dropped_type),
        "dropped_unknown": once(fitted.dropped_unknown),
        "dropped_readonly": reserved + fitted.dropped_readonly,
    }
    return FittedItem(UpsertItem(merged.match_value, update, create_only, field_times=times), item_notes)


def test_every_mix_of_the_cases_fields_fits_by_the_rule():
    """Pairs of the cases' field sets, each with each case's defaults: the same result, keys in order."""
    field_sets = [case.values[0].fields for case in CASES]
    default_sets = [case.values[0].create_defaults for case in CASES]
    checked = 0
    for first, second in itertools.product(field_sets, repeat=2):
        fields = {**first, **second}
        times = {name: f"t{n}" for n, name in enumerate(fields)}
        for defaults in default_sets:
            merged = op(fields, defaults, times)
            fitted, expected = fit_item(merged, LEAD), by_the_rule(merged, LEAD)
            assert fitted == expected, merged
            assert list(fitted.item.fields) == list(expected.item.fields)
            assert list(fitted.item.create_defaults) == list(expected.item.create_defaults)
            checked += 1
    assert checked == len(CASES) ** 3
