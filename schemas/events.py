"""The Segment event as the pipeline carries it after parsing, and the reference back to where it was read."""

import struct
from array import array
from collections.abc import Iterable, Iterator
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
    replay_action: str | None = None  # read from a dead letter naming its failed action: only that one

    @property
    def ref(self) -> EventRef:
        return EventRef(self.source, self.seq, self.raw_text)


# EventRefs.one's packing, the bytes that array("I") and array("q") give for one item.
_FIRST_INDEX = array("I", [0]).tobytes()
_SEQ = struct.Struct("=q")  # native order, 8 bytes: array("q")'s


class EventRefs:
    """The references of a record's events (EventRef), stored compactly: a backfill's merged records
    hold one per event, so a million events must not mean a million tuples.

    Iterates as EventRefs in order; compares equal to any sequence of the same EventRefs.
    """

    __slots__ = ("_sources", "_index", "_seqs", "_raws")

    def __init__(self, refs: Iterable[EventRef] = ()) -> None:
        sources: list[str | None] = []
        where: dict[str | None, int] = {}
        index = array("I")
        seqs = array("q")
        raws: list[str | None] = []
        for source, seq, raw in refs:
            i = where.get(source)
            if i is None:
                i = where[source] = len(sources)
                sources.append(source)
            index.append(i)
            seqs.append(seq)
            raws.append(raw)
        self._sources = tuple(sources)
        self._index = index.tobytes()
        self._seqs = seqs.tobytes()
        self._raws = tuple(raws) if any(r is not None for r in raws) else None

    @classmethod
    def one(cls, source: str | None, seq: int, raw: str | None) -> "EventRefs":
        """EventRefs([EventRef(source, seq, raw)]), without the loop: most records of a backfill have one
        event."""
        return cls._restore((source,), _FIRST_INDEX, _SEQ.pack(seq), None if raw is None else (raw,))

    @classmethod
    def _restore(cls, sources, index, seqs, raws) -> "EventRefs":
        refs = cls.__new__(cls)
        refs._sources, refs._index, refs._seqs, refs._raws = sources, index, seqs, raws
        return refs

    def __reduce__(self):
        # Plain bytes and tuples: pickled at C speed, whatever the number of events.
        return (EventRefs._restore, self.flat())

    def flat(self) -> tuple:
        """(sources, index bytes, line numbers bytes, raws): what from_flat takes back."""
        return (self._sources, self._index, self._seqs, self._raws)

    @classmethod
    def from_flat(cls, flat: tuple) -> "EventRefs":
        return cls._restore(*flat)

    def __len__(self) -> int:
        return len(self._seqs) // 8

    def __iter__(self) -> Iterator[EventRef]:
        index = array("I")
        index.frombytes(self._index)
        seqs = array("q")
        seqs.frombytes(self._seqs)
        raws = self._raws
        sources = self._sources
        for n, (i, seq) in enumerate(zip(index, seqs, strict=True)):
            yield EventRef(sources[i], seq, raws[n] if raws is not None else None)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventRefs | tuple | list):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EventRefs({list(self)!r})"
