"""group → Account: the seed's mapping, matched by AccountNumber = groupId."""

import math
from typing import Any

from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from schemas.records import RecordOp
from transforms.parsing import js_number_text, json_kind
from transforms.trait_mapping import (
    address_parts,
    custom_fields,
    is_blank,
    map_dead_letter,
    mapped_fields,
    with_address_traits,
)

SOBJECT = "Account"
MATCH_FIELD = "AccountNumber"

# Where the address goes: the seed's Segment setting (billing by default, shipping, or both).
ADDRESS_MAPPINGS = ("billing", "shipping", "both")
ADDRESS_PREFIXES: dict[str, tuple[str, ...]] = {
    "billing": ("Billing",),
    "shipping": ("Shipping",),
    "both": ("Billing", "Shipping"),
}

# Exactly the traits the seed's example maps; every other trait (industry too) is a custom field.
ACCOUNT_FIELDS: dict[str, str] = {
    "name": "Name",
    "phone": "Phone",
    "website": "Website",
    "description": "Description",
    "employees": "NumberOfEmployees",
}
_ACCOUNT_HANDLED = frozenset(ACCOUNT_FIELDS)


def group_to_account(event: SegmentEvent, address_mapping: str = "billing") -> RecordOp | DeadLetter:
    """The Account a group asks for; DeadLetter (stage "map") without a groupId or a usable traits.name.

    Raises ValueError for an `address_mapping` that is not one of ADDRESS_MAPPINGS.
    """
    account = account_fields(event, address_mapping)
    if isinstance(account, DeadLetter):
        return account
    group_id, fields = account
    return RecordOp(
        sobject=SOBJECT,
        match_field=MATCH_FIELD,
        match_value=group_id,
        fields=fields,
        timestamp=event.timestamp,
        message_id=event.message_id,
        ref=event.ref,
    )


def account_fields(
    event: SegmentEvent, address_mapping: str = "billing"
) -> tuple[str, dict[str, Any]] | DeadLetter:
    """The groupId (match value) and the fields of the Account group_to_account makes of `event`, or its
    DeadLetter; ValueError as group_to_account."""
    if address_mapping not in ADDRESS_PREFIXES:
        raise ValueError(
            f"address_mapping must be one of {', '.join(ADDRESS_MAPPINGS)}, not {address_mapping!r}"
        )
    # str(): the parser gives text, but a hand-built event may carry the JSON number.
    group_id = "" if event.group_id is None else str(event.group_id).strip()
    if not group_id:
        return map_dead_letter(
            event,
            "missing_group_id",
            "group has no groupId: an Account is matched by AccountNumber = groupId",
        )
    traits = event.traits
    name = traits.get("name")
    if is_blank(name):
        return map_dead_letter(
            event,
            "missing_name",
            "group has no traits.name: Salesforce requires an Account Name; add traits.name",
        )
    name_text = account_name(name)
    if name_text is None:
        # Caught here, not by Salesforce: a list or `true` as the Name would fail every write of it.
        kind = "number that is not finite" if isinstance(name, float) else json_kind(name)
        return map_dead_letter(
            event,
            "missing_name",
            f"group traits.name is a JSON {kind}, not a name: Salesforce requires an Account Name as text; "
            "set traits.name to the company's name",
        )
    fields: dict[str, Any] = {MATCH_FIELD: group_id}
    fields.update(mapped_fields({**traits, "name": name_text}, ACCOUNT_FIELDS, keep=fields))
    for prefix in ADDRESS_PREFIXES[address_mapping]:
        fields.update(address_parts(traits, prefix))
    fields.update(custom_fields(traits, with_address_traits(_ACCOUNT_HANDLED, traits)))
    return group_id, fields


def account_name(name: Any) -> str | None:
    """traits.name as an Account Name: text as it is, a finite number as Segment's JavaScript writes it.

    None for anything else (an array, an object, a boolean, inf): no Name can be made of it.
    """
    if isinstance(name, str):
        return name
    if isinstance(name, int | float) and not isinstance(name, bool) and math.isfinite(name):
        return js_number_text(name)
    return None
