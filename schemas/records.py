"""Record operations: what the mapping asks Salesforce to hold, before and after merging."""

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from schemas import frozen
from schemas.events import EventRef, EventRefs

NO_REF = EventRef(None, 0)


@dataclass(frozen=True)
class RecordOp:
    """One event's wish for one Salesforce record, matched by `match_field = match_value`.

    `fields` are written on create and on update; `create_defaults` only fill fields that are
    missing when the record is created (Lead `LastName`/`Company` = "n/a"): they never
    overwrite a value already in Salesforce. `ref` says where the event was read, for its dead letters.

    `action` names the custom action (--actions_config) the op is for; "" is the classic path (an upsert
    on `match_field`). An action matching on several fields carries them joined by MATCH_SEPARATOR in
    `match_field` and `match_value` (split_match gives them back). `instance` is set for operations done
    once per event (create, read): the event's messageId, so that such ops never merge with another event's.
    """

    sobject: str
    match_field: str
    match_value: str
    fields: dict[str, Any]
    create_defaults: dict[str, Any] = field(default_factory=dict)
    timestamp: str = ""
    message_id: str = ""
    ref: EventRef = NO_REF
    action: str = ""
    instance: str = ""

    def __reduce__(self):
        # By position, the reference as a plain tuple: much faster to pickle than a dataclass's default
        # (Beam pickles elements it has no coder for at every shuffle).
        return (
            _record_op,
            (
                self.sobject,
                self.match_field,
                self.match_value,
                self.fields,
                self.create_defaults,
                self.timestamp,
                self.message_id,
                tuple(self.ref),
                self.action,
                self.instance,
            ),
        )

    @property
    def key(self) -> str:
        return record_key(self.sobject, self.match_value, self.action, self.instance)

    @property
    def source(self) -> str | None:
        return self.ref.source

    @property
    def order(self) -> tuple:
        """Merge order: event time, then the messageId, so that every copy of one event (the same call
        delivered twice, archives that overlap) has the same place whichever copy is merged.

        Events without a timestamp come before every timed one, in input order (file, line).
        """
        if self.timestamp:
            return (self.timestamp, self.message_id)
        return ("", self.ref.source or "", self.ref.seq, self.message_id)


def _record_op(
    sobject, match_field, match_value, fields, create_defaults, timestamp, message_id, ref, action, instance
):
    return RecordOp(
        sobject,
        match_field,
        match_value,
        fields,
        create_defaults,
        timestamp,
        message_id,
        EventRef(*ref),
        action,
        instance,
    )


def target_key(op: "RecordOp | MergedOp") -> str:
    """Which Salesforce record an op writes, whatever action it is for.

    Ops of two actions that match one record on the same fields (the identify preset and a form's track,
    both upserting the Lead by Email) have different record keys and never merge; they share this key, by
    which they are sharded, batched and written one after the other. Written at once, two batches could
    each find no record and each create one. A read (once per event, with a match) shares it too, so that
    it is done after the writes of its record that came with it (is_read); a create (no match) makes a
    record of its own.
    """
    if not op.match_field:
        return op.key
    return f"{op.sobject}|{op.match_field.lower()}|{op.match_value.strip().lower()}"


def is_read(op: "RecordOp | MergedOp") -> bool:
    """Whether `op` reads its record (a read action's op: once per event, and matched) rather than writes."""
    return bool(op.instance and op.match_field)


def batch_order(op: "RecordOp | MergedOp") -> tuple[str, bool, str]:
    """Records in a stable order, the ops of one target record side by side, its reads after its writes."""
    return target_key(op), is_read(op), op.key


# Joins the fields (and values) of a match on several fields; no event value may hold it (see action_mapping).
MATCH_SEPARATOR = "\x1f"


def record_key(sobject: str, match_value: str, action: str = "", instance: str = "") -> str:
    """The key of a record: Salesforce compares strings case-insensitively, so do we.

    Ops of one custom action merge only with each other (`action`); ops done once per event (`instance`)
    with none.
    """
    key = f"{sobject}|{match_value.strip().lower()}"
    if action:
        key = f"{action}|{key}"
    if instance:
        key = f"{key}|@{instance}"
    return key


def split_match(match_field: str, match_value: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The match fields and their values of an op; ((), ()) for an op that matches nothing (create)."""
    if not match_field:
        return (), ()
    return tuple(match_field.split(MATCH_SEPARATOR)), tuple(match_value.split(MATCH_SEPARATOR))


@dataclass(frozen=True)
class MergedOp:
    """All operations on one record, merged in event order, field by field (later values win).

    `field_times` gives, per field of `fields`, the time of the event whose value is kept ("" when that
    event had no timestamp), so that the writer can skip values older than what a record already holds.
    `refs` holds one reference per contributing event (duplicates removed), so that a failed write
    dead-letters each of them.
    """

    sobject: str
    match_field: str
    match_value: str
    fields: dict[str, Any]
    create_defaults: dict[str, Any]
    field_times: dict[str, str]
    refs: EventRefs  # a sequence of EventRef given here is stored as EventRefs
    action: str = ""  # as RecordOp.action
    instance: str = ""  # as RecordOp.instance

    def __post_init__(self) -> None:
        if not isinstance(self.refs, EventRefs):
            object.__setattr__(self, "refs", EventRefs(self.refs))

    def __reduce__(self):
        return (MergedOp.from_flat, (self.flat(),))

    def flat(self) -> tuple:
        """The op as one tuple of plain values (its references' arrays included), which pickles at C
        speed: batches of merged records cross two shuffles of a backfill."""
        return (*_flat_fields(self), *self.refs.flat())

    @classmethod
    def from_flat(cls, flat: tuple) -> "MergedOp":
        """The op `flat()` gave, built without the dataclass's __init__ (a frozen one sets each field
        through object.__setattr__, which costs more than the unpickling)."""
        op = object.__new__(cls)
        count = len(_MERGED_OP_FIELDS)
        op.__dict__.update(zip(_MERGED_OP_FIELDS, flat[:count], strict=True))
        op.__dict__["refs"] = EventRefs.from_flat(flat[count:])
        return op

    @property
    def key(self) -> str:
        return record_key(self.sobject, self.match_value, self.action, self.instance)

    @property
    def events(self) -> int:
        """How many events went into this record."""
        return len(self.refs)


_MERGED_OP_FIELDS = tuple(f.name for f in fields(MergedOp) if f.name != "refs")
# MergedOp(**values) for values naming every field, `refs` an EventRefs already (so that its __post_init__
# has nothing to do), without the frozen dataclass's __init__: a backfill makes one per record.
merged_op = frozen.maker(MergedOp, ready=lambda values: isinstance(values["refs"], EventRefs))
_flat_fields = attrgetter(*_MERGED_OP_FIELDS)
