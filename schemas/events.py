"""The Segment event as the pipeline carries it after parsing."""

from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = ("identify", "group", "track", "page", "screen", "alias")


@dataclass(frozen=True)
class SegmentEvent:
    """One parsed Segment call (https://segment.com/docs/connections/spec/).

    `raw` is the event exactly as read (the parsed JSON object), kept so that every later
    dead letter can carry the original event for replay.
    """

    type: str
    message_id: str
    timestamp: str
    user_id: str | None = None
    anonymous_id: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    event: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    integrations: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
