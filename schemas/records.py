"""Record operations: what the mapping asks Salesforce to hold, before and after merging."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordOp:
    """One event's wish for one Salesforce record, matched by `match_field = match_value`.

    `fields` are written on create and on update; `create_defaults` only fill fields that are
    missing when the record is created (Lead `LastName`/`Company` = "n/a"): they never
    overwrite a value already in Salesforce.
    """

    sobject: str
    match_field: str
    match_value: str
    fields: dict[str, Any]
    create_defaults: dict[str, Any] = field(default_factory=dict)
    timestamp: str = ""
    message_id: str = ""
    event: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # the file the event was read from, for its dead letters

    @property
    def key(self) -> str:
        return record_key(self.sobject, self.match_value)


def record_key(sobject: str, match_value: str) -> str:
    """The key of a record: Salesforce compares strings case-insensitively, so do we."""
    return f"{sobject}|{match_value.strip().lower()}"


@dataclass(frozen=True)
class MergedOp:
    """All operations on one record, merged in timestamp order (later values win).

    `events` holds the original event of every contributing operation, in merge order,
    so that a failed write dead-letters each of them; `message_ids` and `sources` (the file
    each was read from) run parallel to it.
    """

    sobject: str
    match_field: str
    match_value: str
    fields: dict[str, Any]
    create_defaults: dict[str, Any]
    events: tuple[dict[str, Any], ...]
    message_ids: tuple[str, ...]
    sources: tuple[str | None, ...]

    def __post_init__(self) -> None:
        if not len(self.events) == len(self.message_ids) == len(self.sources):
            raise ValueError(
                f"MergedOp needs one message_id and one source per event: {len(self.events)} events, "
                f"{len(self.message_ids)} message_ids, {len(self.sources)} sources"
            )

    @property
    def key(self) -> str:
        return record_key(self.sobject, self.match_value)
