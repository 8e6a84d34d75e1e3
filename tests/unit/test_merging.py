"""Table tests for merge_ops: order, later values win, duplicates dropped, one record only."""

import pytest

from schemas.records import MergedOp, RecordOp
from transforms.merging import merge_ops


def op(message_id, timestamp, fields, value="a@b.c", defaults=None, sobject="Lead", source=None):
    return RecordOp(
        sobject=sobject,
        match_field="Email",
        match_value=value,
        fields=fields,
        create_defaults=defaults if defaults is not None else {"LastName": "n/a"},
        timestamp=timestamp,
        message_id=message_id,
        event={"messageId": message_id},
        source=f"{message_id}.jsonl" if source is None else source,
    )


T1, T2, T3 = "2026-11-28T18:00:01.000Z", "2026-11-28T18:00:02.000Z", "2026-11-28T18:00:03.000Z"


@pytest.mark.parametrize(
    "ops, fields, message_ids, dropped",
    [
        ([op("m1", T1, {"Title": "A"})], {"Title": "A"}, ("m1",), 0),
        # Later values win, whatever the arrival order.
        (
            [op("m2", T2, {"Title": "B"}), op("m1", T1, {"Title": "A", "City": "X"})],
            {"Title": "B", "City": "X"},
            ("m1", "m2"),
            0,
        ),
        (
            [op("m3", T3, {"City": None}), op("m1", T1, {"City": "X"}), op("m2", T2, {"Phone": "1"})],
            {"City": None, "Phone": "1"},
            ("m1", "m2", "m3"),
            0,
        ),
        # Same timestamp: message_id decides, so the result never depends on arrival.
        ([op("b", T1, {"Title": "B"}), op("a", T1, {"Title": "A"})], {"Title": "B"}, ("a", "b"), 0),
        # No timestamp sorts first.
        ([op("m1", T1, {"Title": "A"}), op("m0", "", {"Title": "0"})], {"Title": "A"}, ("m0", "m1"), 0),
        # Duplicate messageIds: the first copy counts, the others are dropped and counted.
        (
            [op("m1", T1, {"Title": "A"}), op("m1", T1, {"Title": "A"}), op("m1", T1, {"Title": "A"})],
            {"Title": "A"},
            ("m1",),
            2,
        ),
        (
            [op("m1", T2, {"Title": "late copy"}), op("m1", T1, {"Title": "A"}), op("m2", T3, {"City": "X"})],
            {"Title": "A", "City": "X"},
            ("m1", "m2"),
            1,
        ),
        # Without a message_id nothing can be called a duplicate.
        ([op("", T1, {"Title": "A"}), op("", T2, {"Title": "B"})], {"Title": "B"}, ("", ""), 0),
    ],
)
def test_merge_ops(ops, fields, message_ids, dropped):
    merged, duplicates = merge_ops(ops)
    assert (merged.fields, merged.message_ids, duplicates) == (fields, message_ids, dropped)
    assert merged.events == tuple({"messageId": m} for m in message_ids)
    assert merged.sources == tuple(f"{m}.jsonl" for m in message_ids)


def test_merged_op_whole():
    ops = [
        op(
            "m2", T2, {"Title": "B"}, value="Peter@Example.com", defaults={"Company": "n/a"}, source="b.jsonl"
        ),
        op(
            "m1",
            T1,
            {"Title": "A"},
            value="peter@example.com",
            defaults={"LastName": "n/a", "Company": "x"},
            source="a.jsonl.gz",
        ),
    ]
    assert merge_ops(iter(ops)) == (
        MergedOp(
            sobject="Lead",
            match_field="Email",
            match_value="Peter@Example.com",
            fields={"Title": "B"},
            create_defaults={"LastName": "n/a", "Company": "n/a"},
            events=({"messageId": "m1"}, {"messageId": "m2"}),
            message_ids=("m1", "m2"),
            sources=("a.jsonl.gz", "b.jsonl"),
        ),
        0,
    )


def test_inputs_are_not_changed():
    first = op("m1", T1, {"Title": "A"})
    merge_ops([first, op("m2", T2, {"Title": "B"})])
    assert first.fields == {"Title": "A"}


@pytest.mark.parametrize(
    "ops, message",
    [
        ([], "merge_ops needs at least one RecordOp"),
        (
            [op("m1", T1, {}), op("m2", T1, {}, value="x@y.z")],
            "merge_ops got ops for several records: Lead|a@b.c, Lead|x@y.z",
        ),
        (
            [op("m1", T1, {}), op("m2", T1, {}, sobject="Account")],
            "merge_ops got ops for several records: Account|a@b.c, Lead|a@b.c",
        ),
    ],
)
def test_merge_ops_rejects(ops, message):
    with pytest.raises(ValueError) as raised:
        merge_ops(ops)
    assert str(raised.value) == message


def test_merged_op_needs_a_message_id_and_a_source_per_event():
    with pytest.raises(ValueError) as raised:
        MergedOp("Lead", "Email", "a@b.c", {}, {}, ({"messageId": "m1"},), ("m1",), ())
    assert str(raised.value) == (
        "MergedOp needs one message_id and one source per event: 1 events, 1 message_ids, 0 sources"
    )
