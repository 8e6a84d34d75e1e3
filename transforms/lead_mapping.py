"""identify → Lead: the seed's trait-to-field mapping, matched by Email."""

from typing import Any

from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from schemas.records import RecordOp
from transforms.trait_mapping import (
    address_parts,
    custom_fields,
    is_blank,
    map_dead_letter,
    mapped_fields,
    with_address_traits,
)

SOBJECT = "Lead"
MATCH_FIELD = "Email"

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

# Salesforce requires both on create; only filled when the Lead is created and the event lacks
# them, never written over a value already in Salesforce (the seed's Segment does overwrite).
LEAD_CREATE_DEFAULTS: dict[str, str] = {"LastName": "n/a", "Company": "n/a"}

# Traits with a rule of their own: never custom fields.
LEAD_SPECIAL_TRAITS = frozenset({"email", "name", "company"})
_LEAD_HANDLED = LEAD_SPECIAL_TRAITS.union(LEAD_FIELDS)


def identify_to_lead(event: SegmentEvent, require_email: bool = True) -> RecordOp | DeadLetter:
    """The Lead an identify asks for, matched by Email; DeadLetter (stage "map") without an email. Without
    `require_email` (an action matching on another field) the fields are mapped all the same, with Email
    among them when the identify has a usable one."""
    lead = lead_fields(event, require_email)
    if isinstance(lead, DeadLetter):
        return lead
    email, fields = lead
    return RecordOp(
        sobject=SOBJECT,
        match_field=MATCH_FIELD,
        match_value=email,
        fields=fields,
        create_defaults=dict(LEAD_CREATE_DEFAULTS),
        timestamp=event.timestamp,
        message_id=event.message_id,
        ref=event.ref,
    )


def lead_fields(event: SegmentEvent, require_email: bool = True) -> tuple[str, dict[str, Any]] | DeadLetter:
    """The email (match value, "" when there is none and none is required) and the fields of the Lead
    identify_to_lead makes of `event`, or its DeadLetter."""
    traits = event.traits
    email = traits.get("email")
    if not require_email:
        email = email.strip() if isinstance(email, str) else ""
    elif is_blank(email):
        return map_dead_letter(
            event,
            "missing_email",
            "identify has no traits.email: a Lead cannot be matched without it; add traits.email",
        )
    elif not isinstance(email, str):
        return map_dead_letter(
            event,
            "invalid_email",
            f"identify traits.email must be a string, not {type(email).__name__}: a Lead is matched by email",
        )
    else:
        email = email.strip()
    fields = split_name(traits.get("name"))
    fields.update(mapped_fields(traits, LEAD_FIELDS, keep=fields))
    if email:
        fields[MATCH_FIELD] = email
    if "company" in traits:
        fields.update(_company(traits["company"]))
    fields.update(address_parts(traits))
    fields.update(custom_fields(traits, with_address_traits(_LEAD_HANDLED, traits)))
    # A blank LastName or Company is no value: it would blank a Lead's required field on update,
    # and override the create default (REQUIRED_FIELD_MISSING) on create.
    for name in LEAD_CREATE_DEFAULTS:
        if name in fields and is_blank(fields[name]):
            del fields[name]
    return email, fields


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


def _company(company: Any) -> dict[str, Any]:
    # Destinations like Intercom need `company` as an object; the seed maps its `name`.
    if isinstance(company, dict):
        return {"Company": company["name"]} if "name" in company else {}
    return {"Company": company}
