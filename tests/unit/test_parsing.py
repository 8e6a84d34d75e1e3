"""Table tests for parse_line: events, dead letters by reason, blank lines, ids and timestamps."""

import json

import pytest

from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from transforms.parsing import derived_message_id, normalize_timestamp, parse_line

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
    ],
)
def test_numeric_ids_become_their_json_text(members, user_id, group_id, message_id):
    event = parse_line(json.dumps({"type": "group", **members}))
    assert (event.user_id, event.group_id, event.message_id) == (user_id, group_id, message_id)


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
        ("not a time", "not a time"),
    ],
)
def test_normalize_timestamp(text, expected):
    assert normalize_timestamp(text) == expected


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
    assert parse_line(dead_letter_line(parsed_event), SOURCE) == parse_line(original, SOURCE)


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
