"""ParseEvents: good lines become SegmentEvents, bad ones dead letters with a reason and the line."""

import json

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.transforms.conftest import run_and_count
from transforms.parse_events import ParseEvents

IDENTIFY = {
    "type": "identify",
    "messageId": "m1",
    "userId": "u1",
    "timestamp": "2026-11-28T10:00:00Z",
    "traits": {"email": "a@example.com"},
}
GROUP = {"type": "group", "messageId": "m2", "userId": "u1", "groupId": "813", "traits": {"name": "T"}}


def _event_summary(e):
    return (e.type, e.message_id, e.user_id, e.group_id, e.traits, e.source)


def _dead_letter_summary(d):
    return (d.stage, d.reason, d.retryable, d.event, d.source)


def test_events_and_dead_letters(p):
    lines = [
        ("f1", json.dumps(IDENTIFY)),
        ("f1", json.dumps(GROUP)),
        ("f2", "{not json"),
        ("f2", "[1, 2]"),
        ("f2", '{"type": "purchase", "userId": "u"}'),
        ("f2", '{"type": "group", "userId": "u", "traits": {"name": "T"}}'),
        ("f3", b'{"type": "identify", "x": "\xff"}'),
    ]
    result = p | "Lines" >> beam.Create(lines) | "Parse" >> ParseEvents()

    assert_that(
        result.output | "SummarizeEvents" >> beam.Map(_event_summary),
        equal_to(
            [
                ("identify", "m1", "u1", None, {"email": "a@example.com"}, "f1"),
                ("group", "m2", "u1", "813", {"name": "T"}, "f1"),
            ]
        ),
        label="CheckEvents",
    )
    assert_that(
        result.dead_letter | "SummarizeDeadLetters" >> beam.Map(_dead_letter_summary),
        equal_to(
            [
                ("parse", "invalid_json", False, "{not json", "f2"),
                ("parse", "not_an_object", False, "[1, 2]", "f2"),
                ("parse", "unknown_type", False, {"type": "purchase", "userId": "u"}, "f2"),
                (
                    "parse",
                    "missing_group_id",
                    False,
                    {"type": "group", "userId": "u", "traits": {"name": "T"}},
                    "f2",
                ),
                ("parse", "invalid_encoding", False, '{"type": "identify", "x": "\\xff"}', "f3"),
            ]
        ),
        label="CheckDeadLetters",
    )
    run_and_count(p)


def test_a_blank_line_that_slips_through_is_still_accounted_for(p):
    result = p | "Lines" >> beam.Create([("f", "  ")]) | "Parse" >> ParseEvents()
    assert_that(result.output, equal_to([]), label="CheckNoEvents")
    assert_that(
        result.dead_letter | "Reasons" >> beam.Map(lambda d: (d.stage, d.reason)),
        equal_to([("parse", "blank_line")]),
        label="CheckDeadLetters",
    )
    run_and_count(p)
