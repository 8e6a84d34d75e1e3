"""Checks custom actions against the org's describe: the objects and fields exist and can do what is asked."""

import difflib
from collections.abc import Callable

from actions.config import Action, ActionsConfig, ActionsConfigError, format_problem
from salesforce.errors import SalesforceApiError
from schemas.fields import FieldMeta, ObjectMeta
from transforms.fitting import fit_fields

# Fields Salesforce fills in itself: no event holds their value, so a match on them never finds a record.
GENERATED_FIELDS = frozenset(
    {
        "id",
        "createddate",
        "lastmodifieddate",
        "systemmodstamp",
        "createdbyid",
        "lastmodifiedbyid",
        "isdeleted",
    }
)
_MATCH_FIX = "match on a field your data holds, e.g. an External ID field"


def check_against_org(config: ActionsConfig, describe: Callable[[str], ObjectMeta]) -> None:
    """Raises one ActionsConfigError with every problem the org's describe shows in `config`.

    `describe(name)` gives the object's metadata and raises SalesforceApiError NOT_FOUND for an object the
    org does not have (or the API user cannot see); any other error propagates. Each object is described once.
    """
    metas: dict[str, ObjectMeta | None] = {}
    problems: list[str] = []
    for action in config.actions:
        key = action.object.lower()
        if key not in metas:
            try:
                metas[key] = describe(action.object)
            except SalesforceApiError as exc:
                if exc.error_code != "NOT_FOUND":
                    raise
                metas[key] = None
        problems.extend(_action_problems(config.path, action, metas[key]))
    if problems:
        raise ActionsConfigError(problems)


def _action_problems(path: str, action: Action, meta: ObjectMeta | None) -> list[str]:
    out: list[str] = []

    def add(key: str, problem: str, fix: str, field: str | None = None) -> None:
        out.append(format_problem(path, action.line_of(key), problem, fix, action.name, field))

    if meta is None:
        add(
            "",
            f"object '{action.object}' does not exist in the org, or the API user cannot see it",
            "use the object's API name as Setup > Object Manager shows it (a custom object ends in __c)",
        )
        return out
    obj = meta.name

    def lookup(key: str, name: str) -> FieldMeta | None:
        fm = meta.get(name)
        if fm is None:
            add(key, f"{obj} has no field '{name}'", _unknown_field_fix(meta, name), name)
        return fm

    for name, _ in action.match:
        fm = lookup(f"match.{name}", name)
        why = _generated(fm) if fm is not None else None
        if why is not None:
            add(
                f"match.{name}",
                f"{obj}.{fm.name} is {why}: Salesforce sets it, not your data",
                _MATCH_FIX,
                name,
            )
        elif fm is not None and not fm.filterable:
            add(
                f"match.{name}",
                f"{obj}.{fm.name} cannot be matched on: a query cannot filter by a {fm.type} field",
                _MATCH_FIX,
                name,
            )
    for name, _ in action.fields:
        fm = lookup(f"fields.{name}", name)
        if fm is not None and not _writable(fm, action.operation):
            add(
                f"fields.{name}",
                f"{obj}.{fm.name} cannot be written by {action.operation}: {_why_not(action.operation)}",
                "remove it from fields",
                name,
            )
    for name, value in action.create_defaults:
        fm = lookup(f"create_defaults.{name}", name)
        if fm is not None and not fm.createable:
            add(
                f"create_defaults.{name}",
                f"{obj}.{fm.name} cannot be set when a record is created: it is not createable",
                "remove it from create_defaults",
                name,
            )
        elif fm is not None and fit_fields({fm.name: value}, meta, for_create=True).dropped_type:
            # The writers would drop it on every create, as they drop an event's wrong-typed value.
            add(
                f"create_defaults.{name}",
                f"{obj}.{fm.name} is a {fm.type} field, and {value!r} is not a value it can hold",
                _value_fix(fm),
                name,
            )
    if action.idempotency_field is not None:
        name = action.idempotency_field
        fm = lookup("idempotency_field", name)
        if fm is not None and not fm.external_id:
            add(
                "idempotency_field",
                f"{obj}.{fm.name} is not an External ID field",
                f"mark it External ID in Setup (Object Manager > {obj} > Fields & Relationships > {fm.name})",
                name,
            )
        if fm is not None and not fm.createable:
            add(
                "idempotency_field",
                f"{obj}.{fm.name} cannot be set on create: it is not createable",
                "name a createable External ID field, e.g. a custom text field Beamforce_Message_Id__c",
                name,
            )
    for name in action.read_fields:
        lookup(f"read_fields.{name}", name)
    return out


# An example value per describe type, for the fix of a create default of the wrong type.
_EXAMPLES = {
    "int": "250",
    "long": "250",
    "double": "12.5",
    "currency": "12.5",
    "percent": "12.5",
    "boolean": "true",
    "date": "2026-01-31",
    "datetime": "2026-01-31T09:00:00Z",
}


def _value_fix(fm: FieldMeta) -> str:
    if fm.restricted_picklist and fm.picklist_values:
        shown = ", ".join(fm.picklist_values[:10]) + (", ..." if len(fm.picklist_values) > 10 else "")
        return f"give one of its values: {shown}"
    if fm.type in _EXAMPLES:
        return f"give a {fm.type} value, e.g. {_EXAMPLES[fm.type]}"
    return f"give a value a {fm.type} field takes, or remove it from create_defaults"


def _unknown_field_fix(meta: ObjectMeta, name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(meta.fields), n=1)
    if close:
        return f"did you mean '{meta.fields[close[0]].name}'?"
    return (
        f"use the field's API name as Setup > Object Manager > {meta.name} > Fields & Relationships shows it "
        "(a custom field ends in __c)"
    )


def _generated(fm: FieldMeta) -> str | None:
    """Why Salesforce, not the data, sets the field's value; None when the data does."""
    if fm.name.lower() == "id":
        return "the record ID"
    if fm.name.lower() in GENERATED_FIELDS:
        return "a system field"
    if fm.auto_number:
        return "an auto-number field"
    if fm.calculated:
        return "a formula field"
    return None


def _writable(fm: FieldMeta, operation: str) -> bool:
    if operation == "create":
        return fm.createable
    if operation == "update":
        return fm.updateable
    return fm.createable or fm.updateable  # upsert: one of its two paths can write it


def _why_not(operation: str) -> str:
    if operation == "create":
        return "it is not createable"
    if operation == "update":
        return "it is not updateable"
    return "it is neither createable nor updateable"
