"""One event and one custom action (--actions_config) into the RecordOp the action asks for."""

import math
from typing import Any

from actions.config import PRESETS, Action, Source
from actions.paths import resolve_first
from schemas import frozen
from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from schemas.records import MATCH_SEPARATOR, RecordOp
from transforms import account_mapping, lead_mapping
from transforms.parsing import js_number_text, json_kind
from transforms.trait_mapping import custom_field_value, is_blank, map_dead_letter

# Operations done once per event: their ops never merge with another event's.
PER_EVENT_OPERATIONS = frozenset({"create", "read"})
# A preset's own match rule (field, paths): the preset finds that value itself, by the seed's rules (an
# email in traits, else in context.traits); another source for the field is read as configured.
PRESET_MATCHES = {
    "segment_lead": ("email", ("traits.email",)),
    "segment_account": ("accountnumber", ("groupId",)),
}


def action_op(event: SegmentEvent, action: Action, address_mapping: str = "billing") -> RecordOp | DeadLetter:
    """The RecordOp `action` asks for on `event`, or the DeadLetter (stage "map") saying why there is none.

    Match values must be present and be text or finite numbers (numbers read as Segment's JavaScript
    writes them). A field whose path the event lacks, or holds null, is not written: a missing value never
    clears one in Salesforce. Objects and lists are written as compact JSON text. A preset action starts
    from the seed's mapping (transforms/lead_mapping.py, account_mapping.py) and its own fields add to it.
    """
    fields: dict[str, Any] = {}
    create_defaults: dict[str, Any] = {}
    preset = action.preset
    if preset is not None:
        # The preset's own match requirement (an email) holds only if the action matches on it.
        keyed = any(_is_preset_match(preset, n, src) for n, src in action.match)
        base = _preset_fields(event, preset, address_mapping, keyed)
        if isinstance(base, DeadLetter):
            return base
        preset_value, fields, create_defaults = base
    names: list[str] = []
    values: list[str] = []
    for name, source in action.match:
        if preset is not None and _is_preset_match(preset, name, source):
            # The preset finds its own match value by the seed's rules (e.g. an email in traits, else in
            # context.traits), and has dead-lettered the event if there is none.
            names.append(name)
            values.append(preset_value)
            continue
        value = _match_value(event, action, name, source)
        if isinstance(value, DeadLetter):
            return value
        # `fields` still has the preset's names (ignoring case): a put only respells one.
        if preset is not None and any(k.lower() == name.lower() for k in fields):
            # The preset's value of the field gives way to the one matched on, which the record holds.
            _put(fields, name, value)
        names.append(name)
        values.append(value)
    for name, source in action.fields:
        found, value = _value(event, source)
        if found and value is not None:
            _put(fields, name, custom_field_value(value))
    create_defaults.update(action.create_defaults)
    instance = ""
    if action.operation in PER_EVENT_OPERATIONS:
        instance = event.message_id or f"{event.source}:{event.seq}"
    return _record_op(
        sobject=action.object,
        match_field=MATCH_SEPARATOR.join(names),
        match_value=MATCH_SEPARATOR.join(values),
        fields=fields,
        create_defaults=create_defaults,
        timestamp=event.timestamp,
        message_id=event.message_id,
        ref=event.ref,
        action=action.name,
        instance=instance,
    )


_record_op = frozen.maker(RecordOp)


def _is_preset_match(preset: str, name: str, source: Source) -> bool:
    """Whether the action matches on the preset's own match rule (Email from traits.email, say)."""
    own_name, own_paths = PRESET_MATCHES[preset]
    return source.paths == own_paths and name.lower() == own_name


def _preset_fields(
    event: SegmentEvent, preset: str, address_mapping: str, keyed: bool
) -> tuple[str, dict[str, Any], dict[str, Any]] | DeadLetter:
    """The match value, fields and create defaults of the preset's RecordOp (identify_to_lead's,
    group_to_account's), new dicts the action's own add to."""
    if preset == "segment_lead":
        lead = lead_mapping.lead_fields(event, require_email=keyed)
        if isinstance(lead, DeadLetter):
            return lead
        return *lead, dict(lead_mapping.LEAD_CREATE_DEFAULTS)
    if preset == "segment_account":
        account = account_mapping.account_fields(event, address_mapping)  # parsing requires a groupId
        if isinstance(account, DeadLetter):
            return account
        return *account, {}
    raise ValueError(f"unknown preset {preset!r}: one of {', '.join(PRESETS)}")


def _value(event: SegmentEvent, source: Source) -> tuple[bool, Any]:
    if not source.paths:
        return True, source.literal
    return resolve_first(event.raw, source.paths)


def _match_value(event: SegmentEvent, action: Action, name: str, source: Source) -> str | DeadLetter:
    found, value = _value(event, source)
    where = f"{action.object}.{name}"
    what = source.describe()
    if not found or is_blank(value):
        return map_dead_letter(
            event,
            "missing_match_value",
            f"action {action.name!r} matches {where} on {what}, which this event lacks: add {what} to the "
            "event or change the action's match rules",
        )
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return map_dead_letter(
            event,
            "invalid_match_value",
            f"action {action.name!r} matches {where} on {what}, which is a JSON {json_kind(value)}: "
            "a record is matched on text or a number",
        )
    if isinstance(value, float) and not math.isfinite(value):
        return map_dead_letter(
            event,
            "invalid_match_value",
            f"action {action.name!r} matches {where} on {what}, a number that is not finite",
        )
    text = value.strip() if isinstance(value, str) else js_number_text(value)
    if MATCH_SEPARATOR in text:
        return map_dead_letter(
            event,
            "invalid_match_value",
            f"action {action.name!r} matches {where} on {what}, which holds the control character U+001F",
        )
    return text


def _put(fields: dict[str, Any], name: str, value: Any) -> None:
    """Sets `name`, replacing a spelling of it that differs only in case (Salesforce ignores case)."""
    for k in [k for k in fields if k.lower() == name.lower()]:
        del fields[k]
    fields[name] = value
