"""SelectEnabled: the seed's integrations.Salesforce gate, and --always_enabled."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.events import SegmentEvent
from tests.transforms.conftest import run_and_count
from transforms.select_enabled import SelectEnabled

EVENTS = [
    SegmentEvent("identify", "on", "", integrations={"Salesforce": True}),
    SegmentEvent("identify", "options", "", integrations={"Salesforce": {"x": 1}}),
    SegmentEvent("identify", "off", "", integrations={"Salesforce": False}),
    SegmentEvent("identify", "missing", ""),
    SegmentEvent("identify", "all", "", integrations={"All": True}),
]


@pytest.mark.parametrize(
    "always_enabled, passed, filtered",
    [
        (False, ["on", "options"], 3),
        # A sender's explicit "Salesforce": false still holds (Segment's integrations object).
        (True, ["on", "options", "missing", "all"], 1),
    ],
)
def test_gate(p, always_enabled, passed, filtered):
    selected = (
        p
        | "Events" >> beam.Create(EVENTS)
        | "Select" >> SelectEnabled(always_enabled)
        | "Ids" >> beam.Map(lambda e: e.message_id)
    )
    assert_that(selected, equal_to(passed), label="CheckSelected")
    counts = run_and_count(p)
    assert counts.get("filtered:integration_disabled", 0) == filtered
