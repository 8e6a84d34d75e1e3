"""The element coders give back what they were given (MergedOp as a flat tuple, WrittenRecord a tuple)."""

import pickle

import pytest

from schemas.events import EventRef, EventRefs
from schemas.records import MergedOp
from transforms.batch_writer import WrittenRecord
from transforms.coders import LocalHandleCoder, MergedOpCoder, WrittenRecordCoder, held_handles

MERGED = [
    MergedOp(
        "Lead",
        "Email",
        "Ada@Example.com",
        {"Email": "Ada@Example.com", "LastName": "Lovelace", "score__c": 1.5, "vip__c": None},
        {"Company": "n/a"},
        {"Email": "2024-02-01T08:00:00.000Z", "LastName": ""},
        [
            EventRef("events/a.jsonl.gz", 3),
            EventRef("events/b.jsonl.gz", 1),
            EventRef("events/a.jsonl.gz", 9),
        ],
    ),
    # Events of a stream carry their text; a custom action's op once per event.
    MergedOp(
        "Case",
        "",
        "",
        {"Subject": "Refund \ud800 asked"},
        {},
        {"Subject": "2024-02-01T08:00:00.000Z"},
        [EventRef("kafka:events/0", 17, '{"type":"track"}')],
        action="open_case",
        instance="msg-1",
    ),
    MergedOp("Account", "AccountNumber", "acct-1", {}, {}, {}, []),
]


@pytest.mark.parametrize("op", MERGED, ids=["files", "stream action", "empty"])
def test_a_merged_op_comes_back_whole(op: MergedOp) -> None:
    coder = MergedOpCoder().get_impl()
    for back in (
        coder.decode(coder.encode(op)),
        pickle.loads(pickle.dumps(op)),
        MergedOp.from_flat(op.flat()),
    ):
        assert back == op
        assert list(back.refs) == list(op.refs)
        assert isinstance(back.refs, EventRefs)
        assert back.key == op.key
        assert back.events == op.events


@pytest.mark.parametrize(
    "record",
    [
        WrittenRecord("Lead", "ada@example.com", "created", "00Q000000000001AAA", 2),
        WrittenRecord(
            "Contact", "x", "read", None, 1, True, "find_contact", "msg-1", ({"Id": "003", "N": 1.5},)
        ),
    ],
    ids=["created", "read with rows"],
)
def test_a_written_record_comes_back_whole(record: WrittenRecord) -> None:
    coder = WrittenRecordCoder().get_impl()
    back = coder.decode(coder.encode(record))
    assert back == record
    assert type(back) is WrittenRecord


def test_a_value_handed_over_by_reference_comes_back_itself_once() -> None:
    coder = LocalHandleCoder().get_impl()
    value = [MERGED[0], MERGED[1]]
    before = held_handles()
    first, second = coder.encode(value), coder.encode(value)
    assert len(first) == 8 and first != second  # a number of 8 bytes per encoding
    assert held_handles() == before + 2
    assert coder.decode(second) is value and coder.decode(first) is value
    assert held_handles() == before
    # Decoded again (a runner that reads an element twice) or in another process: an error, not a loss.
    with pytest.raises(RuntimeError, match="not held in this process"):
        coder.decode(first)
    with pytest.raises(RuntimeError, match="runs across processes or decodes an element twice"):
        coder.decode(bytes(8))
    assert coder.estimate_size(value) == 64  # measured without encoding
    assert held_handles() == before
    assert not LocalHandleCoder().is_deterministic()
