"""Parse one JSON line into a SegmentEvent, or a dead letter saying what is wrong with it."""

import dataclasses
import datetime
import decimal
import hashlib
import json
import math
import re
import sys
from typing import Any

from schemas import frozen
from schemas.dead_letter import DeadLetter
from schemas.events import EVENT_TYPES, SegmentEvent

STAGE = "parse"
DERIVED_ID_PREFIX = "derived-"

# Segment's spec: every call names a user (https://segment.com/docs/connections/spec/common/).
# Per type, the fields the call cannot do without, with the reason used when one is missing.
REQUIRED_BY_TYPE: dict[str, tuple[tuple[str, str], ...]] = {
    "identify": (),
    "group": (("groupId", "missing_group_id"),),
    "track": (("event", "missing_event"),),
    "page": (),
    "screen": (),
    "alias": (("previousId", "missing_previous_id"),),
}

# The members of a dead-letter record (schemas/dead_letter.py), which a Segment call never has all of.
DEAD_LETTER_KEYS = frozenset({"stage", "reason", "message", "retryable", "event", "time"})

# Where a timestamp may be, best first: when it happened, then when Segment saw or got it.
TIMESTAMP_KEYS = ("timestamp", "originalTimestamp", "receivedAt", "sentAt")

# No Segment call nests anywhere near this deep; and an event nested about 490 deep overflows Python's
# recursion where Beam pickles it, crashing the pipeline. Deeper lines are dead letters, not events.
MAX_NESTING_DEPTH = 64

# A UTF-16 surrogate (U+D800 to U+DFFF), which UTF-8, and so Salesforce and every output, cannot hold; and
# its JSON escape, any case. json.loads joins a valid pair of escapes into one character, so any
# surrogate left after it is a lone one.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")

# The escapes that `backslashreplace` writes for bytes that are not UTF-8: always 0x80 to 0xff.
_ESCAPED_BYTE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")

# Object-valued members; a non-object value is a malformed event, not something to guess at.
OBJECT_MEMBERS = (
    ("traits", "invalid_traits"),
    ("properties", "invalid_properties"),
    ("integrations", "invalid_integrations"),
    ("context", "invalid_context"),
)


class _Invalid(Exception):
    """A rule the event breaks: becomes one dead letter."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def parse_line(
    line: str | bytes, source: str | None = None, seq: int = 0, keep_text: bool = False
) -> SegmentEvent | DeadLetter | None:
    """The event on `line`; a DeadLetter (stage "parse") if it is not a valid Segment call.

    Blank or whitespace-only lines are not events: they give None, and the caller counts them
    (`blank_lines`) so that nothing read goes unaccounted for. `source` and `seq` say where the line
    was read; with `keep_text` the event carries its own JSON text (for sources that cannot be read
    again to rebuild a dead letter).

    Lines that no event can be made of hold their raw text in the dead letter, so that replaying it
    gives the same dead letter: a number no double holds (`invalid_number`: parsed it would be inf,
    which JSON cannot write), and arrays or objects nested deeper than MAX_NESTING_DEPTH
    (`too_deeply_nested`: no Segment call nests that deep, and pickling such an event, as Beam does,
    overflows Python's recursion). Lone UTF-16 surrogates (`"\\ud800"`, valid JSON), which UTF-8 and
    so Salesforce and every output cannot hold, become U+FFFD in every string, keys included.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as e:
            # Keep the bytes readable and replayable: a replay reads the escapes back as bytes.
            text = line.decode("utf-8", errors="backslashreplace")
            return DeadLetter.of(
                STAGE,
                "invalid_encoding",
                f"line is not valid UTF-8: {e.reason} at byte {e.start}",
                text,
                source=source,
            )
    # Only text decoded leniently (surrogateescape) holds a surrogate character: it is never JSON text.
    # ASCII text (most lines) holds none, and scanning for them cost a tenth of parsing a line.
    if not line.isascii():
        line = _SURROGATE.sub("\ufffd", line)
    # A byte-order mark opens files saved by some Windows editors; JSON does not allow it.
    text = line.lstrip("\ufeff")
    if not text.strip():
        return None
    try:
        obj = _DECODER.decode(text)
    except _Invalid as e:
        return DeadLetter.of(STAGE, e.reason, e.message, line, source=source)
    except ValueError as e:
        return DeadLetter.of(STAGE, "invalid_json", f"line is not JSON: {e}", line, source=source)
    except RecursionError:  # valid or not, no Segment call nests this deep
        message = f"line nests arrays or objects too deeply for Python's json to parse, {_TOO_DEEP}"
        return DeadLetter.of(STAGE, "too_deeply_nested", message, line, source=source)
    too_deep = _nesting_error(obj, text)
    if too_deep is not None:
        return DeadLetter.of(STAGE, "too_deeply_nested", too_deep, line, source=source)
    # Cheap for almost every line: no backslash, no escape; the walk runs only when it may matter.
    if "\\" in text and _SURROGATE_ESCAPE.search(text):
        obj = without_surrogates(obj)
    if not isinstance(obj, dict):
        # The raw line, not the parsed value: `null` or `"x"` would not give the line back.
        message = f"line is a JSON {json_kind(obj)}, not an object (a Segment call)"
        return DeadLetter.of(STAGE, "not_an_object", message, line, source=source)
    if is_dead_letter(obj):
        return _replay(obj, source, seq, keep_text)
    try:
        return _to_event(obj, source, seq, text if keep_text else None)
    except _Invalid as e:
        return DeadLetter.of(STAGE, e.reason, e.message, obj, source=source)


def is_dead_letter(obj: dict[str, Any]) -> bool:
    """True for a line of --dead_letter_output: such files can be read again as input to replay them."""
    # "type" first: every event has one, and it is the cheaper test.
    return "type" not in obj and DEAD_LETTER_KEYS <= obj.keys()


def _replay(
    dead_letter: dict[str, Any], source: str | None, seq: int = 0, keep_text: bool = False
) -> SegmentEvent | DeadLetter | None:
    event = dead_letter["event"]
    if isinstance(event, str):  # the raw line, which did not parse the first time
        if dead_letter["reason"] == "invalid_encoding":
            try:
                # The text escapes the bytes that are not UTF-8; if they still are not, the same dead
                # letter comes back with the text unchanged (a literal "\\xc3" stays text).
                _unescaped_bytes(event).decode("utf-8")
            except UnicodeDecodeError:
                return DeadLetter.of(
                    STAGE, "invalid_encoding", str(dead_letter.get("message") or ""), event, source=source
                )
        # A repaired line, or one that failed for another reason: parsed as the text it is.
        return parse_line(event, source, seq, keep_text)
    if isinstance(event, dict) and is_dead_letter(event):
        # A nothing_to_replay dead letter holds the dead letter it was made of: still nothing to replay,
        # and the same dead letter comes back, however often it is replayed.
        message = str(dead_letter.get("message") or "this dead letter holds no event to replay")
        return DeadLetter.of(STAGE, "nothing_to_replay", message, event, source=source)
    if isinstance(event, dict):
        try:
            text = json.dumps(event, ensure_ascii=False) if keep_text else None
            parsed = _to_event(event, source, seq, text)
        except _Invalid as e:
            return DeadLetter.of(STAGE, e.reason, e.message, event, source=source)
        action = dead_letter.get("action")
        if isinstance(action, str) and action:
            # Only the action that failed is done again (its trigger has others, which did their part).
            return dataclasses.replace(parsed, replay_action=action)
        return parsed
    message = (
        f"this dead letter ({dead_letter['reason']}) holds no event to replay: repair the file it names "
        f"({dead_letter.get('source')}) and read that again"
    )
    return DeadLetter.of(STAGE, "nothing_to_replay", message, dead_letter, source=source)


def derived_message_id(obj: dict[str, Any]) -> str:
    """A stable messageId from the event's content, so that duplicated lines still dedupe."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return DERIVED_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def normalize_timestamp(value: str) -> str:
    """An ISO 8601 time as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`, so that times sort as strings.

    A time without an offset is taken as UTC; text that is not ISO 8601 is kept as it is.
    """
    return _utc(value) or value


# The form times are written in, which most events' times already have: such a time, if it is one at
# all, is its own UTC text (hours 00 to 23 only, so that no Python reading 24:00 as the next day matters).
_CANONICAL_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def _utc(value: str) -> str | None:
    if _CANONICAL_UTC.fullmatch(value):
        # Formatting the time again gives the same text: only whether it is a date and time is in question.
        try:
            datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
        return value
    try:
        # RFC 3339 allows a lower-case t and z, which fromisoformat does not.
        parsed = datetime.datetime.fromisoformat(value.strip().upper())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        utc = parsed.astimezone(datetime.UTC)
    except (ValueError, OverflowError):  # not ISO 8601, or outside years 1 to 9999 once in UTC
        return None
    return _text(utc)


def _text(utc: datetime.datetime) -> str:
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def js_number_text(number: int | float) -> str:
    """`number` as JavaScript's Number.prototype.toString writes it, as Segment's libraries send ids.

    10.0 is "10", -0.0 "0", 1e21 "1e+21", 1.5e-7 "1.5e-7". An int is written as it is. The digits are
    repr's, the shortest that read back as the same double, as in JavaScript; where they go is
    ECMAScript's Number::toString (https://tc39.es/ecma262/#sec-numeric-types-number-tostring).
    """
    if isinstance(number, int):
        return str(number)
    if math.isnan(number):
        return "NaN"
    if number == 0:
        return "0"
    if number < 0:
        return "-" + js_number_text(-number)
    if math.isinf(number):
        return "Infinity"
    # number = 0.<digits> * 10**point: the spec's s is `digits`, its k len(digits), its n `point`.
    _, digit_tuple, exponent = decimal.Decimal(repr(number)).as_tuple()
    assert isinstance(exponent, int)  # finite
    point = len(digit_tuple) + exponent
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    if len(digits) <= point <= 21:
        return digits + "0" * (point - len(digits))
    if 0 < point <= 21:
        return digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    mantissa = digits if len(digits) == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{point - 1:+d}"


def nesting_depth(value: Any) -> int:
    """How deep arrays and objects nest in `value`: 0 for a scalar, 1 for `{}` or `[1]`.

    Without recursion: it measures exactly the values too deep for recursive code.
    """
    deepest = 0
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


_TOO_DEEP = f"more than MAX_NESTING_DEPTH ({MAX_NESTING_DEPTH}): no Segment call nests that deep"


def _nesting_error(obj: Any, text: str) -> str | None:
    """Why `obj`, parsed from `text`, nests too deeply; None when it does not."""
    # A dead letter wraps its event in one more object, which is not the event's nesting.
    wrapper = 1 if isinstance(obj, dict) and is_dead_letter(obj) else 0
    # Cheap for almost every line: this few brackets, in strings or not, cannot nest deeper.
    if text.count("{") + text.count("[") <= MAX_NESTING_DEPTH + wrapper:
        return None
    depth = nesting_depth(obj) - wrapper
    if depth <= MAX_NESTING_DEPTH:
        return None
    return f"event nests arrays or objects {depth} levels deep, {_TOO_DEEP}"


def without_surrogates(value: Any) -> Any:
    """`value` with every surrogate in its strings, keys included, as U+FFFD.

    Recursive: only called on values no deeper than MAX_NESTING_DEPTH (+1 for a dead letter).
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    return value


def _unescaped_bytes(text: str) -> bytes:
    """The bytes an `invalid_encoding` dead letter's text was escaped from (see parse_line)."""
    parts = _ESCAPED_BYTE.split(text)
    # split() puts the captured hex digits at the odd places, the text between at the even ones.
    return b"".join(bytes.fromhex(part) if i % 2 else part.encode("utf-8") for i, part in enumerate(parts))


_DOUBLE_MAX = int(sys.float_info.max)


def _double(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        # Parsed, it would be inf, which json.dumps then writes as the non-JSON `Infinity`.
        shown = text if len(text) <= 40 else text[:30] + "..."
        raise _Invalid(
            "invalid_number",
            f"number {shown} is out of range: a double (how JSON readers, JavaScript and Salesforce "
            "hold numbers) cannot hold it",
        )
    return value


def _integer(text: str) -> int:
    # Most integers are short: only long ones can be beyond a double (or Python's 4,300-digit limit).
    if len(text) <= 300:
        return int(text)
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or abs(value) > _DOUBLE_MAX:
        shown = text[:30] + "..."
        raise _Invalid(
            "invalid_number",
            f"number {shown} ({len(text)} characters) is out of range: a double (how JSON readers, "
            "JavaScript and Salesforce hold numbers) cannot hold it",
        )
    return value


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; JSON (and Salesforce) do not.
    raise ValueError(f"{name} is not a JSON value")


# One decoder for every line: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_double, parse_int=_integer)


def json_kind(value: Any) -> str:
    """The JSON type of a parsed value, for messages: object, array, string, boolean, number or null."""
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (dict, "object"),
        (list, "array"),
        (str, "string"),
        (bool, "boolean"),
        ((int, float), "number"),
    )
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return "null"


def _to_event(
    obj: dict[str, Any], source: str | None, seq: int = 0, raw_text: str | None = None
) -> SegmentEvent:
    event_type = _event_type(obj)
    _, properties, integrations, context = [_object_member(obj, m, reason) for m, reason in OBJECT_MEMBERS]
    _object_member(context, "traits", "invalid_traits", where="context.traits")
    user_id = _identifier(obj, "userId")
    anonymous_id = _identifier(obj, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise _Invalid(
            "missing_user_id",
            f"{event_type} has neither userId nor anonymousId: Segment's spec requires one of them",
        )
    for member, reason in REQUIRED_BY_TYPE[event_type]:
        if _identifier(obj, member) is None:
            raise _Invalid(reason, f"{event_type} has no {member}, which every {event_type} call requires")
    return _segment_event(
        type=event_type,
        message_id=_identifier(obj, "messageId") or derived_message_id(obj),
        timestamp=_timestamp(obj),
        user_id=user_id,
        anonymous_id=anonymous_id,
        traits=_traits(event_type, obj, context),
        group_id=_identifier(obj, "groupId"),
        event=_identifier(obj, "event"),
        properties=dict(properties),
        integrations=dict(integrations),
        context=dict(context),
        raw=obj,
        source=source,
        seq=seq,
        raw_text=raw_text,
        replay_action=None,
    )


_segment_event = frozen.maker(SegmentEvent)


def _event_type(obj: dict[str, Any]) -> str:
    value = obj.get("type")
    if value is None or value == "":
        raise _Invalid("missing_type", f"event has no type: expected one of {', '.join(EVENT_TYPES)}")
    # Segment's types are lower-case; "Identify" is not one of them, so it is not guessed at.
    if value not in EVENT_TYPES:
        raise _Invalid("unknown_type", f"type {value!r} is not one of {', '.join(EVENT_TYPES)}")
    return value


def _object_member(obj: dict[str, Any], member: str, reason: str, where: str | None = None) -> dict[str, Any]:
    """`obj[member]` when it is an object; absent or null is empty; anything else is invalid."""
    value = obj.get(member)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(reason, f"{where or member} is a JSON {json_kind(value)}, not an object")
    return value


def _identifier(obj: dict[str, Any], member: str) -> str | None:
    """An id-like member as a string: numbers as JavaScript writes them; blank counts as missing."""
    value = obj.get(member)
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    # bool is an int in Python, but `true` is no id.
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Segment's libraries are JavaScript: the id 10 they send is `10` whether the JSON says 10 or 10.0.
        return js_number_text(value)
    raise _Invalid(_invalid_reason(member), f"{member} is a JSON {json_kind(value)}, not a string or number")


def _invalid_reason(member: str) -> str:
    return "invalid_" + "".join("_" + c.lower() if c.isupper() else c for c in member)


def _timestamp(obj: dict[str, Any]) -> str:
    """The first ISO 8601 time of TIMESTAMP_KEYS, in UTC; "" (sorts first) when there is none.

    Text that is not a time is skipped: kept as it is, "yesterday" would sort after every real
    time and win every merge.
    """
    for key in TIMESTAMP_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            normalized = _utc(value)
            if normalized is not None:
                return normalized
    return ""


def received_at(obj: dict[str, Any]) -> str | None:
    """The event's receivedAt as normalize_timestamp writes times; None when it has none that is a time."""
    value = obj.get("receivedAt")
    return _utc(value) if isinstance(value, str) else None


def utc_text(seconds: float) -> str:
    """A Unix time as normalize_timestamp writes times."""
    return _text(datetime.datetime.fromtimestamp(seconds, datetime.UTC))


def _traits(event_type: str, obj: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    own: dict[str, Any] = obj.get("traits") or {}
    # A group's `traits` describe the company; context.traits describe the user who sent the
    # call, so mixing them would put a person's name or email on the Account.
    if event_type == "group":
        return dict(own)
    # Elsewhere both describe the same user (analytics.js copies the cached user traits into
    # context.traits): the call's own traits win, context.traits fill in what they lack.
    inherited: dict[str, Any] = context.get("traits") or {}
    return {**inherited, **own}


def line_event_micros(line: object) -> int | None:
    """When the event on a raw input line happened, in microseconds since the epoch, by the keys and
    rules the parser orders events by (TIMESTAMP_KEYS, UTC when no offset); None when the line is not a
    JSON object with such a time (the parser dead-letters what it must). Sources stamp elements with it."""
    from apache_beam.utils.timestamp import Timestamp

    if not isinstance(line, str):
        return None
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict):
        return None
    for key in TIMESTAMP_KEYS:
        value = event.get(key)
        if isinstance(value, str) and value.strip():
            try:
                return Timestamp.from_rfc3339(normalize_timestamp(value)).micros
            except (ValueError, OverflowError):  # not a time (or out of range): the next key may hold one
                continue
    return None
