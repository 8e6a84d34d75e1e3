"""Tallies: a stage's counts handed on as data, equal to its Beam counters, one element per bundle."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow

from schemas.events import SegmentEvent
from tests.transforms.conftest import run_and_count
from transforms import tally
from transforms.select_enabled import SelectEnabled
from transforms.tally import TALLY, Counts, MergeTallies, Tally
from transforms.to_record_ops import ToRecordOps


@pytest.mark.parametrize(
    "counted, strings, expected",
    [
        ([], [], None),  # nothing counted: no element
        ([("a", 0)], [], Tally({"a": 0})),  # a counter counted zero times still shows, as in metrics
        ([("a", 1), ("b", 2), ("a", 3)], [], Tally({"a": 4, "b": 2})),
        (
            [],
            [("names", "Lead.X"), ("names", "Lead.X"), ("names", "Lead.Y")],
            Tally({}, {"names": {"Lead.X", "Lead.Y"}}),
        ),
    ],
)
def test_a_bundle_hands_on_what_it_counted_once(counted, strings, expected):
    counts = Counts()
    for name, n in counted:
        counts.inc(name, n)
    for name, value in strings:
        counts.add(name, value)
    emitted = list(counts.emit())
    if expected is None:
        assert emitted == []
    else:
        [output] = emitted
        assert output.tag == TALLY
        assert output.value.value == expected
        assert output.value.windows == (GlobalWindow(),)
    assert list(counts.emit()) == []  # the next bundle starts from nothing


def test_tallies_merge_counters_and_string_sets():
    merge = MergeTallies()
    parts = [Tally({"a": 1}, {"s": {"x"}}), Tally({"a": 2, "b": 5}, {"s": {"y"}, "t": {"z"}}), Tally()]
    left = merge.add_input(merge.add_input(merge.create_accumulator(), parts[0]), parts[1])
    total = merge.extract_output(
        merge.merge_accumulators([left, merge.add_input(merge.create_accumulator(), parts[2])])
    )
    assert total == Tally({"a": 3, "b": 5}, {"s": {"x", "y"}, "t": {"z"}})


EVENTS = [
    SegmentEvent("identify", "on", "", traits={"email": "a@example.com"}, integrations={"Salesforce": True}),
    SegmentEvent("identify", "off", "", integrations={"Salesforce": False}),
    SegmentEvent("track", "tracked", "", event="Signed Up", integrations={"Salesforce": True}),
    SegmentEvent("page", "page", "", integrations={"Salesforce": True}),
]


def test_the_registered_tallies_total_what_the_counters_count(p):
    ops = p | "Events" >> beam.Create(EVENTS) | "Select" >> SelectEnabled() | "Map" >> ToRecordOps()
    _ = ops.output | "Keys" >> beam.Map(lambda op: op.key)
    totals = (
        tuple(tally.collected(p))
        | "Flatten" >> beam.Flatten()
        | "Total" >> beam.CombineGlobally(MergeTallies())
        | "Counters" >> beam.Map(lambda t: t.counters)
    )
    expected = {
        "filtered:integration_disabled": 1,
        "filtered:no_action_for_track": 1,
        "filtered:no_action_for_page": 1,
    }
    assert_that(totals, equal_to([expected]))
    assert run_and_count(p) == expected
