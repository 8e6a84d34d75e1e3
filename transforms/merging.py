"""Merge every operation on one record into one write: timestamp order, later values win."""

from collections.abc import Iterable

from schemas.records import MergedOp, RecordOp


def merge_ops(ops: Iterable[RecordOp]) -> tuple[MergedOp, int]:
    """The merged operation and how many duplicate messageIds were dropped.

    Ops are ordered by (timestamp, message_id), so the result does not depend on arrival order;
    an op without a timestamp sorts first. A repeated messageId is the same call delivered twice
    (Segment retries, archives overlap): only its first copy counts. An empty message_id is
    never a duplicate. Raises ValueError for no ops or ops on several records.
    """
    ordered = sorted(ops, key=lambda op: (op.timestamp, op.message_id))
    if not ordered:
        raise ValueError("merge_ops needs at least one RecordOp")
    keys = {op.key for op in ordered}
    if len(keys) > 1:
        raise ValueError(f"merge_ops got ops for several records: {', '.join(sorted(keys))}")
    kept: list[RecordOp] = []
    seen: set[str] = set()
    for op in ordered:
        if op.message_id and op.message_id in seen:
            continue
        seen.add(op.message_id)
        kept.append(op)
    fields: dict = {}
    create_defaults: dict = {}
    for op in kept:
        fields.update(op.fields)
        create_defaults.update(op.create_defaults)
    last = kept[-1]
    return (
        MergedOp(
            sobject=last.sobject,
            match_field=last.match_field,
            # The latest spelling of the key, like any other value (keys match case-insensitively).
            match_value=last.match_value,
            fields=fields,
            create_defaults=create_defaults,
            events=tuple(op.event for op in kept),
            message_ids=tuple(op.message_id for op in kept),
            sources=tuple(op.source for op in kept),
        ),
        len(ordered) - len(kept),
    )
