"""Event paths of custom actions (`traits.email`, `properties.items.0.sku`): their checks and their values."""

from collections.abc import Mapping, Sequence
from typing import Any

# The top-level keys of a Segment event (https://segment.com/docs/connections/spec/common/ and the calls).
ROOTS = frozenset(
    {
        "type",
        "event",
        "userId",
        "anonymousId",
        "groupId",
        "messageId",
        "timestamp",
        "sentAt",
        "receivedAt",
        "originalTimestamp",
        "traits",
        "properties",
        "context",
        "integrations",
        "name",
        "category",
        "previousId",
        "channel",
        "version",
    }
)

_COMMON = frozenset(
    {
        "type",
        "context",
        "userId",
        "anonymousId",
        "messageId",
        "timestamp",
        "sentAt",
        "receivedAt",
        "originalTimestamp",
        "integrations",
        "channel",
        "version",
    }
)
_BY_TYPE = {
    "identify": _COMMON | {"traits"},
    "group": _COMMON | {"traits", "groupId"},
    "track": _COMMON | {"properties", "event"},
}


def roots_for(event_type: str) -> frozenset[str]:
    """The top-level keys an event of `event_type` can carry; for other types, the keys common to all."""
    return _BY_TYPE.get(event_type, _COMMON)


def check_path(path: str) -> str | None:
    """None when `path` is well-formed (dotted keys, the first a key of Segment events), else the problem."""
    if not path.strip():
        return "the path is empty"
    segments = path.split(".")
    if any(s == "" for s in segments):
        return f"path {path!r} has an empty key (two dots in a row, or a dot at an end)"
    if any(s != s.strip() for s in segments):
        return f"path {path!r} has spaces around a dot or at an end"
    if segments[0] not in ROOTS:
        return f"path {path!r} does not start with an event key"
    return None


def resolve(raw: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) of `path` in the event `raw`; a whole-number key indexes a list (`products.0.name`).

    A key holding null is found, with the value None: the caller decides whether null counts.
    """
    value: Any = raw
    for segment in path.split("."):
        if isinstance(value, Mapping):
            if segment not in value:
                return False, None
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and segment.isascii():
            index = int(segment)
            if index >= len(value):
                return False, None
            value = value[index]
        else:
            return False, None
    return True, value


def resolve_first(raw: Mapping[str, Any], paths: Sequence[str]) -> tuple[bool, Any]:
    """(True, value) of the first of `paths` present and not null; (False, None) when there is none."""
    for path in paths:
        found, value = resolve(raw, path)
        if found and value is not None:
            return True, value
    return False, None
