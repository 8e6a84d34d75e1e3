"""Table tests for parse_line: events, dead letters by reason, blank lines, ids and timestamps."""

import dataclasses
import datetime
import json

import pytest

from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from transforms.parsing import (
    MAX_NESTING_DEPTH,
    derived_message_id,
    js_number_text,
    nesting_depth,
    normalize_timestamp,
    parse_line,
    received_at,
)

SOURCE = "events/a.jsonl"


def dead(line, source=SOURCE):
    result = parse_line(line, source)
    assert isinstance(result, DeadLetter), result
    assert result.stage == "parse"
    assert result.retryable is False
    assert result.source == source
    return result.reason, result.message, result.event


IDENTIFY = {
    "type": "identify",
    "messageId": "m1",
    "timestamp": "2026-11-28T18:00:00.000Z",
    "userId": "u1",
    "traits": {"email": "peter@example.com"},
    "integrations": {"Salesforce": True},
}


def test_identify_becomes_an_event():
    assert parse_line(json.dumps(IDENTIFY), SOURCE) == SegmentEvent(
        type="identify",
        message_id="m1",
        timestamp="2026-11-28T18:00:00.000Z",
        user_id="u1",
        traits={"email": "peter@example.com"},
        integrations={"Salesforce": True},
        raw=IDENTIFY,
        source=SOURCE,
    )


def test_every_member_is_carried():
    obj = {
        "type": "track",
        "messageId": "m2",
        "timestamp": "2026-11-28T18:00:00Z",
        "anonymousId": "a1",
        "event": "Signed Up",
        "properties": {"plan": "team"},
        "integrations": {"Salesforce": {"x": 1}},
        "context": {"ip": "1.2.3.4"},
    }
    assert parse_line(json.dumps(obj)) == SegmentEvent(
        type="track",
        message_id="m2",
        timestamp="2026-11-28T18:00:00.000Z",
        anonymous_id="a1",
        event="Signed Up",
        properties={"plan": "team"},
        integrations={"Salesforce": {"x": 1}},
        context={"ip": "1.2.3.4"},
        raw=obj,
    )


@pytest.mark.parametrize(
    "line",
    ["", " ", "\t \r\n", "\n", "\ufeff", b"", b"  \r\n"],
)
def test_blank_lines_are_not_events(line):
    assert parse_line(line, SOURCE) is None


@pytest.mark.parametrize(
    "line, reason, message, event",
    [
        (
            "{",
            "invalid_json",
            "line is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
            "{",
        ),
        ("nope", "invalid_json", "line is not JSON: Expecting value: line 1 column 1 (char 0)", "nope"),
        (
            '{"type": "identify"} x',
            "invalid_json",
            "line is not JSON: Extra data: line 1 column 22 (char 21)",
            '{"type": "identify"} x',
        ),
        ('{"a": NaN}', "invalid_json", "line is not JSON: NaN is not a JSON value", '{"a": NaN}'),
        ("[1, 2]", "not_an_object", "line is a JSON array, not an object (a Segment call)", "[1, 2]"),
        (
            '"identify"',
            "not_an_object",
            "line is a JSON string, not an object (a Segment call)",
            '"identify"',
        ),
        ("42", "not_an_object", "line is a JSON number, not an object (a Segment call)", "42"),
        ("null", "not_an_object", "line is a JSON null, not an object (a Segment call)", "null"),
        ("true", "not_an_object", "line is a JSON boolean, not an object (a Segment call)", "true"),
        (
            b'\xff{"type": "identify"}',
            "invalid_encoding",
            "line is not valid UTF-8: invalid start byte at byte 0",
            '\\xff{"type": "identify"}',
        ),
    ],
)
def test_lines_that_are_not_objects(line, reason, message, event):
    assert dead(line) == (reason, message, event)


DOUBLE_LIMIT = "a double (how JSON readers, JavaScript and Salesforce hold numbers) cannot hold it"


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"type": "identify", "userId": "u", "n": 1e400}', f"number 1e400 is out of range: {DOUBLE_LIMIT}"),
        (
            '{"type": "identify", "userId": "u", "n": -1E400}',
            f"number -1E400 is out of range: {DOUBLE_LIMIT}",
        ),
        (
            '{"type": "identify", "userId": "u", "traits": {"x": [1, 2.5e999]}}',
            f"number 2.5e999 is out of range: {DOUBLE_LIMIT}",
        ),
        (
            '{"type": "group", "userId": "u", "groupId": 1e309}',
            f"number 1e309 is out of range: {DOUBLE_LIMIT}",
        ),
        ("1e400", f"number 1e400 is out of range: {DOUBLE_LIMIT}"),
        (
            '{"n": ' + "9" * 400 + ".0}",
            f"number {'9' * 30}... is out of range: {DOUBLE_LIMIT}",
        ),
    ],
)
def test_numbers_beyond_a_double_are_dead_letters_holding_the_line(line, message):
    # The line, not the parsed object: that would hold inf, which no JSON dead-letter file can.
    assert dead(line) == ("invalid_number", message, line)
    replayed = parse_line(parse_line(line, SOURCE).to_json(), SOURCE)
    assert without_time(replayed) == without_time(parse_line(line, SOURCE))


@pytest.mark.parametrize(
    "number, as_float",
    [("1e308", 1e308), ("-1.7976931348623157e308", -1.7976931348623157e308), ("1e-400", 0.0)],
)
def test_numbers_a_double_holds_are_kept(number, as_float):
    event = parse_line(f'{{"type": "identify", "userId": "u", "traits": {{"n": {number}}}}}')
    assert event.traits == {"n": as_float}


def nested_event(depth):
    """An identify whose traits.x nests `depth` - 2 arrays: the whole event is `depth` deep."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return '{"type": "identify", "userId": "u", "traits": {"x": ' + inner + "}}"


TOO_DEEP = f"more than MAX_NESTING_DEPTH ({MAX_NESTING_DEPTH}): no Segment call nests that deep"


@pytest.mark.parametrize(
    "line, message",
    [
        (nested_event(MAX_NESTING_DEPTH + 1), f"event nests arrays or objects 65 levels deep, {TOO_DEEP}"),
        (nested_event(490), f"event nests arrays or objects 490 levels deep, {TOO_DEEP}"),
        ("[" * 100 + "]" * 100, f"event nests arrays or objects 100 levels deep, {TOO_DEEP}"),
        (
            "[" * 100_000 + "]" * 100_000,
            f"line nests arrays or objects too deeply for Python's json to parse, {TOO_DEEP}",
        ),
        ("[" * 100_000, f"line nests arrays or objects too deeply for Python's json to parse, {TOO_DEEP}"),
    ],
)
def test_events_nested_too_deeply_are_dead_letters_holding_the_line(line, message):
    # The line, not the parsed object: pickling that (as Beam does) overflows Python's recursion.
    assert dead(line) == ("too_deeply_nested", message, line)
    replayed = parse_line(DeadLetter.of("parse", "too_deeply_nested", message, line).to_json(), SOURCE)
    assert without_time(replayed) == without_time(parse_line(line, SOURCE))


@pytest.mark.parametrize(
    "line",
    [
        nested_event(MAX_NESTING_DEPTH),
        # Brackets inside strings are text, not nesting.
        '{"type": "identify", "userId": "u", "traits": {"x": "' + "[{" * 200 + '"}}',
    ],
)
def test_events_within_the_nesting_limit_are_events(line):
    assert isinstance(parse_line(line), SegmentEvent)


def test_a_dead_letter_of_an_event_at_the_nesting_limit_replays_it():
    # The dead letter wraps the event in one more object; that level is not the event's.
    event = json.loads(nested_event(MAX_NESTING_DEPTH))
    assert parse_line(dead_letter_line(event), SOURCE) == parse_line(json.dumps(event), SOURCE)


@pytest.mark.parametrize(
    "value, depth",
    [
        (1, 0),
        ("[[[", 0),
        ({}, 1),
        ([], 1),
        ({"a": [1, {"b": []}], "c": {}}, 4),
        ([[], [[[]]], []], 4),
        (json.loads("[" * 900 + "]" * 900), 900),
    ],
)
def test_nesting_depth(value, depth):
    assert nesting_depth(value) == depth


REPLACEMENT = "\ufffd"


@pytest.mark.parametrize(
    "line, traits, raw_traits",
    [
        # In a name, with and without a messageId (the derived one hashes the repaired event).
        (
            '{"type": "identify", "userId": "u", "messageId": "m", "traits": {"name": "A\\ud800"}}',
            {"name": "A" + REPLACEMENT},
            None,
        ),
        (
            '{"type": "identify", "userId": "u", "traits": {"email": "a@b.c", "name": "\\uDFFF B"}}',
            {"email": "a@b.c", "name": REPLACEMENT + " B"},
            None,
        ),
        # In a trait's name (a key), and in the email.
        (
            '{"type": "identify", "userId": "u", "traits": {"email": "a@b.c", "x\\udc00": 1}}',
            {"email": "a@b.c", "x" + REPLACEMENT: 1},
            None,
        ),
        (
            '{"type": "identify", "userId": "u", "traits": {"email": "a\\udbff@b.c"}}',
            {"email": "a" + REPLACEMENT + "@b.c"},
            None,
        ),
        # Nested in lists and objects, in context.traits, in ids.
        (
            '{"type": "identify", "userId": "\\ud800", '
            '"traits": {"x": [["\\ud800", {"\\ud800": ["\\udfff"]}]]}}',
            {"x": [[REPLACEMENT, {REPLACEMENT: [REPLACEMENT]}]]},
            None,
        ),
        (
            '{"type": "identify", "userId": "u", "context": {"traits": {"email": "\\ud800@b.c"}}}',
            {"email": REPLACEMENT + "@b.c"},
            {},
        ),
        # A valid pair is one character (the emoji), never replaced; a reversed pair is two lone ones.
        (
            '{"type": "identify", "userId": "u", "traits": {"name": "\\ud83d\\ude00 \\ude00\\ud83d"}}',
            {"name": "\U0001f600 " + REPLACEMENT * 2},
            None,
        ),
        # An escaped backslash before u: text, not a surrogate.
        ('{"type": "identify", "userId": "u", "traits": {"name": "\\\\ud800"}}', {"name": "\\ud800"}, None),
        # A surrogate already in the text (a str decoded with surrogateescape, say).
        (
            '{"type": "identify", "userId": "u", "traits": {"name": "A\udcff"}}',
            {"name": "A" + REPLACEMENT},
            None,
        ),
    ],
)
def test_lone_surrogates_become_replacement_characters(line, traits, raw_traits):
    event = parse_line(line, SOURCE)
    assert event.traits == traits
    assert event.raw.get("traits", {}) == (traits if raw_traits is None else raw_traits)
    # Nothing downstream can fail on it: every string of the event is UTF-8, the derived id too.
    for value in (event.raw, event.traits, event.message_id, event.user_id, event.context):
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    assert event.message_id == ("m" if '"messageId"' in line else derived_message_id(event.raw))


@pytest.mark.parametrize(
    "line",
    [
        '{"type": "identify", "traits": {"email": "\\ud800"}}',  # missing_user_id: the event is in it
        '{"type": "identify", "userId": "u", "traits": "\\ud800"}',
        '{"type": "Identify\\udfff", "userId": "u"}',
    ],
)
def test_dead_letters_of_lines_with_lone_surrogates_are_utf8(line):
    dead_letter = parse_line(line, SOURCE)
    assert isinstance(dead_letter, DeadLetter)
    assert "\\ud" not in dead_letter.to_json().lower()
    assert REPLACEMENT in dead_letter.to_json().encode("utf-8").decode("utf-8")


TYPES = "identify, group, track, page, screen, alias"


@pytest.mark.parametrize(
    "obj, reason, message",
    [
        ({"userId": "u"}, "missing_type", f"event has no type: expected one of {TYPES}"),
        ({"type": None, "userId": "u"}, "missing_type", f"event has no type: expected one of {TYPES}"),
        ({"type": "", "userId": "u"}, "missing_type", f"event has no type: expected one of {TYPES}"),
        ({"type": "Identify", "userId": "u"}, "unknown_type", f"type 'Identify' is not one of {TYPES}"),
        ({"type": "purchase", "userId": "u"}, "unknown_type", f"type 'purchase' is not one of {TYPES}"),
        ({"type": 3, "userId": "u"}, "unknown_type", f"type 3 is not one of {TYPES}"),
        (
            {"type": "identify", "traits": {"email": "a@b.c"}},
            "missing_user_id",
            "identify has neither userId nor anonymousId: Segment's spec requires one of them",
        ),
        (
            {"type": "page", "userId": "", "anonymousId": "  "},
            "missing_user_id",
            "page has neither userId nor anonymousId: Segment's spec requires one of them",
        ),
        (
            {"type": "group", "userId": "u", "traits": {"name": "Initech"}},
            "missing_group_id",
            "group has no groupId, which every group call requires",
        ),
        (
            {"type": "track", "userId": "u"},
            "missing_event",
            "track has no event, which every track call requires",
        ),
        (
            {"type": "track", "userId": "u", "event": ""},
            "missing_event",
            "track has no event, which every track call requires",
        ),
        (
            {"type": "alias", "userId": "u"},
            "missing_previous_id",
            "alias has no previousId, which every alias call requires",
        ),
        (
            {"type": "identify", "userId": "u", "traits": ["email"]},
            "invalid_traits",
            "traits is a JSON array, not an object",
        ),
        (
            {"type": "identify", "userId": "u", "context": {"traits": "x"}},
            "invalid_traits",
            "context.traits is a JSON string, not an object",
        ),
        (
            {"type": "identify", "userId": "u", "context": 1},
            "invalid_context",
            "context is a JSON number, not an object",
        ),
        (
            {"type": "track", "userId": "u", "event": "e", "properties": []},
            "invalid_properties",
            "properties is a JSON array, not an object",
        ),
        (
            {"type": "identify", "userId": "u", "integrations": True},
            "invalid_integrations",
            "integrations is a JSON boolean, not an object",
        ),
        (
            {"type": "identify", "userId": {"id": 1}},
            "invalid_user_id",
            "userId is a JSON object, not a string or number",
        ),
        (
            {"type": "identify", "userId": True},
            "invalid_user_id",
            "userId is a JSON boolean, not a string or number",
        ),
        (
            {"type": "group", "userId": "u", "groupId": ["813"]},
            "invalid_group_id",
            "groupId is a JSON array, not a string or number",
        ),
    ],
)
def test_objects_that_are_not_valid_calls(obj, reason, message):
    # The dead letter carries the parsed object, so that it can be fixed and replayed.
    assert dead(json.dumps(obj)) == (reason, message, obj)


@pytest.mark.parametrize(
    "members, user_id, group_id, message_id",
    [
        ({"userId": 42, "groupId": 813, "messageId": 7}, "42", "813", "7"),
        ({"userId": 4.5, "groupId": "813", "messageId": "m"}, "4.5", "813", "m"),
        ({"anonymousId": "a", "groupId": " 813 ", "messageId": "m"}, None, " 813 ", "m"),
        # As Segment's JavaScript sends them: 10.0 is the number 10, written "10".
        ({"userId": 10.0, "groupId": 1e21, "messageId": -0.0}, "10", "1e+21", "0"),
        ({"userId": 1e16, "groupId": 1.5e-7, "messageId": 100.0}, "10000000000000000", "1.5e-7", "100"),
        (
            {"userId": 12345678901234567890, "groupId": -7, "messageId": 0.1},
            "12345678901234567890",
            "-7",
            "0.1",
        ),
    ],
)
def test_numeric_ids_read_as_javascript_writes_them(members, user_id, group_id, message_id):
    event = parse_line(json.dumps({"type": "group", **members}))
    assert (event.user_id, event.group_id, event.message_id) == (user_id, group_id, message_id)


@pytest.mark.parametrize(
    "members, anonymous_id, event_name",
    [
        ({"anonymousId": 2.0, "event": 123.456}, "2", "123.456"),
        ({"anonymousId": 3e-7, "event": 1e21}, "3e-7", "1e+21"),
        ({"anonymousId": 0.000001, "event": -0.0}, "0.000001", "0"),
    ],
)
def test_anonymous_id_and_event_read_as_javascript_writes_them(members, anonymous_id, event_name):
    event = parse_line(json.dumps({"type": "track", "messageId": "m", **members}))
    assert (event.anonymous_id, event.event) == (anonymous_id, event_name)


@pytest.mark.parametrize(
    "number, text",
    [
        # ints as they are, however large
        (0, "0"),
        (42, "42"),
        (-7, "-7"),
        (2**64, "18446744073709551616"),
        # integral doubles without ".0", up to 21 digits
        (10.0, "10"),
        (100.0, "100"),
        (0.0, "0"),
        (-0.0, "0"),
        (-10.0, "-10"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        # from 1e21 on, exponential
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (-1e21, "-1e+21"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        # fractions: plain down to 1e-6, then exponential
        (123.456, "123.456"),
        (0.1, "0.1"),
        (0.000001, "0.000001"),
        (0.0000015, "0.0000015"),
        (1.5e-7, "1.5e-7"),
        (1e-7, "1e-7"),
        (-2.5e-10, "-2.5e-10"),
        (5e-324, "5e-324"),
        # shortest digits that read back as the same double, as repr and JavaScript give them
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.3333333333333333"),
        (2**53 + 0.0, "9007199254740992"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (float("nan"), "NaN"),
    ],
)
def test_js_number_text(number, text):
    assert js_number_text(number) == text


@pytest.mark.parametrize(
    "members, timestamp",
    [
        (
            {"timestamp": "2026-11-28T18:00:00.123Z", "originalTimestamp": "2020-01-01T00:00:00Z"},
            "2026-11-28T18:00:00.123Z",
        ),
        (
            {"originalTimestamp": "2026-11-28T18:00:00Z", "receivedAt": "2020-01-01T00:00:00Z"},
            "2026-11-28T18:00:00.000Z",
        ),
        (
            {"receivedAt": "2026-11-28T18:00:01Z", "sentAt": "2020-01-01T00:00:00Z"},
            "2026-11-28T18:00:01.000Z",
        ),
        ({"sentAt": "2026-11-28T18:00:02Z"}, "2026-11-28T18:00:02.000Z"),
        ({"timestamp": "", "sentAt": "2026-11-28T18:00:02Z"}, "2026-11-28T18:00:02.000Z"),
        ({"timestamp": 1764352800, "sentAt": "2026-11-28T18:00:02Z"}, "2026-11-28T18:00:02.000Z"),
        ({}, ""),
        ({"timestamp": "2026-11-28T20:00:00+02:00"}, "2026-11-28T18:00:00.000Z"),
        ({"timestamp": "2026-11-28T18:00:00"}, "2026-11-28T18:00:00.000Z"),
        ({"timestamp": "2026-11-28T18:00:00.123456Z"}, "2026-11-28T18:00:00.123Z"),
        # Not a time: skipped, so that it cannot sort after every real time and win a merge.
        ({"timestamp": "yesterday"}, ""),
        (
            {"timestamp": "Sat, 28 Nov 2026 18:00:00 GMT", "receivedAt": "2026-11-28T18:00:03Z"},
            "2026-11-28T18:00:03.000Z",
        ),
        # RFC 3339 allows lower-case t and z.
        ({"timestamp": "2024-01-02t03:04:05z"}, "2024-01-02T03:04:05.000Z"),
        ({"timestamp": "2024-01-02T03:04:05.25z"}, "2024-01-02T03:04:05.250Z"),
        ({"timestamp": "2024-01-02t03:04:05+01:00"}, "2024-01-02T02:04:05.000Z"),
        ({"timestamp": "x", "originalTimestamp": "2024-01-02t03:04:05z"}, "2024-01-02T03:04:05.000Z"),
    ],
)
def test_timestamp_falls_back_and_is_normalized_to_utc(members, timestamp):
    event = parse_line(json.dumps({"type": "identify", "userId": "u", **members}))
    assert event.timestamp == timestamp


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-28T18:00:00Z", "2026-11-28T18:00:00.000Z"),
        ("2026-11-28T18:00:00.5-05:00", "2026-11-28T23:00:00.500Z"),
        ("2026-11-28", "2026-11-28T00:00:00.000Z"),
        ("2024-01-02t03:04:05z", "2024-01-02T03:04:05.000Z"),
        ("2024-01-02t03:04:05.123456z", "2024-01-02T03:04:05.123Z"),
        (" 2024-01-02t03:04:05-02:30 ", "2024-01-02T05:34:05.000Z"),
        ("not a time", "not a time"),
        ("z", "z"),
    ],
)
def test_normalize_timestamp(text, expected):
    assert normalize_timestamp(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        # Already as times are written: kept, when it is a time at all.
        ("2026-11-28T18:00:00.123Z", "2026-11-28T18:00:00.123Z"),
        ("0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("2024-02-29T12:00:00.000Z", "2024-02-29T12:00:00.000Z"),
        ("2026-02-29T12:00:00.000Z", None),
        ("2026-13-01T00:00:00.000Z", None),
        ("0000-01-01T00:00:00.000Z", None),
        ("2026-11-28T24:00:00.000Z", None),
        ("2026-11-28T18:60:00.000Z", None),
        ("2026-11-28T18:00:60.000Z", None),
        # Nearly so: read as any other time.
        ("2026-11-28T18:00:00,123Z", "2026-11-28T18:00:00.123Z"),
        ("2026-11-28t18:00:00.123z", "2026-11-28T18:00:00.123Z"),
        (" 2026-11-28T18:00:00.123Z", "2026-11-28T18:00:00.123Z"),
        ("2026-11-28T18:00:00.123+00:00", "2026-11-28T18:00:00.123Z"),
        ("\uff12026-11-28T18:00:00.123Z", None),  # a full-width digit
    ],
)
def test_received_at_of_times_written_as_normalized(text, expected):
    assert received_at({"receivedAt": text}) == expected


def test_a_parsed_event_is_the_event_its_constructor_makes():
    event = parse_line(json.dumps(IDENTIFY), SOURCE, 7)
    rebuilt = SegmentEvent(**{f.name: getattr(event, f.name) for f in dataclasses.fields(SegmentEvent)})
    assert event == rebuilt
    assert dataclasses.replace(event, timestamp="") == dataclasses.replace(rebuilt, timestamp="")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.timestamp = ""  # type: ignore[misc]


@pytest.mark.parametrize(
    "obj, traits",
    [
        # identify: its own traits win, context.traits fill in what they lack.
        (
            {
                "type": "identify",
                "traits": {"email": "a@b.c", "plan": "pro"},
                "context": {"traits": {"email": "old@b.c", "city": "Austin"}},
            },
            {"email": "a@b.c", "plan": "pro", "city": "Austin"},
        ),
        ({"type": "identify", "context": {"traits": {"email": "a@b.c"}}}, {"email": "a@b.c"}),
        ({"type": "identify", "traits": None}, {}),
        ({"type": "track", "event": "e", "context": {"traits": {"email": "a@b.c"}}}, {"email": "a@b.c"}),
        ({"type": "page", "traits": {"x": 1}, "context": {"traits": {"x": 2, "y": 3}}}, {"x": 1, "y": 3}),
        # group: context.traits describe the user, not the company.
        (
            {
                "type": "group",
                "groupId": "g",
                "traits": {"name": "Initech"},
                "context": {"traits": {"name": "Peter Gibbons", "email": "a@b.c"}},
            },
            {"name": "Initech"},
        ),
        ({"type": "group", "groupId": "g", "context": {"traits": {"name": "Peter"}}}, {}),
    ],
)
def test_traits_come_from_traits_then_context_traits(obj, traits):
    event = parse_line(json.dumps({"userId": "u", "messageId": "m", **obj}))
    assert event.traits == traits


def test_missing_message_id_is_derived_from_the_content():
    event = parse_line('{"type": "identify", "userId": "u1", "traits": {"email": "a@b.c"}}')
    # Pinned: a change here would stop old archives from deduplicating against new runs.
    assert event.message_id == "derived-1c77c3200936b1bb6ad941f297ae318c"


@pytest.mark.parametrize(
    "a, b, same",
    [
        ('{"type":"identify","userId":"u1"}', '{ "userId" : "u1", "type" : "identify" }', True),
        ('{"type":"identify","userId":"u1"}', '{"type":"identify","userId":"u1","messageId":""}', False),
        ('{"type":"identify","userId":"u1"}', '{"type":"identify","userId":"u2"}', False),
        ('{"type":"identify","userId":"é"}', '{"type":"identify","userId":"\\u00e9"}', True),
    ],
)
def test_derived_message_ids_are_stable(a, b, same):
    id_a, id_b = parse_line(a).message_id, parse_line(b).message_id
    assert id_a.startswith("derived-")
    assert (id_a == id_b) is same


def test_derived_message_id_of_an_object():
    assert derived_message_id({"userId": "u1", "type": "identify"}) == derived_message_id(
        {"type": "identify", "userId": "u1"}
    )


@pytest.mark.parametrize(
    "line",
    [
        b'{"type": "identify", "userId": "u1", "messageId": "m", "traits": {"name": "J\xc3\xbcrgen"}}',
        '\ufeff{"type": "identify", "userId": "u1", "messageId": "m", "traits": {"name": "Jürgen"}}',
        '  {"type": "identify", "userId": "u1", "messageId": "m", "traits": {"name": "Jürgen"}}\r\n',
    ],
)
def test_bytes_bom_and_surrounding_whitespace(line):
    event = parse_line(line, SOURCE)
    assert (event.message_id, event.traits, event.source) == ("m", {"name": "Jürgen"}, SOURCE)


def test_source_is_optional():
    assert parse_line('{"type": "page", "userId": "u", "messageId": "m"}').source is None
    assert dead("[]", source=None)[0] == "not_an_object"


# --- replaying dead letters: a --dead_letter_output file is valid --input --------------------------


def dead_letter_line(event, reason="REQUEST_LIMIT_EXCEEDED", source="events/old.jsonl"):
    return DeadLetter.of("write", reason, "limit", event, retryable=True, source=source).to_json()


@pytest.mark.parametrize(
    "original",
    [
        json.dumps(IDENTIFY),  # a parsed event that failed later
        json.dumps({k: v for k, v in IDENTIFY.items() if k != "messageId"}),  # its derived id survives
        "not json at all",  # a raw line that did not parse
        '{"type": "identify", "userId": "u1", "traits": "x"}',  # an event that broke a rule
    ],
)
def test_a_dead_letter_replays_as_its_original_line(original):
    parsed_event = json.loads(original) if original.startswith("{") else original
    replayed, first = parse_line(dead_letter_line(parsed_event), SOURCE), parse_line(original, SOURCE)
    assert without_time(replayed) == without_time(first)


def without_time(result):
    """A dead letter without its wall-clock `time` (checked to be a UTC time); an event as it is."""
    if not isinstance(result, DeadLetter):
        return result
    assert result.time.endswith("Z")
    assert datetime.datetime.fromisoformat(result.time).utcoffset() == datetime.timedelta(0)
    assert len(result.time) == len("2026-11-28T18:00:00.000Z")
    return dataclasses.replace(result, time="")


@pytest.mark.parametrize(
    "line, same_message",
    [
        (b'\xff{"type": "identify"}', True),
        (b'{"type": "identify", "userId": "u", "traits": {"name": "J\xfcrgen \xc3"}}', True),
        # A backslash and "xff" as text reads back as the byte: the first bad byte moves, nothing else.
        (b'{"type": "identify", "traits": {"name": "\\\\xff \xe9"}}', False),
    ],
)
def test_a_dead_letter_of_a_line_that_is_not_utf8_replays_as_the_same_dead_letter(line, same_message):
    first = parse_line(line, SOURCE)
    assert first.reason == "invalid_encoding"
    replayed = parse_line(first.to_json(), SOURCE)
    assert isinstance(replayed, DeadLetter)
    assert replayed.message.startswith("line is not valid UTF-8: ")
    assert without_time(parse_line(replayed.to_json().encode("utf-8"), SOURCE)) == without_time(replayed)
    if not same_message:
        replayed = dataclasses.replace(replayed, message=first.message)
    assert without_time(replayed) == without_time(first)


def test_a_repaired_invalid_encoding_dead_letter_replays_as_its_event():
    first = parse_line(
        b'{"type": "identify", "userId": "u", "messageId": "m", "traits": {"name": "J\xfcrgen"}}'
    )
    repaired = first.to_json().replace("\\\\xfc", "\u00fc")
    assert "\\x" not in repaired
    assert parse_line(repaired).traits == {"name": "J\u00fcrgen"}


def test_a_dead_letter_without_an_event_cannot_be_replayed():
    line = dead_letter_line(None, reason="unreadable_file")
    reason, message, event = dead(line)
    assert reason == "nothing_to_replay"
    assert message == (
        "this dead letter (unreadable_file) holds no event to replay: repair the file it names "
        "(events/old.jsonl) and read that again"
    )
    assert event == json.loads(line)


def test_an_event_with_a_type_is_never_taken_for_a_dead_letter():
    event = {
        **IDENTIFY,
        "stage": "s",
        "reason": "r",
        "message": "m",
        "retryable": False,
        "event": "Signed Up",
        "time": "t",
    }
    assert parse_line(json.dumps(event)).message_id == "m1"


def test_a_dead_letter_naming_its_action_replays_that_action_only():
    event = {"type": "track", "event": "Issue Submitted", "messageId": "m-1", "userId": "u1"}
    letter = DeadLetter.of("write", "MULTIPLE_MATCHES", "2 Lead records match", event, action="issue_lead")
    assert json.loads(letter.to_json())["action"] == "issue_lead"
    replayed = parse_line(letter.to_json(), SOURCE)
    assert isinstance(replayed, SegmentEvent)
    assert replayed.replay_action == "issue_lead"
    assert dataclasses.replace(replayed, replay_action=None) == parse_line(json.dumps(event), SOURCE)
    # Without an action (one action per trigger, the built-in ones among them) the key is left out.
    plain = DeadLetter.of("write", "REQUIRED_FIELD_MISSING", "x", event)
    assert "action" not in json.loads(plain.to_json())
    assert parse_line(plain.to_json(), SOURCE).replay_action is None
