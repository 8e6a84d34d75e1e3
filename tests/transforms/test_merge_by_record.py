"""MergeByRecord: one MergedOp per record (keys compared case-insensitively), duplicates counted."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from schemas.events import EventRef
from schemas.records import RecordOp
from tests.transforms.conftest import run_and_count
from transforms.merge_by_record import MergeByRecord


def _op(value, fields, ts, mid, line=1):
    return RecordOp(
        "Lead", "Email", value, fields, {"LastName": "n/a"}, ts, mid, EventRef(f"{mid}.jsonl", line)
    )


OPS = [
    _op("a@example.com", {"Title": "old", "Phone": "1"}, "2026-01-01T00:00:00.000Z", "m1"),
    _op("A@Example.com", {"Title": "new"}, "2026-01-02T00:00:00.000Z", "m2"),
    _op("a@example.com", {"Title": "new"}, "2026-01-02T00:00:00.000Z", "m2", line=7),  # delivered twice
    _op("b@example.com", {"Title": "b"}, "2026-01-01T00:00:00.000Z", "m3"),
]


def _merged_summary(m):
    return (m.sobject, m.match_value, m.fields, m.create_defaults, m.field_times, len(m.refs))


def test_merges_per_record_and_counts_duplicates(p):
    merged = p | "Ops" >> beam.Create(OPS) | "Merge" >> MergeByRecord()
    assert_that(
        merged | "Summarize" >> beam.Map(_merged_summary),
        equal_to(
            [
                (
                    "Lead",
                    "A@Example.com",
                    {"Title": "new", "Phone": "1"},
                    {"LastName": "n/a"},
                    {"Title": "2026-01-02T00:00:00.000Z", "Phone": "2026-01-01T00:00:00.000Z"},
                    2,
                ),
                (
                    "Lead",
                    "b@example.com",
                    {"Title": "b"},
                    {"LastName": "n/a"},
                    {"Title": "2026-01-01T00:00:00.000Z"},
                    1,
                ),
            ]
        ),
        label="CheckMerged",
    )
    counts = run_and_count(p)
    assert counts == {"deduplicated": 1}
