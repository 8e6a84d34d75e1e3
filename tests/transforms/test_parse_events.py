"""ParseEvents: good lines become SegmentEvents, bad ones dead letters with a reason and the line."""

import json

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.events import EventLine
from tests.transforms.conftest import run_and_count
from transforms.parse_events import ParseEvents
from transforms.parsing import MAX_NESTING_DEPTH

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
        EventLine("f1", 1, json.dumps(IDENTIFY)),
        EventLine("f1", 2, json.dumps(GROUP)),
        EventLine("f2", 1, "{not json"),
        EventLine("f2", 2, "[1, 2]"),
        EventLine("f2", 3, '{"type": "purchase", "userId": "u"}'),
        EventLine("f2", 4, '{"type": "group", "userId": "u", "traits": {"name": "T"}}'),
        EventLine("f3", 1, b'{"type": "identify", "x": "\xff"}'),
    ]
    result = p | "Lines" >> beam.Create(lines).with_output_types(EventLine) | "Parse" >> ParseEvents()

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
    lines = beam.Create([EventLine("f", 1, "  ")]).with_output_types(EventLine)
    result = p | "Lines" >> lines | "Parse" >> ParseEvents()
    assert_that(result.output, equal_to([]), label="CheckNoEvents")
    assert_that(
        result.dead_letter | "Reasons" >> beam.Map(lambda d: (d.stage, d.reason)),
        equal_to([("parse", "blank_line")]),
        label="CheckDeadLetters",
    )
    run_and_count(p)


# Nested this deep, an event overflows Python's recursion where Beam pickles it; so does a value with inf.
DEEP = '{"type": "identify", "userId": "u", "traits": {"x": ' + "[" * 488 + "]" * 488 + "}}"
HUGE = '{"type": "identify", "userId": "u", "traits": {"email": "a@b.c", "n": 1e400}}'
AT_LIMIT = {
    "type": "identify",
    "userId": "u",
    "traits": {"x": json.loads("[" * (MAX_NESTING_DEPTH - 2) + "]" * (MAX_NESTING_DEPTH - 2))},
}
# A lone surrogate, which UTF-8 cannot hold, in a name, a trait's name, an email; no messageId.
SURROGATES = (
    '{"type": "identify", "userId": "u", "traits": {"email": "a\\ud800@b.c", "\\udfff": "\\ud800 B"}}'
)


def test_hostile_lines_are_dead_letters_or_clean_events(p):
    lines = [
        EventLine("f", 1, DEEP),
        EventLine("f", 2, HUGE),
        EventLine("f", 3, SURROGATES),
        EventLine("f", 4, json.dumps(AT_LIMIT)),
    ]
    result = p | "Lines" >> beam.Create(lines).with_output_types(EventLine) | "Parse" >> ParseEvents()
    assert_that(
        result.output | "Traits" >> beam.Map(lambda e: (e.seq, e.traits)),
        equal_to([(3, {"email": "a\ufffd@b.c", "\ufffd": "\ufffd B"}), (4, AT_LIMIT["traits"])]),
        label="CheckEvents",
    )
    assert_that(
        result.dead_letter | "SummarizeDeadLetters" >> beam.Map(_dead_letter_summary),
        equal_to(
            [
                ("parse", "too_deeply_nested", False, DEEP, "f"),
                ("parse", "invalid_number", False, HUGE, "f"),
            ]
        ),
        label="CheckDeadLetters",
    )
    run_and_count(p)


def test_an_event_dated_after_it_was_read_is_ordered_as_of_then():
    # Found by a hostile review: dated 2099 (a client clock ahead), its values outranked every later event.
    from transforms.parse_events import _ParseLine

    parse = _ParseLine(False, clock=lambda: 1_764_352_800.25)  # 2025-11-28T18:00:00.250Z
    future = {**IDENTIFY, "timestamp": "2099-01-01T00:00:00Z"}
    # Within the second it was read: not counted as dated in the future.
    now = {**IDENTIFY, "messageId": "m3", "timestamp": "2025-11-28T18:00:00.999Z"}

    [ahead] = parse.process(EventLine("f1", 1, json.dumps(future)))
    [kept] = parse.process(EventLine("f1", 2, json.dumps(now)))

    assert (ahead.message_id, ahead.timestamp) == ("m1", "2025-11-28T18:00:01.000Z")
    assert ahead.raw["timestamp"] == "2099-01-01T00:00:00Z"  # a dead letter still replays the event as sent
    assert (kept.message_id, kept.timestamp) == ("m3", "2025-11-28T18:00:00.999Z")


@pytest.mark.parametrize(
    "members, timestamp",
    [
        # Dated after its receivedAt (a client clock ahead): as of its receipt.
        (
            {"originalTimestamp": "2025-11-28T17:00:00Z", "receivedAt": "2020-01-01T00:00:00Z"},
            "2020-01-01T00:00:00.000Z",
        ),
        (
            {"timestamp": "2099-01-01T00:00:00Z", "receivedAt": "2025-11-28T18:00:00.5+01:00"},
            "2025-11-28T17:00:00.500Z",
        ),
        # Dated before its receipt, as events are: kept.
        (
            {"timestamp": "2025-11-28T17:00:00Z", "receivedAt": "2025-11-28T17:30:00Z"},
            "2025-11-28T17:00:00.000Z",
        ),
        # A receivedAt after it was read, or no time at all: the time it was read bounds it.
        (
            {"timestamp": "2099-01-01T00:00:00Z", "receivedAt": "2099-06-01T00:00:00Z"},
            "2025-11-28T18:00:01.000Z",
        ),
        ({"timestamp": "2099-01-01T00:00:00Z", "receivedAt": "soon"}, "2025-11-28T18:00:01.000Z"),
    ],
)
def test_an_event_is_ordered_no_later_than_its_receipt(members, timestamp):
    from transforms.parse_events import _ParseLine

    parse = _ParseLine(False, clock=lambda: 1_764_352_800.25)  # 2025-11-28T18:00:00.250Z
    event = {k: v for k, v in IDENTIFY.items() if k != "timestamp"} | members
    [parsed] = parse.process(EventLine("f1", 1, json.dumps(event)))
    assert parsed.timestamp == timestamp


def test_events_dated_in_the_future_are_counted(p):
    lines = [
        EventLine("f1", 1, json.dumps({**IDENTIFY, "timestamp": "2099-01-01T00:00:00Z"})),
        EventLine("f1", 2, json.dumps(IDENTIFY)),
        EventLine("f1", 3, json.dumps({**IDENTIFY, "receivedAt": "2026-11-28T09:00:00Z"})),
    ]
    _ = p | "Lines" >> beam.Create(lines).with_output_types(EventLine) | "Parse" >> ParseEvents()
    assert run_and_count(p)["future_timestamps"] == 2
