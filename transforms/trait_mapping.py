"""Trait rules the Lead and Account mappings share: tables, addresses, custom fields, map dead letters."""

import functools
import json
from collections.abc import Mapping
from typing import Any

from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent

STAGE = "map"
CUSTOM_SUFFIX = "__c"

# Address part (flat trait or key of the `address` object) -> field name without prefix.
ADDRESS_PARTS: dict[str, str] = {
    "street": "Street",
    "city": "City",
    "state": "State",
    "postalCode": "PostalCode",
    "country": "Country",
}


def is_blank(value: Any) -> bool:
    """True for a trait that is missing, null or only whitespace: no value to match or require."""
    return value is None or (isinstance(value, str) and not value.strip())


def mapped_fields(
    traits: Mapping[str, Any], table: Mapping[str, str], keep: Mapping[str, Any]
) -> dict[str, Any]:
    """Fields from the traits `table` names; a blank trait does not replace a value in `keep`.

    Explicit `firstName: null` (or `""`) next to `name: "Peter Gibbons"` means "not given", not "clear".
    """
    out: dict[str, Any] = {}
    for trait, field in table.items():
        # `keep` first: it rarely holds the field, so the value is rarely looked at.
        if trait in traits and not (field in keep and is_blank(traits[trait])):
            out[field] = traits[trait]
    return out


def with_address_traits(handled: frozenset[str], traits: Mapping[str, Any]) -> frozenset[str]:
    """`handled` and the traits the address rules consume, as custom_fields takes them for `traits`: the flat
    parts, and `address` when it is an object.

    The flat parts are in it whether `traits` has them or not (custom_fields only looks up the traits there
    are), so that there are two sets per `handled`, made once, not one per event.
    """
    return _with_address(handled, isinstance(traits.get("address"), dict))


@functools.cache
def _with_address(handled: frozenset[str], address_object: bool) -> frozenset[str]:
    return handled.union(ADDRESS_PARTS, ["address"] if address_object else [])


def address_parts(traits: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Address fields (`prefix` + Street, City, ...) from flat traits and the `address` object.

    The object wins part by part (the seed's second call has flat state 'California' and
    address.state 'RI': State is 'RI'); flat traits fill the parts the object lacks or leaves null.
    Keys of the object that are not address parts are ignored: Salesforce has no place for them.
    """
    parts = {part: traits[part] for part in ADDRESS_PARTS if part in traits}
    obj = traits.get("address")
    if isinstance(obj, dict):
        for part in ADDRESS_PARTS:
            if part in obj and (obj[part] is not None or part not in parts):
                parts[part] = obj[part]
    return {prefix + ADDRESS_PARTS[part]: value for part, value in parts.items()}


def custom_fields(traits: Mapping[str, Any], handled: set[str] | frozenset[str]) -> dict[str, Any]:
    """Every trait not in `handled` as the custom field `<trait>__c`, casing kept (the seed)."""
    return {custom_field_name(t): custom_field_value(v) for t, v in traits.items() if t not in handled}


# Cached: the same few traits name the custom fields of almost every event.
@functools.lru_cache(maxsize=1024)
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


def map_dead_letter(event: SegmentEvent, reason: str, message: str) -> DeadLetter:
    """The dead letter of an event no record can be made of (stage "map"), with its source file."""
    return DeadLetter.of(STAGE, reason, message, event.raw, source=event.source)
