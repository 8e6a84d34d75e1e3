"""Beam coders for the pipeline's element types: pickled by position, sized without being encoded.

Beam samples the size of elements on every PCollection; for a type it has no coder for, that means
pickling the element just to measure it, and a batch of a thousand merged records (or a shard's whole
accumulator) is measured in full. These coders pickle with the types' own fast __reduce__ (plain tuples,
C speed) and estimate sizes from a cheap count instead.
"""

import pickle
from collections.abc import Callable
from typing import Any

from apache_beam import coders
from apache_beam.coders import coder_impl

from schemas.events import SegmentEvent
from schemas.records import MergedOp, RecordOp
from transforms.batch_writer import WrittenRecord


class _SizedPickleCoder(coders.coders.FastCoder):
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

    def is_deterministic(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


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


def register() -> None:
    """Registers the coders for the element types (idempotent; done when this module is imported)."""
    coders.registry.register_coder(RecordOp, RecordOpCoder)
    coders.registry.register_coder(MergedOp, MergedOpCoder)
    coders.registry.register_coder(SegmentEvent, SegmentEventCoder)
    coders.registry.register_coder(WrittenRecord, WrittenRecordCoder)


register()
