"""Beam coders for the pipeline's element types: pickled by position, sized without being encoded.

Beam samples the size of elements on every PCollection; for a type it has no coder for, that means
pickling the element just to measure it, and a batch of a thousand merged records (or a shard's whole
accumulator) is measured in full. These coders pickle with the types' own fast __reduce__ (plain tuples,
C speed) and estimate sizes from a cheap count instead.

On a runner that runs the whole pipeline in this process (pipeline/runner_kind.py), the largest elements
(a shard's merge, the pieces of an object on their way to the Bulk writer) need no bytes at all: the
in-process runner encodes a grouped element twice and decodes it twice (once into its grouping table,
once out of it), which for a 100,000-event backfill was about 4 s of pickling. LocalHandleCoder hands
them over by reference instead.
"""

import pickle
import struct
import threading
from collections.abc import Callable
from typing import Any

from apache_beam import coders
from apache_beam.coders import coder_impl

from schemas.events import SegmentEvent
from schemas.records import MergedOp, RecordOp
from transforms.batch_writer import WrittenRecord


class _TypedCoder(coders.coders.FastCoder):
    """A coder with no settings: equal to any coder of its class; not deterministic (never a key's)."""

    def is_deterministic(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class _SizedPickleCoder(_TypedCoder):
    """Pickle with a size estimate that does not encode (subclasses give `estimate`, and may give
    `to_plain` and `from_plain`: the value as plain data that pickles faster than the value itself)."""

    estimate: Callable[[Any], int] = staticmethod(lambda value: 256)
    to_plain: Callable[[Any], Any] | None = None
    from_plain: Callable[[Any], Any] | None = None

    def _create_impl(self):
        protocol = pickle.HIGHEST_PROTOCOL
        to_plain, from_plain = type(self).to_plain, type(self).from_plain
        if to_plain is None or from_plain is None:
            return coder_impl.CallbackCoderImpl(
                lambda value: pickle.dumps(value, protocol), pickle.loads, size_estimator=type(self).estimate
            )
        return coder_impl.CallbackCoderImpl(
            lambda value: pickle.dumps(to_plain(value), protocol),
            lambda data: from_plain(pickle.loads(data)),
            size_estimator=type(self).estimate,
        )


class RecordOpCoder(_SizedPickleCoder):
    estimate = staticmethod(lambda op: 128 + 48 * len(op.fields))


class MergedOpCoder(_SizedPickleCoder):
    estimate = staticmethod(lambda op: 128 + 64 * len(op.fields) + 12 * len(op.refs))
    to_plain = staticmethod(MergedOp.flat)
    from_plain = staticmethod(MergedOp.from_flat)


class SegmentEventCoder(_SizedPickleCoder):
    estimate = staticmethod(lambda event: 256 + 48 * len(event.traits))


class ShardMergeCoder(_SizedPickleCoder):
    """The accumulator of a shard's merge: its records' count stands in for its size."""

    estimate = staticmethod(lambda shard: 64 + 512 * len(shard.records))


class WrittenRecordCoder(_SizedPickleCoder):
    """A written record as a plain tuple: a NamedTuple pickles through a Python call per record."""

    estimate = staticmethod(lambda record: 96 + 256 * len(record.rows))
    to_plain = staticmethod(tuple)
    from_plain = staticmethod(WrittenRecord._make)


class LocalHandleCoder(_TypedCoder):
    """Hands a value to the next stage by reference: encoding keeps it in this process's table under a
    new number and gives the number; decoding takes it out again.

    Only for a runner that runs every stage in this process, where each encoding is decoded exactly once
    (pipeline/runner_kind.py says which runners). Decoding a number this process never gave, or gave and
    already handed out, raises instead of losing the value. The value must not change once encoded.
    """

    def _create_impl(self):
        return coder_impl.CallbackCoderImpl(_keep, _take, size_estimator=lambda value: 64)


_HANDLE = struct.Struct(">Q")
_kept: dict[int, Any] = {}
_given = 0  # the last number given
_lock = threading.Lock()


def _keep(value: Any) -> bytes:
    global _given
    with _lock:  # stages run on several threads of the in-process runner
        _given += 1
        number = _given
    _kept[number] = value
    return _HANDLE.pack(number)


def _take(data: bytes) -> Any:
    (number,) = _HANDLE.unpack(data)
    try:
        return _kept.pop(number)
    except KeyError:
        raise RuntimeError(
            f"element handle {number} is not held in this process: the graph was built for a runner that "
            "runs every stage in this process (pipeline/runner_kind.py), but it runs across processes or "
            "decodes an element twice"
        ) from None


def held_handles() -> int:
    """How many values are encoded and not yet decoded (tests check that a run leaves none)."""
    return len(_kept)


def handles_given() -> int:
    """How many values were handed over so far in this process (tests check that a run used them)."""
    return _given


class LocalList(list):
    """A list whose PCollection is encoded by LocalHandleCoder (the type only selects the coder)."""


def register() -> None:
    """Registers the coders for the element types (idempotent; done when this module is imported)."""
    coders.registry.register_coder(RecordOp, RecordOpCoder)
    coders.registry.register_coder(MergedOp, MergedOpCoder)
    coders.registry.register_coder(SegmentEvent, SegmentEventCoder)
    coders.registry.register_coder(WrittenRecord, WrittenRecordCoder)
    coders.registry.register_coder(LocalList, LocalHandleCoder)


register()
