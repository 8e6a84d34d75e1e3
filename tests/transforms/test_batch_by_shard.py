"""BatchByShard: stable shard keys, batches of one sObject and at most batch_size ops."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.events import EventRef
from schemas.records import MergedOp
from tests.transforms.conftest import run_and_count
from transforms.batch_by_shard import BatchByShard, shard_count, shard_key


def _merged(sobject, value):
    return MergedOp(sobject, "Email", value, {}, {}, {}, (EventRef(value, 1),))


def test_shard_key_is_stable_and_case_insensitive():
    # crc32 of "Lead|a@example.com": the same in every process and run (unlike hash()).
    assert shard_key(_merged("Lead", "a@example.com"), 8) == shard_key(_merged("Lead", "A@EXAMPLE.COM "), 8)
    assert [shard_key(_merged("Lead", f"u{i}@x.com"), 4) for i in range(4)] == [
        "Lead|0",
        "Lead|0",
        "Lead|1",
        "Lead|1",
    ]


def test_batches_hold_one_sobject_and_at_most_batch_size(p):
    ops = [_merged("Lead", f"u{i}@x.com") for i in range(7)] + [_merged("Account", f"{i}") for i in range(3)]
    batches = p | "Ops" >> beam.Create(ops) | "Batch" >> BatchByShard(shards=1, batch_size=3)

    def shape(batch):
        return ({op.sobject for op in batch} == {batch[0].sobject}, len(batch) <= 3)

    assert_that(batches | "Shapes" >> beam.Map(shape), equal_to([(True, True)] * 4), label="CheckShapes")
    assert_that(
        batches | "Flatten" >> beam.FlatMap(lambda b: [(op.sobject, op.match_value) for op in b]),
        equal_to([(op.sobject, op.match_value) for op in ops]),
        label="CheckEveryOpOnce",
    )
    run_and_count(p)


@pytest.mark.parametrize("shards, batch_size", [(0, 10), (8, 0)])
def test_rejects_bad_settings(shards, batch_size):
    with pytest.raises(ValueError, match="must be at least 1"):
        BatchByShard(shards, batch_size)


@pytest.mark.parametrize(
    "records, shards, batch_size, expected",
    [
        (1, 8, 1000, 1),
        (25, 8, 1000, 1),
        (1000, 8, 1000, 1),
        (1001, 8, 1000, 2),
        (2000, 8, 1000, 2),
        (50_000, 8, 1000, 8),
        (6, 1, 2, 1),
        (6, 8, 2, 3),
        (0, 8, 1000, 1),
    ],
)
def test_shard_count_fills_batches_before_spreading(records, shards, batch_size, expected):
    assert shard_count(records, shards, batch_size) == expected


def test_a_small_run_is_one_batch_per_sobject_whatever_the_shards(p):
    # Every batch costs a lookup and a write call: 20 Leads over 8 shards would cost 8 of each.
    ops = [_merged("Lead", f"u{i}@x.com") for i in range(20)] + [_merged("Account", f"{i}") for i in range(5)]
    batches = p | "Ops" >> beam.Create(ops) | "Batch" >> BatchByShard(shards=8, batch_size=1000)
    sizes = batches | "Sizes" >> beam.Map(lambda b: (b[0].sobject, len(b)))
    assert_that(sizes, equal_to([("Lead", 20), ("Account", 5)]), label="CheckOneBatchEach")
    run_and_count(p)
