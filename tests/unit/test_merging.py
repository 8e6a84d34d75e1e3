"""Table tests for merging: field by field in event order, input order for equal times, duplicates once."""

import itertools

import pytest

from schemas.events import EventRef
from schemas.records import MergedOp, RecordOp
from transforms.merging import RecordMerge, merge_ops


def op(message_id, timestamp, fields, value="a@b.c", defaults=None, sobject="Lead", source=None, seq=0):
    return RecordOp(
        sobject=sobject,
        match_field="Email",
        match_value=value,
        fields=fields,
        create_defaults=defaults if defaults is not None else {"LastName": "n/a"},
        timestamp=timestamp,
        message_id=message_id,
        ref=EventRef(f"{message_id}.jsonl" if source is None else source, seq),
    )


T1, T2, T3 = "2026-11-28T18:00:01.000Z", "2026-11-28T18:00:02.000Z", "2026-11-28T18:00:03.000Z"


@pytest.mark.parametrize(
    "ops, fields, times, message_ids, dropped",
    [
        ([op("m1", T1, {"Title": "A"})], {"Title": "A"}, {"Title": T1}, ("m1",), 0),
        # Later values win, whatever the arrival order; fields the later event lacks are kept.
        (
            [op("m2", T2, {"Title": "B"}), op("m1", T1, {"Title": "A", "City": "X"})],
            {"Title": "B", "City": "X"},
            {"Title": T2, "City": T1},
            ("m1", "m2"),
            0,
        ),
        (
            [op("m3", T3, {"City": None}), op("m1", T1, {"City": "X"}), op("m2", T2, {"Phone": "1"})],
            {"City": None, "Phone": "1"},
            {"City": T3, "Phone": T2},
            ("m1", "m2", "m3"),
            0,
        ),
        # Same timestamp: the messageId decides, so that every copy of an event has the same place.
        (
            [
                op("a", T1, {"Title": "line 2"}, source="f", seq=2),
                op("b", T1, {"Title": "line 1"}, source="f", seq=1),
            ],
            {"Title": "line 1"},
            {"Title": T1},
            ("b", "a"),
            0,
        ),
        # No timestamps at all: input order within the file decides.
        (
            [
                op("z", "", {"Title": "first"}, source="f", seq=1),
                op("a", "", {"Title": "second"}, source="f", seq=2),
            ],
            {"Title": "second"},
            {"Title": ""},
            ("z", "a"),
            0,
        ),
        # No timestamp sorts first.
        (
            [op("m1", T1, {"Title": "A"}), op("m0", "", {"Title": "0"})],
            {"Title": "A"},
            {"Title": T1},
            ("m0", "m1"),
            0,
        ),
        # Duplicate messageIds: the first copy counts, the others are dropped and counted.
        (
            [op("m1", T1, {"Title": "A"}), op("m1", T1, {"Title": "A"}), op("m1", T1, {"Title": "A"})],
            {"Title": "A"},
            {"Title": T1},
            ("m1",),
            2,
        ),
        # Without a message_id nothing can be called a duplicate.
        (
            [op("", T1, {"Title": "A"}, seq=1), op("", T2, {"Title": "B"}, seq=2)],
            {"Title": "B"},
            {"Title": T2},
            ("", ""),
            0,
        ),
    ],
)
def test_merge_ops(ops, fields, times, message_ids, dropped):
    merged, duplicates = merge_ops(ops)
    assert (merged.fields, merged.field_times, duplicates) == (fields, times, dropped)
    assert merged.events == len(message_ids)
    by_id = {o.message_id: o.ref for o in ops}
    assert sorted(merged.refs) == sorted(
        {by_id[m] for m in message_ids} | ({o.ref for o in ops} if "" in message_ids else set())
    )


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
    merged, duplicates = merge_ops(iter(ops))
    assert duplicates == 0
    assert merged == MergedOp(
        sobject="Lead",
        match_field="Email",
        # The latest spelling of the key, like any other value.
        match_value="Peter@Example.com",
        fields={"Title": "B"},
        create_defaults={"Company": "n/a", "LastName": "n/a"},
        field_times={"Title": T2},
        refs=(EventRef("a.jsonl.gz", 0), EventRef("b.jsonl", 0)),
    )


EVENTS = [
    op("m1", T1, {"Title": "A", "City": "X"}, source="f", seq=1),
    op("m2", T2, {"Title": "B"}, value="A@B.C", source="f", seq=2),
    op("m3", T2, {"Phone": "1", "City": None}, source="g", seq=1),
    op("m4", "", {"Phone": "0", "Rating": "Hot"}, source="f", seq=3),
    op("m2", T2, {"Title": "B"}, value="A@B.C", source="h", seq=9),  # the same call delivered twice
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(EVENTS))))[::7])
def test_any_arrival_order_and_any_split_give_the_same_record(order):
    expected = merge_ops(EVENTS)[0]
    ordered = [EVENTS[i] for i in order]
    assert merge_ops(ordered)[0].fields == expected.fields
    for cut in range(1, len(ordered)):
        left, right = RecordMerge(), RecordMerge()
        for o in ordered[:cut]:
            left.add(o)
        for o in ordered[cut:]:
            right.add(o)
        merged = left.merge(right)
        result = merged.result()
        assert (result.fields, result.field_times, result.match_value) == (
            expected.fields,
            expected.field_times,
            expected.match_value,
        )
        assert (merged.duplicates, result.events) == (1, 4)


def test_inputs_are_not_changed():
    first = op("m1", T1, {"Title": "A"})
    merge_ops([first, op("m2", T2, {"Title": "B"})])
    assert first.fields == {"Title": "A"}


@pytest.mark.parametrize(
    "ops, message",
    [
        ([], "RecordMerge.result needs at least one RecordOp"),
        ([op("m1", T1, {}), op("m2", T1, {}, value="x@y.z")], "RecordMerge got ops for several records"),
        ([op("m1", T1, {}), op("m2", T1, {}, sobject="Account")], "RecordMerge got ops for several records"),
    ],
)
def test_merge_ops_rejects(ops, message):
    with pytest.raises(ValueError, match=message):
        merge_ops(ops)


def test_an_empty_partial_merge_changes_nothing():
    merge = RecordMerge().add(op("m1", T1, {"Title": "A"}))
    assert merge.merge(RecordMerge()).result() == RecordMerge().merge(merge).result()
