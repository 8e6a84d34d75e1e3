"""Duplicate rules: the config's rules checked against the org's metadata, the header that overrides an
alert, and the DUPLICATES_DETECTED error that refuses a save."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from emulator.config import ConfigError, DuplicateRule
from emulator.objects import SObject

HEADER = "Sforce-Duplicate-Rule-Header"
STATUS_CODE = "DUPLICATES_DETECTED"
MATCH_ENGINE = "ExactMatchEngine"  # the engine Salesforce names for exact matching rules
# A compound address and the record id hold no value a matching rule can compare.
_UNMATCHABLE = frozenset({"address", "id"})
_DIRECTIVES = re.compile(r"[,;]")


@dataclass(frozen=True)
class ActiveRule:
    """A configured rule with the canonical names of its object and fields."""

    name: str
    sobject: str
    fields: tuple[str, ...]
    allow_save: bool  # an alert: a request that asks for allowSave saves anyway
    error_message: str


class DuplicateRules:
    """The org's duplicate rules by object; ConfigError names a rule's unknown object or field."""

    def __init__(self, rules: Iterable[DuplicateRule], objects: dict[str, SObject]):
        writable = {name.lower(): obj for name, obj in objects.items() if not obj.read_only}
        by_object: dict[str, list[ActiveRule]] = {}
        for i, rule in enumerate(rules):
            where = f"config.duplicate_rules[{i}]"
            obj = writable.get(rule.object.lower())
            if obj is None:
                known = sorted(o.name for o in writable.values())
                raise ConfigError(f"{where}.object: unknown object {rule.object!r}; known: {known}")
            fields = []
            for name in rule.fields:
                f = obj.field(name)
                if f is None:
                    raise ConfigError(f"{where}.fields: {obj.name} has no field {name!r}")
                if f.type in _UNMATCHABLE:
                    raise ConfigError(f"{where}.fields: {obj.name}.{f.name} ({f.type}) cannot be matched")
                fields.append(f.name)
            active = ActiveRule(
                rule.name, obj.name, tuple(fields), rule.action == "alert", rule.error_message
            )
            by_object.setdefault(obj.name, []).append(active)
        self._by_object = {name: tuple(found) for name, found in by_object.items()}

    def for_object(self, sobject: str) -> tuple[ActiveRule, ...]:
        return self._by_object.get(sobject, ())

    def fields(self, sobject: str) -> tuple[str, ...]:
        """Every field the rules of `sobject` compare, once each, in rule order."""
        return tuple(dict.fromkeys(f for rule in self.for_object(sobject) for f in rule.fields))


def match_key(value: Any) -> str | None:
    """The form two values are compared in (trimmed, any case), or None for a blank value, which never
    matches."""
    if value is None:
        return None
    text = str(value).strip().lower()
    return text or None


def allows_save(header: str | None) -> bool:
    """True when a Sforce-Duplicate-Rule-Header value (`allowSave = true`) asks to save despite alerts."""
    for directive in _DIRECTIVES.split(header or ""):
        key, _, value = directive.partition("=")
        if key.strip().lower() == "allowsave":
            return value.strip().lower() == "true"
    return False


def duplicate_error(rule: ActiveRule, record_ids: list[str], version: str) -> dict[str, Any]:
    """The DuplicateError of a save that `rule` refused because of the records `record_ids`."""
    match_records = [
        {
            "additionalInformation": [],
            "fieldDiffs": [],
            "matchConfidence": 100.0,
            "record": {
                "attributes": {
                    "type": rule.sobject,
                    "url": f"/services/data/v{version}/sobjects/{rule.sobject}/{record_id}",
                },
                "Id": record_id,
            },
        }
        for record_id in record_ids
    ]
    return {
        "statusCode": STATUS_CODE,
        "message": rule.error_message,
        "fields": [],
        "duplicateResult": {
            "allowSave": rule.allow_save,
            "duplicateRule": rule.name,
            "duplicateRuleEntityType": rule.sobject,
            "errorMessage": rule.error_message,
            "matchResults": [
                {
                    "entityType": rule.sobject,
                    "errorMessage": None,
                    "matchEngine": MATCH_ENGINE,
                    "matchRecords": match_records,
                    "rule": rule.name,
                    "size": len(match_records),
                    "success": True,
                }
            ],
        },
    }
