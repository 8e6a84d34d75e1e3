"""ToRecordOps: identify -> Lead op, group -> Account op, other types counted, bad events dead-lettered."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.events import SegmentEvent
from tests.transforms.conftest import run_and_count
from transforms.to_record_ops import ToRecordOps

ADDRESS = {"city": "East Greenwich", "country": "US"}
EVENTS = [
    SegmentEvent(
        "identify",
        "i1",
        "t1",
        user_id="u",
        traits={"email": "a@example.com", "name": "Peter Gibbons"},
        source="in/a.jsonl",
    ),
    SegmentEvent("identify", "i2", "t2", user_id="u", traits={"name": "No Email"}, raw={"messageId": "i2"}),
    SegmentEvent(
        "group", "g1", "t3", group_id="813", traits={"name": "Teemo", "address": ADDRESS}, source="in/b.gz"
    ),
    SegmentEvent("group", "g2", "t4", group_id="814", traits={}, raw={"messageId": "g2"}, source="in/c.json"),
    SegmentEvent("track", "t1", "t5", event="Signed Up"),
    SegmentEvent("track", "t2", "t6", event="Signed Up"),
    SegmentEvent("page", "p1", "t7"),
    SegmentEvent("alias", "a1", "t8"),
]


def _op_summary(op):
    return (
        op.sobject,
        op.match_field,
        op.match_value,
        op.fields,
        op.create_defaults,
        op.message_id,
        op.source,
    )


@pytest.mark.parametrize(
    "address_mapping, account_fields",
    [
        ("billing", {"BillingCity": "East Greenwich", "BillingCountry": "US"}),
        ("shipping", {"ShippingCity": "East Greenwich", "ShippingCountry": "US"}),
    ],
)
def test_ops_dead_letters_and_counters(p, address_mapping, account_fields):
    result = p | "Events" >> beam.Create(EVENTS) | "ToOps" >> ToRecordOps(address_mapping)

    lead_fields = {"FirstName": "Peter", "LastName": "Gibbons", "Email": "a@example.com"}
    account = {"Name": "Teemo", "AccountNumber": "813", **account_fields}
    assert_that(
        result.output | "SummarizeOps" >> beam.Map(_op_summary),
        equal_to(
            [
                (
                    "Lead",
                    "Email",
                    "a@example.com",
                    lead_fields,
                    {"LastName": "n/a", "Company": "n/a"},
                    "i1",
                    "in/a.jsonl",
                ),
                ("Account", "AccountNumber", "813", account, {}, "g1", "in/b.gz"),
            ]
        ),
        label="CheckOps",
    )
    assert_that(
        result.dead_letter
        | "SummarizeDeadLetters" >> beam.Map(lambda d: (d.stage, d.reason, d.event, d.source)),
        equal_to(
            [
                ("map", "missing_email", {"messageId": "i2"}, None),
                ("map", "missing_name", {"messageId": "g2"}, "in/c.json"),
            ]
        ),
        label="CheckDeadLetters",
    )
    counts = run_and_count(p)
    assert counts == {
        "filtered:no_action_for_track": 2,
        "filtered:no_action_for_page": 1,
        "filtered:no_action_for_alias": 1,
    }


def test_rejects_an_unknown_address_mapping():
    with pytest.raises(ValueError, match="address_mapping must be one of billing, shipping, both"):
        ToRecordOps("home")
