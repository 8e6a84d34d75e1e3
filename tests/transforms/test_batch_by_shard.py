"""MergePerShard and CutIntoBatches: records merged per shard, batches of one sObject, part-filled batches
regrouped."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.events import EventRef
from schemas.records import RecordOp, batch_order, target_key
from tests.transforms.conftest import run_and_count
from transforms.batch_by_shard import CutIntoBatches, MergePerShard, MergeShard, cut, shard_key
from transforms.coders import handles_given, held_handles

T1, T2 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"


def merge_into_batches(shards: int, batch_size: int, local: bool = False) -> beam.PTransform:
    """What a backfill's REST writes get: the records merged per shard, then cut into batches. `local`:
    the shards' merges and the batches cross the shuffles by reference (the in-process runner's way)."""
    return MergePerShard(shards, local) | CutIntoBatches(batch_size, local)


# Both ways of crossing the shuffles: as bytes (any runner) and by reference (this process's runner).
by_coder = pytest.mark.parametrize("local", [False, True], ids=["bytes", "by reference"])


def _op(sobject, value, fields=None, ts=T1, mid=None, line=1):
    mid = mid or f"{sobject}-{value}-{ts}"
    return RecordOp(
        sobject, "Email", value, fields or {}, {"LastName": "n/a"}, ts, mid, EventRef(f"{mid}.jsonl", line)
    )


def test_shard_key_is_stable_and_case_insensitive():
    # crc32 of "Lead|email|a@example.com": the same in every process and run (unlike hash()).
    assert shard_key(_op("Lead", "a@example.com"), 8) == shard_key(_op("Lead", "A@EXAMPLE.COM "), 8)
    assert [shard_key(_op("Lead", f"u{i}@x.com"), 4) for i in range(4)] == [
        "Lead|2",
        "Lead|2",
        "Lead|3",
        "Lead|3",
    ]


@by_coder
def test_records_are_merged_and_duplicates_counted(p, local):
    ops = [
        _op("Lead", "a@example.com", {"Title": "old", "Phone": "1"}, T1, "m1"),
        _op("Lead", "A@Example.com", {"Title": "new"}, T2, "m2"),
        _op("Lead", "a@example.com", {"Title": "new"}, T2, "m2", line=7),  # delivered twice
        _op("Lead", "b@example.com", {"Title": "b"}, T1, "m3"),
    ]
    given = handles_given()
    batches = p | "Ops" >> beam.Create(ops) | "Batch" >> merge_into_batches(4, 10, local)
    assert_that(
        batches
        | "Records"
        >> beam.FlatMap(lambda b: [(m.match_value, m.fields, m.field_times, len(m.refs)) for m in b]),
        equal_to(
            [
                ("A@Example.com", {"Title": "new", "Phone": "1"}, {"Title": T2, "Phone": T1}, 2),
                ("b@example.com", {"Title": "b"}, {"Title": T1}, 1),
            ]
        ),
    )
    counts = run_and_count(p)
    assert counts["deduplicated"] == 1
    # By reference: the shards' merges and the batch went through handles, and every one was taken.
    assert (handles_given() > given, held_handles()) == (local, 0)


@by_coder
def test_batches_hold_one_sobject_and_at_most_batch_size(p, local):
    ops = [_op("Lead", f"u{i}@x.com") for i in range(7)] + [_op("Account", f"{i}") for i in range(3)]
    batches = p | "Ops" >> beam.Create(ops) | "Batch" >> merge_into_batches(1, 3, local)
    assert_that(
        batches
        | "Shapes" >> beam.Map(lambda b: (b[0].sobject, len(b), {op.sobject for op in b} == {b[0].sobject})),
        equal_to([("Lead", 3, True), ("Lead", 3, True), ("Lead", 1, True), ("Account", 3, True)]),
        label="CheckShapes",
    )
    assert_that(
        batches | "Flatten" >> beam.FlatMap(lambda b: [(op.sobject, op.match_value) for op in b]),
        equal_to([(op.sobject, op.match_value) for op in ops]),
        label="CheckEveryRecordOnce",
    )
    run_and_count(p)
    assert held_handles() == 0


@pytest.mark.parametrize("shards, batch_size", [(0, 10), (8, 0)])
def test_rejects_bad_settings(shards, batch_size):
    with pytest.raises(ValueError, match="must be at least 1"):
        merge_into_batches(shards, batch_size)


@pytest.mark.parametrize(
    "leads, shards, batch_size, sizes",
    [
        # Every batch costs a lookup and a write call: 20 Leads over 8 shards are still one batch.
        (20, 8, 1000, [20]),
        (25, 8, 10, [10, 10, 5]),
        (2500, 8, 1000, [1000, 1000, 500]),
    ],
)
def test_part_filled_shards_are_regrouped_into_as_few_batches_as_they_fill(
    p, leads, shards, batch_size, sizes
):
    ops = [_op("Lead", f"u{i}@x.com") for i in range(leads)]
    batches = (
        p | "Ops" >> beam.Create(ops) | "Batch" >> merge_into_batches(shards=shards, batch_size=batch_size)
    )
    sorted_sizes = batches | "Sizes" >> beam.Map(len) | "All" >> beam.combiners.ToList() | beam.Map(sorted)
    assert_that(sorted_sizes, equal_to([sorted(sizes)]))
    run_and_count(p)


def test_partial_merges_of_a_shard_combine_to_the_same_records():
    fn = MergeShard()
    ops = [_op("Lead", "a@x.com", {"Title": str(i)}, f"2026-01-0{i}T00:00:00.000Z") for i in range(1, 6)]
    left, right = fn.create_accumulator(), fn.create_accumulator()
    for op in ops[::2]:
        fn.add_input(left, op)
    for op in ops[1::2]:
        fn.add_input(right, op)
    merged, duplicates = fn.extract_output(fn.merge_accumulators([left, right]))
    assert ([m.fields for m in merged], duplicates) == ([{"Title": "5"}], 0)


def test_lists_of_any_size_and_objects_are_cut_into_batches_of_one_sobject(p):
    """CutIntoBatches takes lists as MergePerShard gives them (or mixed, as any writer's input may be):
    full batches as they are, each sObject's part-filled rests regrouped into as few as they fill."""
    merged, _ = MergeShard().extract_output(_merged_shard(12))
    leads = [m for m in merged if m.sobject == "Lead"]
    accounts = [m for m in merged if m.sobject == "Account"]
    lists = [leads[:7] + accounts[:1], leads[7:], accounts[1:]]  # 8 Leads, 4 Accounts
    batches = p | "Lists" >> beam.Create(lists) | "Cut" >> CutIntoBatches(batch_size=3)
    assert_that(
        batches
        | "Shapes" >> beam.Map(lambda b: (b[0].sobject, len(b), {op.sobject for op in b} == {b[0].sobject})),
        equal_to(
            [
                ("Lead", 3, True),  # the first list's two full batches of Leads
                ("Lead", 3, True),
                ("Lead", 2, True),  # its Lead left over and the second list's two, regrouped
                ("Account", 3, True),  # the third list's full batch of Accounts
                ("Account", 1, True),  # the first list's Account
            ]
        ),
        label="CheckShapes",
    )
    assert_that(
        batches | "Keys" >> beam.FlatMap(lambda b: [op.key for op in b]),
        equal_to([op.key for op in merged]),
        label="CheckEveryRecordOnce",
    )
    run_and_count(p)


def _merged_shard(records: int):
    """A shard's accumulator of `records` records: 8 Leads, then Accounts."""
    fn = MergeShard()
    shard = fn.create_accumulator()
    for i in range(records):
        fn.add_input(shard, _op("Lead" if i < 8 else "Account", f"u{i}@x.com"))
    return shard


def _action_op(action: str, value: str, match_field: str = "Email", instance: str = "") -> RecordOp:
    return RecordOp(
        "Lead", match_field, value, {}, {}, T1, f"{action}-{value}", action=action, instance=instance
    )


def test_the_records_of_two_actions_on_one_lead_share_a_shard_and_a_batch():
    # The identify preset and a form's track both upsert the Lead of an email: two records (they never
    # merge), one target. Two batches written at once would each find no Lead and each create one.
    ops = [_action_op("identify_lead", f"u{i}@x.com") for i in range(6)]
    ops += [_action_op("form_lead", f"U{i}@X.com ") for i in range(6)]
    assert {target_key(op) for op in ops} == {f"Lead|email|u{i}@x.com" for i in range(6)}
    for i in range(6):
        assert shard_key(ops[i], 4) == shard_key(ops[6 + i], 4)
    fn = MergeShard()
    shard = fn.create_accumulator()
    for op in ops:
        fn.add_input(shard, op)
    merged, _ = fn.extract_output(shard)
    assert [m.action for m in merged[:2]] == ["form_lead", "identify_lead"]
    for batch in cut(merged, 3):
        targets = [target_key(m) for m in batch]
        assert len(batch) == 4 and targets == sorted(targets) and len(set(targets)) == 2


@pytest.mark.parametrize(
    "targets, size, batches",
    [
        ("abbcddd", 2, ["abb", "cddd"]),
        ("abbcddd", 3, ["abb", "cddd"]),
        ("abcd", 2, ["ab", "cd"]),
        ("abcde", 2, ["ab", "cd", "e"]),
        ("aaaa", 1, ["aaaa"]),
        ("", 5, []),
    ],
)
def test_cut_never_parts_the_records_of_one_target(targets, size, batches):
    ops = [_action_op(f"action{n}", f"{t}@x.com") for n, t in enumerate(targets)]
    ops.sort(key=batch_order)
    assert ["".join(op.match_value[0] for op in batch) for batch in cut(ops, size)] == batches


def test_a_create_is_its_own_target_and_a_read_shares_its_records():
    created = _action_op("case", "", match_field="", instance="m1")
    read = _action_op("a_lookup", "U@x.com", instance="m2")  # its key sorts before the upsert's
    upsert = _action_op("identify", "u@x.com")
    assert target_key(created) == created.key
    # Found by a hostile review: a read in another shard could run before the create of its record.
    assert target_key(read) == target_key(upsert)
    assert sorted([read, upsert], key=batch_order) == [upsert, read]
