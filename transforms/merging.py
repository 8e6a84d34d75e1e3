"""Merge every operation on one record into one write: field by field, the latest event's value wins.

`RecordMerge` folds operations in as they arrive, in any order, and partial merges combine with each
other, so that a runner can merge with a combiner (memory grows with records, not events) and a
streaming buffer can merge what it holds at flush time. The result does not depend on arrival order.
"""

import hashlib
from collections.abc import Iterable
from typing import Any

from schemas.events import EventRef, EventRefs
from schemas.records import MergedOp, RecordOp, merged_op, record_key

# Sources a record's events may come from (files of a backfill, say): packed with the line number.
_SOURCES = 1 << 20


def _event_id(op: RecordOp) -> int:
    """Identity of the event behind `op`: its messageId, or where it was read when it has none.

    A 64-bit digest rather than the id itself: records keep one per event, and ids run to 40 characters.
    """
    text = op.message_id or f"\x00{op.ref.source}\x00{op.ref.seq}"
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest())


class RecordMerge:
    """A record's operations merged so far (a combiner's accumulator; mutable, not thread-safe).

    A repeated messageId is the same call delivered twice (Segment retries, archives overlap): only the
    first copy merged counts, the others are counted in `duplicates`. Copies of one messageId are the
    same event, so which copy counts does not change the record.

    Per event it keeps only an 8-byte id and where the event was read (an index into the record's
    sources and a line number, packed in one int), so that memory grows with records, not events.
    """

    __slots__ = (
        "sobject",
        "match_field",
        "match_value",
        "action",
        "instance",
        "_match_order",
        "values",
        "orders",
        "defaults",
        "sources",
        "events",
        "raws",
        "duplicates",
    )

    def __init__(self) -> None:
        self.sobject = ""
        self.match_field = ""
        self.match_value = ""
        self.action = ""
        self.instance = ""
        self._match_order: tuple | None = None
        # Field -> the value kept and the order of the event it came from; two dicts rather than a tuple
        # per field: fewer objects for the collector and the shuffle (every record's merge is held).
        self.values: dict[str, Any] = {}
        self.orders: dict[str, tuple] = {}
        self.defaults: dict[str, Any] = {}
        self.sources: list[str | None] = []  # the files (or streams) this record's events came from
        self.events: dict[int, int] = {}  # event id -> seq * _SOURCES + index into sources
        self.raws: dict[int, str] | None = None  # event id -> JSON text, for events that carry theirs
        self.duplicates = 0

    def __getstate__(self):
        return (
            self.sobject,
            self.match_field,
            self.match_value,
            self.action,
            self.instance,
            self._match_order,
            self.values,
            self.orders,
            self.defaults,
            self.sources,
            self.events,
            self.raws,
            self.duplicates,
        )

    def __setstate__(self, state) -> None:
        (
            self.sobject,
            self.match_field,
            self.match_value,
            self.action,
            self.instance,
            self._match_order,
            self.values,
            self.orders,
            self.defaults,
            self.sources,
            self.events,
            self.raws,
            self.duplicates,
        ) = state

    def _source_index(self, source: str | None) -> int:
        try:
            return self.sources.index(source)
        except ValueError:
            self.sources.append(source)
            return len(self.sources) - 1

    def add(self, op: RecordOp) -> "RecordMerge":
        event_id = _event_id(op)
        if event_id in self.events:
            self.duplicates += 1
            return self
        ref = op.ref
        self.events[event_id] = ref.seq * _SOURCES + self._source_index(ref.source)
        if ref.raw is not None:
            if self.raws is None:
                self.raws = {}
            self.raws[event_id] = ref.raw
        order = op.order
        if self._match_order is None:
            self.sobject, self.match_field = op.sobject, op.match_field
            self.action, self.instance = op.action, op.instance
        elif op.key != record_key_of(self):
            raise ValueError(f"RecordMerge got ops for several records: {record_key_of(self)}, {op.key}")
        if self._match_order is None or order > self._match_order:
            # The latest spelling of the key, like any other value (keys match case-insensitively).
            self.match_value, self._match_order = op.match_value, order
        values, orders = self.values, self.orders
        for name, value in op.fields.items():
            held = orders.get(name)
            if held is None or order >= held:
                orders[name] = order
                values[name] = value
        for name, value in op.create_defaults.items():
            self.defaults.setdefault(name, value)
        return self

    def merge(self, other: "RecordMerge") -> "RecordMerge":
        """Folds `other` (a partial merge of the same record) into this one."""
        if other._match_order is None:
            return self
        if self._match_order is None:
            self.sobject, self.match_field = other.sobject, other.match_field
            self.action, self.instance = other.action, other.instance
        elif record_key_of(other) != record_key_of(self):
            raise ValueError(f"RecordMerge got ops for several records: {record_key_of(self)}")
        self.duplicates += other.duplicates
        remap = [self._source_index(source) for source in other.sources]
        for event_id, packed in other.events.items():
            # Events both partial merges hold were merged on both sides with the same values: drop the copy.
            if event_id in self.events:
                self.duplicates += 1
                continue
            seq, index = divmod(packed, _SOURCES)
            self.events[event_id] = seq * _SOURCES + remap[index]
            if other.raws and event_id in other.raws:
                if self.raws is None:
                    self.raws = {}
                self.raws[event_id] = other.raws[event_id]
        if self._match_order is None or other._match_order > self._match_order:
            self.match_value, self._match_order = other.match_value, other._match_order
        values, orders = self.values, self.orders
        for name, held in other.orders.items():
            mine = orders.get(name)
            if mine is None or held > mine:
                orders[name] = held
                values[name] = other.values[name]
        for name, value in other.defaults.items():
            self.defaults.setdefault(name, value)
        return self

    def result(self) -> MergedOp:
        if self._match_order is None:
            raise ValueError("RecordMerge.result needs at least one RecordOp")
        raws = self.raws or {}
        if len(self.events) == 1:  # most records of a backfill
            ((event_id, packed),) = self.events.items()
            seq, index = divmod(packed, _SOURCES)
            refs = EventRefs.one(self.sources[index], seq, raws.get(event_id))
        else:
            listed = []
            for event_id, packed in self.events.items():
                seq, index = divmod(packed, _SOURCES)
                listed.append(EventRef(self.sources[index], seq, raws.get(event_id)))
            # In input order, so that dead letters list a record's events as they were read.
            listed.sort(key=_ref_order)
            refs = EventRefs(listed)
        return merged_op(
            sobject=self.sobject,
            match_field=self.match_field,
            match_value=self.match_value,
            fields=dict(self.values),
            create_defaults=dict(self.defaults),
            field_times={name: order[0] for name, order in self.orders.items()},
            refs=refs,
            action=self.action,
            instance=self.instance,
        )


def _ref_order(ref: EventRef) -> tuple[str, int]:
    return (ref.source or "", ref.seq)


def record_key_of(merge: RecordMerge) -> str:
    return record_key(merge.sobject, merge.match_value, merge.action, merge.instance)


def merge_ops(ops: Iterable[RecordOp]) -> tuple[MergedOp, int]:
    """The merged operation of `ops` (all on one record) and how many duplicate messageIds were dropped.

    Raises ValueError for no ops or ops on several records.
    """
    merge = RecordMerge()
    for op in ops:
        merge.add(op)
    return merge.result(), merge.duplicates
