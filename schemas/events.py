"""The Segment event as the pipeline carries it after parsing, and the reference back to where it was read."""

from dataclasses import dataclass, field
from typing import Any, NamedTuple

EVENT_TYPES = ("identify", "group", "track", "page", "screen", "alias")


class EventRef(NamedTuple):
    """Where one event came from: enough to give the original event back in a dead letter.

    Events read from files carry only the file and line number (`raw` None): a dead letter is
    rebuilt by reading that line again, so that the pipeline never holds every event in memory.
    Events from sources that cannot be read again (streams) carry their JSON text in `raw`.
    """

    source: str | None  # the file (or stream) the event was read from
    seq: int  # 1-based line number in the file; position in a stream; 0 when unknown
    raw: str | None = None  # the event's JSON text, when the source cannot be read again


class EventLine(NamedTuple):
    """One line as read, before parsing: bytes when it is not valid UTF-8 (the parser says so)."""

    source: str | None
    seq: int  # 1-based line number in the file, or position in a stream
    line: str | bytes


@dataclass(frozen=True)
class SegmentEvent:
    """One parsed Segment call (https://segment.com/docs/connections/spec/).

    `raw` is the event exactly as read (the parsed JSON object), kept so that dead letters of the
    stages before merging can carry the original event for replay. `source` and `seq` say where it
    was read; `raw_text` is its JSON text for sources that cannot be read again (see EventRef).
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
    seq: int = 0
    raw_text: str | None = None

    @property
    def ref(self) -> EventRef:
        return EventRef(self.source, self.seq, self.raw_text)
