"""identify → Lead: the seed's trait-to-field mapping, plus the helpers the Account mapping shares."""

import json
from collections.abc import Mapping
from typing import Any

from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from schemas.records import RecordOp

STAGE = "map"
SOBJECT = "Lead"
MATCH_FIELD = "Email"
CUSTOM_SUFFIX = "__c"

# Trait (Segment's spec, case-sensitive) -> Lead field. email, name, company and the address
# are handled by their own rules below.
LEAD_FIELDS: dict[str, str] = {
    "firstName": "FirstName",
    "lastName": "LastName",
    "title": "Title",
    "phone": "Phone",
    "website": "Website",
    "description": "Description",
    "rating": "Rating",
    "leadSource": "LeadSource",
    "industry": "Industry",
    "employees": "NumberOfEmployees",
}

# Address part (flat trait or key of the `address` object) -> field name without prefix.
ADDRESS_PARTS: dict[str, str] = {
    "street": "Street",
    "city": "City",
    "state": "State",
    "postalCode": "PostalCode",
    "country": "Country",
}

# Salesforce requires both on create; only filled when the Lead is created and the event lacks
# them, never written over a value already in Salesforce (the seed's Segment does overwrite).
LEAD_CREATE_DEFAULTS: dict[str, str] = {"LastName": "n/a", "Company": "n/a"}

# Traits with a rule of their own: never custom fields.
LEAD_SPECIAL_TRAITS = frozenset({"email", "name", "company"})


def identify_to_lead(event: SegmentEvent) -> RecordOp | DeadLetter:
    """The Lead an identify asks for, matched by Email; DeadLetter (stage "map") without an email."""
    traits = event.traits
    email = traits.get("email")
    if email is None or (isinstance(email, str) and not email.strip()):
        return _dead_letter(
            event,
            "missing_email",
            "identify has no traits.email: a Lead cannot be matched without it; add traits.email",
        )
    if not isinstance(email, str):
        return _dead_letter(
            event,
            "invalid_email",
            f"identify traits.email must be a string, not {type(email).__name__}: a Lead is matched by email",
        )
    email = email.strip()
    fields: dict[str, Any] = {}
    fields.update(split_name(traits.get("name")))
    fields.update(mapped_fields(traits, LEAD_FIELDS, keep=fields))
    fields[MATCH_FIELD] = email
    if "company" in traits:
        fields.update(_company(traits["company"]))
    fields.update(address_parts(traits))
    handled = LEAD_SPECIAL_TRAITS | LEAD_FIELDS.keys() | address_traits(traits)
    fields.update(custom_fields(traits, handled))
    return RecordOp(
        sobject=SOBJECT,
        match_field=MATCH_FIELD,
        match_value=email,
        fields=fields,
        create_defaults=dict(LEAD_CREATE_DEFAULTS),
        timestamp=event.timestamp,
        message_id=event.message_id,
        event=event.raw,
    )


def split_name(name: Any) -> dict[str, str]:
    """`name` split as the seed's Segment does: first word → FirstName, the rest → LastName.

    A one-word name is the LastName (Salesforce requires a LastName, not a FirstName).
    A name that is not a string is not split.
    """
    if not isinstance(name, str):
        return {}
    words = name.split()
    if not words:
        return {}
    if len(words) == 1:
        return {"LastName": words[0]}
    return {"FirstName": words[0], "LastName": " ".join(words[1:])}


def mapped_fields(
    traits: Mapping[str, Any], table: Mapping[str, str], keep: Mapping[str, Any]
) -> dict[str, Any]:
    """Fields from the traits `table` names; a null trait does not replace a value in `keep`.

    Explicit `firstName: null` next to `name: "Peter Gibbons"` means "not given", not "clear".
    """
    out: dict[str, Any] = {}
    for trait, field in table.items():
        if trait in traits and not (traits[trait] is None and field in keep):
            out[field] = traits[trait]
    return out


def address_traits(traits: Mapping[str, Any]) -> set[str]:
    """The traits the address rules consume: flat parts, and `address` when it is an object."""
    used = {part for part in ADDRESS_PARTS if part in traits}
    if isinstance(traits.get("address"), dict):
        used.add("address")
    return used


def address_parts(traits: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Address fields (`prefix` + Street, City, ...) from flat traits and the `address` object.

    The object wins part by part (the seed's second call has flat state 'California' and
    address.state 'RI': State is 'RI'); flat traits fill the parts the object lacks or leaves null.
    Keys of the object that are not address parts are ignored: Salesforce has no place for them.
    """
    parts = {part: traits[part] for part in ADDRESS_PARTS if part in traits}
    obj = traits.get("address")
    if isinstance(obj, dict):
        parts.update(
            {p: obj[p] for p in ADDRESS_PARTS if p in obj and (obj[p] is not None or p not in parts)}
        )
    return {prefix + ADDRESS_PARTS[part]: value for part, value in parts.items()}


def custom_fields(traits: Mapping[str, Any], handled: set[str] | frozenset[str]) -> dict[str, Any]:
    """Every trait not in `handled` as the custom field `<trait>__c`, casing kept (the seed)."""
    return {custom_field_name(t): custom_field_value(v) for t, v in traits.items() if t not in handled}


def custom_field_name(trait: str) -> str:
    """`<trait>__c`; a trait already named like a custom field is used as it is.

    Salesforce forbids `__` inside a custom field's name, so `x__c__c` could never exist.
    """
    return trait if trait.lower().endswith(CUSTOM_SUFFIX) else trait + CUSTOM_SUFFIX


def custom_field_value(value: Any) -> Any:
    """Scalars as they are; objects and lists as compact JSON text, the only lossless form a field takes."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _company(company: Any) -> dict[str, Any]:
    # Destinations like Intercom need `company` as an object; the seed maps its `name`.
    if isinstance(company, dict):
        return {"Company": company["name"]} if "name" in company else {}
    return {"Company": company}


def _dead_letter(event: SegmentEvent, reason: str, message: str) -> DeadLetter:
    return DeadLetter.of(STAGE, reason, message, event.raw, source=event.source)
