"""Salesforce's checks of a create/update body against an object's metadata; pure, no storage."""

import functools
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, getcontext
from typing import Any

from emulator import ids
from emulator.objects import KEY_PREFIXES, Field, SObject

_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?"
)
_NUMERIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_STRINGS = frozenset({"string", "textarea", "email", "phone", "url", "picklist"})
_DECIMALS = frozenset({"double", "currency", "percent"})
# Errors raised while the body is deserialized, before any DML; the body is refused whole.
PARSE_ERRORS = frozenset({"INVALID_FIELD", "JSON_PARSER_ERROR"})
_UNWRITABLE_MSG = (
    "Unable to create/update fields: {}. Please check the security settings of this field and verify that "
    "it is read/write for your profile or permission set."
)


class _ParseError(Exception):
    """The value cannot be deserialized into the field's type (Salesforce's JSON_PARSER_ERROR)."""


def error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    """One error in sObject Collections shape."""
    return {"statusCode": code, "message": message, "fields": list(fields or [])}


def sf_length(value: str) -> int:
    """Length as Salesforce counts it: UTF-16 code units, so an emoji counts twice."""
    return len(value.encode("utf-16-le")) // 2


def validate(
    obj: SObject, body: Mapping[str, Any], *, for_create: bool, admin: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Checks `body` (the JSON a client sent) as Salesforce would on create or update.

    Returns the values keyed by canonical field name, converted to their stored form, and the errors
    (empty when the record may be saved). `admin` skips the writability and required checks, for seeding.
    """
    values: dict[str, Any] = {}
    by_name = obj.by_name
    for key, value in body.items():
        if key == "attributes":
            continue
        f = by_name.get(key) or obj.field(key)  # a canonical name (as Bulk's columns are) found directly
        if f is not None and f.type == "id":
            if for_create and not admin:
                return {}, [
                    error("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
                ]
            continue  # on update the id comes from the URL; Salesforce ignores it in the body
        if f is None:
            # Salesforce rejects the whole body while deserializing it, at the first unknown name.
            return {}, [error("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}")]
        try:
            values[f.name] = _convert(f, value)
        except _ParseError as exc:
            return {}, [error("JSON_PARSER_ERROR", _parser_message(f, value, str(exc), body, key))]
    if not admin:
        writable = obj.createable_names if for_create else obj.updateable_names
        locked = [n for n in values if n not in writable]
        if locked:
            return {}, [
                error("INVALID_FIELD_FOR_INSERT_UPDATE", _UNWRITABLE_MSG.format(", ".join(locked)), locked)
            ]
    errors: list[dict[str, Any]] = []
    missing = [] if admin else _missing(obj, values, for_create)
    if missing:
        errors.append(
            error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        )
    for name, value in values.items():
        if value is not None:
            problem = _check(by_name[name], value)
            if problem:
                errors.append(problem)
    return values, errors


# What accepted() answers for a value that validate() would refuse or store as null.
REFUSED = object()


def accepted(f: Field, value: Any) -> Any:
    """The stored form of `value` (a JSON value) as validate() would store it in `f`, or REFUSED where
    validate() would answer an error or store null, or `value` is null."""
    if value is None:
        return REFUSED
    try:
        stored = _convert(f, value)
    except _ParseError:
        return REFUSED
    if stored is None or _check(f, stored) is not None:
        return REFUSED
    return stored


def accepted_column(f: Field, values: Sequence[Any]) -> list[Any]:
    """accepted() of each of `values` in `f`, answered for them all at once where the field's rules
    allow: Bulk checks a column of a chunk in a few passes rather than value by value."""
    kinds = set(map(type, values))
    if kinds == {bool} and f.type == "boolean":
        return list(values)  # a boolean is stored as it is, with nothing to check
    if kinds == {str} and "" not in values:
        if _stored_as_given(f, values):
            return list(values)
        if f.type in _DECIMALS and all(map(_NUMERIC.fullmatch, values)):
            stored = [_round(Decimal(value), f.scale) for value in values]
            if max(map(abs, stored)) < _decimal_bound(f):
                return stored
    return [accepted(f, value) for value in values]


def _stored_as_given(f: Field, values: Sequence[str]) -> bool:
    """Whether validate() stores each of `values` (non-empty text) in `f` as it is, with no error."""
    t = f.type
    if t == "date":
        dates = list(map(_DATE.fullmatch, values))
        return all(dates) and all(_real_date(*m.groups()) for m in dates)
    if t not in _STRINGS:
        return False
    # No value is longer in UTF-16 than twice its length: within half the limit, none is too long.
    if f.length and max(map(len, values)) * 2 > f.length:
        return False
    if t == "email":
        return all(map(_EMAIL.fullmatch, values))
    return t != "picklist" or not f.restricted or set(values) <= set(f.picklist)


def _missing(obj: SObject, values: dict[str, Any], for_create: bool) -> list[str]:
    if for_create:
        return [name for name in obj.required_names if values.get(name) is None]
    # An update may leave a required field alone but not blank it; defaulted ones (Status) included.
    return [n for n, v in values.items() if v is None and _not_blankable(obj.by_name[n])]


def _not_blankable(f: Field) -> bool:
    return not f.nillable and f.type != "boolean"


def exact_integer(text: str) -> int | Decimal:
    """int(text) of an integer's digits; the Decimal of one longer than int() reads
    (sys.get_int_max_str_digits(), ValueError past it): far outside any field's range, as _check says."""
    limit = sys.get_int_max_str_digits()
    return Decimal(text) if limit and len(text) > limit else int(text)


def _convert(f: Field, value: Any) -> Any:
    """The stored form of a JSON value for field `f`; _ParseError names the JSON token it could not take."""
    t = f.type
    if value is None:
        return False if t == "boolean" else None
    if type(value) is str and value:
        # The common cases first, answered as the general path below answers them.
        if t in _STRINGS:
            return value  # str() of a str is itself
        if t in _DECIMALS and _NUMERIC.fullmatch(value):
            return _round(Decimal(value), f.scale)
        if t == "date" and (m := _DATE.fullmatch(value)) and _real_date(*m.groups()):
            return value  # a plain date: _DATETIME matches it with the same groups, value[:10] is itself
    token = _token(value)
    if token in ("START_OBJECT", "START_ARRAY"):
        raise _ParseError(token)
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _ParseError(token)
    if isinstance(value, str) and value == "":
        return None  # Salesforce stores an empty string as null, for every type
    if t == "reference":
        # Salesforce stores and answers the 18-character form whichever form was sent.
        return ids.to18(value) if ids.is_valid(value) else str(value)
    if t in _STRINGS:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if t == "int":
        if isinstance(value, bool):
            raise _ParseError(token)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
            return exact_integer(value)
        if isinstance(value, Decimal):  # a JSON integer of more digits than int() reads
            return value
        raise _ParseError(token)
    if t in _DECIMALS:
        if isinstance(value, bool):
            raise _ParseError(token)
        if isinstance(value, int | float) and math.isfinite(value):
            return _round(Decimal(str(value)), f.scale)
        if isinstance(value, str) and _NUMERIC.fullmatch(value):
            return _round(Decimal(value), f.scale)
        if isinstance(value, Decimal):
            return _round(value, f.scale)
        raise _ParseError(token)
    if t == "date":
        m = _DATETIME.fullmatch(value) if isinstance(value, str) else None
        if not m or not _real_date(*m.groups()[:3]):
            raise _ParseError(token)
        return value[:10]
    if t == "datetime":
        return _datetime(value, token)
    raise _ParseError(token)  # address, id and other types cannot be written


def _round(value: Decimal, scale: int) -> float:
    if value.adjusted() + 1 + scale > getcontext().prec:
        # Too many digits to quantize (InvalidOperation), and far outside any field's range (at most 18
        # digits): _check refuses it.
        return float(value)
    return float(value.quantize(_quantum(scale), rounding=ROUND_HALF_UP))


@functools.cache
def _quantum(scale: int) -> Decimal:
    return Decimal(1).scaleb(-scale)  # fields have a handful of scales between them


@functools.lru_cache(maxsize=4096)  # records repeat dates (days of sign-up, of closing...)
def _real_date(y: str, m: str, d: str) -> bool:
    try:
        datetime(int(y), int(m), int(d))
    except ValueError:
        return False
    return True


def _datetime(value: Any, token: str) -> str:
    m = _DATETIME.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise _ParseError(token)
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime(
            int(y),
            int(mo),
            int(d),
            int(h or 0),
            int(mi or 0),
            int(s or 0),
            int((frac or "0")[:6].ljust(6, "0")),
        )
        if tz and tz != "Z":
            dt = datetime.fromisoformat(dt.isoformat() + tz[:3] + ":" + tz[-2:])
        else:
            dt = dt.replace(tzinfo=UTC)
    except ValueError as exc:
        raise _ParseError(token) from exc
    return format_datetime(dt)


def format_datetime(dt: datetime) -> str:
    """Salesforce's datetime form: `2026-11-28T18:00:00.000+0000`, always UTC.

    Salesforce stores datetimes to the second: whatever milliseconds a client sends, or the clock
    had, every datetime it answers ends in `.000+0000`.
    """
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _token(value: Any) -> str:
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int | Decimal):  # a Decimal: a JSON integer of more digits than int() reads
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "VALUE_STRING"


_TYPE_NAMES = {
    "currency": "double",
    "percent": "double",
    "textarea": "string",
    "email": "string",
    "phone": "string",
    "url": "string",
    "picklist": "string",
    "reference": "id",
}


def _parser_message(f: Field, value: Any, token: str, body: Mapping[str, Any], key: str) -> str:
    shown = {"START_OBJECT": "{", "START_ARRAY": "["}.get(token)
    if shown is None:
        # A Decimal is a JSON integer of more digits than int() reads: its digits as they were sent.
        shown = str(value) if isinstance(value, str | Decimal) else json.dumps(value)
    type_name = _TYPE_NAMES.get(f.type, f.type)
    return (
        f"Cannot deserialize instance of {type_name} from {token} value {shown} or request may be missing "
        f"a required field at [line:1, column:{_column(body, key)}]"
    )


def _column(body: Mapping[str, Any], key: str) -> int:
    """Where the value of `key` ends in the body serialized compactly (the client's exact text is gone)."""
    text = ""
    for k, v in body.items():
        text += ("," if text else "{") + json.dumps(k) + ":"
        if k == key:
            if not isinstance(v, dict | list):
                text += json.dumps(v, default=str)
            return len(text) + 1
        text += json.dumps(v, separators=(",", ":"), default=str)
    return len(text) + 1


def _check(f: Field, value: Any) -> dict[str, Any] | None:
    t = f.type
    # UTF-16 length lies between len() and twice it, so most values skip the encoding.
    if t in _STRINGS and f.length and len(value) * 2 > f.length and sf_length(value) > f.length:
        return error(
            "STRING_TOO_LONG", f"{f.label}: data value too large: {value} (max length={f.length})", [f.name]
        )
    if t == "email" and not _EMAIL.fullmatch(value):
        return error("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", [f.name])
    if t == "picklist" and f.restricted and value not in f.picklist:
        return error(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{f.label}: bad value for restricted picklist field: {value}",
            [f.name],
        )
    if t == "int" and abs(value) >= 10**f.digits:
        return _out_of_range(f, value)
    if t in _DECIMALS and abs(value) >= _decimal_bound(f):
        return _out_of_range(f, value)
    if t == "reference":
        return _check_reference(f, value)
    return None


def _decimal_bound(f: Field) -> int:
    """The smallest magnitude a number field cannot hold: its precision less its scale in whole digits."""
    return 10 ** (f.precision - f.scale)


def _out_of_range(f: Field, value: int | float) -> dict[str, Any]:
    shown = int(value) if isinstance(value, float) and value.is_integer() else value
    return error(
        "NUMBER_OUTSIDE_VALID_RANGE",
        f"{f.label}: value outside of valid range on numeric field: {shown}",
        [f.name],
    )


def _check_reference(f: Field, value: str) -> dict[str, Any] | None:
    message = f"{f.label}: id value of incorrect type: {value}"
    if not ids.is_valid(value):
        return error("MALFORMED_ID", message, [f.name])
    if value[:3] not in {KEY_PREFIXES.get(t) for t in f.reference_to}:
        return error("FIELD_INTEGRITY_EXCEPTION", message, [f.name])
    return None
