"""Fit mapped fields to an org's describe: its casing, its lengths and types, its writable fields."""

import datetime
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.fields import FieldMeta, ObjectMeta

# Text-valued describe types: a value longer than `length` is cut to it (Salesforce would
# reject the whole record with STRING_TOO_LONG).
STRING_TYPES = frozenset(
    {
        "string",
        "textarea",
        "email",
        "phone",
        "url",
        "picklist",
        "combobox",
        "multipicklist",
        "encryptedstring",
    }
)
# Record ids: a cut id would name another record, or none, so they are never trimmed.
ID_TYPES = frozenset({"id", "reference"})
INT_TYPES = frozenset({"int", "long"})
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
DATE_TYPES = frozenset({"date"})
DATETIME_TYPES = frozenset({"datetime"})
BOOLEAN_TYPES = frozenset({"boolean"})

BOOLEAN_TEXT = {"true": True, "false": False}
NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
MULTIPICKLIST_SEPARATOR = ";"
MAX_INTEGER_DIGITS = 40


@dataclass(frozen=True)
class FitResult:
    """What may be sent, and what fitting changed or left out (field names as described below)."""

    fields: dict  # what may be sent, with the org's field casing
    trimmed: tuple[str, ...]  # fields cut to the field's length
    converted: tuple[str, ...]  # values converted without loss ("4" -> 4)
    dropped_type: tuple[str, ...]  # fields dropped: value of the wrong type, not convertible
    dropped_unknown: tuple[str, ...]  # fields the org does not have (as named by the mapping)
    dropped_readonly: tuple[str, ...]  # fields that cannot be written (createable/updateable false)


class Unfit(Exception):
    """The value cannot become this field's type without losing information."""


def fit_fields(fields: dict, meta: ObjectMeta, for_create: bool | None) -> FitResult:
    """`fields` as `meta`'s org will take them, for a create (`for_create` True), an update (False) or
    either (None: the fields a create or an update may write; the caller splits them).

    Names resolve case-insensitively to the org's casing (the reports other than
    `dropped_unknown` use that casing). A None value clears the field when it is nillable; on a
    field that cannot be empty it is dropped as of the wrong type.
    """
    out: dict[str, Any] = {}
    trimmed: list[str] = []
    converted: list[str] = []
    dropped_type: list[str] = []
    dropped_unknown: list[str] = []
    dropped_readonly: list[str] = []
    get_field = meta.get
    for name, value in fields.items():
        field = get_field(name)
        if field is None:
            dropped_unknown.append(name)
            continue
        if not (
            field.createable or field.updateable
            if for_create is None
            else (field.createable if for_create else field.updateable)
        ):
            dropped_readonly.append(field.name)
            continue
        value = fit_field_value(value, field, converted, trimmed, dropped_type)
        if value is not DROPPED:
            out[field.name] = value
    return FitResult(
        out,
        tuple(trimmed),
        tuple(converted),
        tuple(dropped_type),
        tuple(dropped_unknown),
        tuple(dropped_readonly),
    )


# What fit_field_value answers for a value its field cannot take.
DROPPED = object()


def fit_field_value(
    value: Any, field: FieldMeta, converted: list[str], trimmed: list[str], dropped_type: list[str]
) -> Any:
    """`value` as `field` takes it, the field named in `converted` or `trimmed` where fitting changed it;
    DROPPED, the field named in `dropped_type`, where it cannot be written: None on a field that cannot be
    empty (on one that can, None clears it), or a value that cannot be converted without loss.

    Types with no converter here (time, base64, anyType, ...) go as they are: Salesforce decides.
    """
    if value is None:
        if field.nillable:
            return None
        dropped_type.append(field.name)
        return DROPPED
    converter = _CONVERTER_OF_TYPE.get(field.type)
    if converter is None:
        return value
    try:
        fitted = converter(value, field)
    except Unfit:
        dropped_type.append(field.name)
        return DROPPED
    # 4 == 4.0 == True in Python; a changed type is a conversion even when the values compare equal.
    if fitted is not value and (type(fitted) is not type(value) or fitted != value):
        converted.append(field.name)
    if field.length and field.type in STRING_TYPES and utf16_length(fitted) > field.length:
        trimmed.append(field.name)
        return trim_utf16(fitted, field.length)
    return fitted


def match_value_too_long(match_field: str, value: str, meta: ObjectMeta) -> str | None:
    """Why `value` cannot be the record's `match_field`, or None.

    A match value is never trimmed like other text: the record would be written under another
    value, which no later lookup finds, and every run would create it again.
    """
    field = meta.get(match_field)
    if field is None or not field.length or utf16_length(value) <= field.length:
        return None
    return (
        f"{field.name} holds {field.length} characters and the event's value has {utf16_length(value)}: "
        "it is the record's match key, so it is not trimmed (the record could never be found again)"
    )


def _to_text(value: Any, field: FieldMeta) -> str:
    if isinstance(value, str):  # most values: tested first
        if field.restricted_picklist and field.picklist_values:
            return _picklist_value(value, field)
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise Unfit


def _picklist_value(value: str, field: FieldMeta) -> str:
    """A restricted picklist takes only its values (Salesforce would reject the record)."""
    by_lower = {v.lower(): v for v in field.picklist_values}
    parts = value.split(MULTIPICKLIST_SEPARATOR) if field.type == "multipicklist" else [value]
    try:
        # Same letters, other case: the org's spelling of the same choice.
        return MULTIPICKLIST_SEPARATOR.join(by_lower[p.strip().lower()] for p in parts)
    except KeyError:
        raise Unfit from None


def _to_id(value: Any, field: FieldMeta) -> str:
    if not isinstance(value, str) or (field.length and len(value) > field.length):
        raise Unfit
    return value


def _decimal(value: Any) -> Decimal:
    """The exact number a JSON number or numeric text stands for."""
    if isinstance(value, bool):
        raise Unfit
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unfit
        return Decimal(repr(value))
    if isinstance(value, str) and NUMBER_TEXT.fullmatch(value.strip()):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise Unfit from None
        # "1e999999999" would take forever to become an int; no Salesforce number has 40 digits.
        if number.adjusted() >= MAX_INTEGER_DIGITS:
            raise Unfit
        return number
    raise Unfit


def _to_int(value: Any, field: FieldMeta) -> int:
    number = _decimal(value)
    if number != number.to_integral_value():
        raise Unfit
    result = int(number)
    # Salesforce answers NUMBER_OUTSIDE_VALID_RANGE beyond `digits` (NumberOfEmployees: 8).
    if field.digits and len(str(abs(result))) > field.digits:
        raise Unfit
    return result


def _to_number(value: Any, field: FieldMeta) -> int | float:
    number = _decimal(value)
    if field.precision and abs(number) >= Decimal(10) ** (field.precision - field.scale):
        raise Unfit
    if isinstance(value, int | float):
        return value
    if number == number.to_integral_value() and "." not in value and "e" not in value.lower():
        return int(number)
    as_float = float(number)
    # A float that does not give the same decimal back has lost digits.
    if not math.isfinite(as_float) or Decimal(repr(as_float)) != number:
        raise Unfit
    return as_float


def _to_bool(value: Any, field: FieldMeta) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in BOOLEAN_TEXT:
        return BOOLEAN_TEXT[value.strip().lower()]
    raise Unfit


def _to_date(value: Any, field: FieldMeta) -> str:
    # A datetime's date part would drop its time (and move with the time zone): not lossless.
    if not isinstance(value, str) or not DATE_TEXT.fullmatch(value.strip()):
        raise Unfit
    try:
        return datetime.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise Unfit from None


def _to_datetime(value: Any, field: FieldMeta) -> str:
    """ISO 8601 text (a date is its midnight, no offset is UTC) in Salesforce's own form."""
    if not isinstance(value, str):
        # Epoch numbers are ambiguous (seconds or milliseconds): not guessed at.
        raise Unfit
    try:
        # RFC 3339 allows a lower-case t and z, which fromisoformat does not.
        parsed = datetime.datetime.fromisoformat(value.strip().upper())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        utc = parsed.astimezone(datetime.UTC)
    except (ValueError, OverflowError):  # not ISO 8601, or outside years 1 to 9999 once in UTC
        raise Unfit from None
    # Salesforce keeps milliseconds; that is all it could store of a finer time anyway.
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


_CONVERTERS: tuple[tuple[frozenset[str], Callable[[Any, FieldMeta], Any]], ...] = (
    (STRING_TYPES, _to_text),
    (ID_TYPES, _to_id),
    (INT_TYPES, _to_int),
    (NUMBER_TYPES, _to_number),
    (BOOLEAN_TYPES, _to_bool),
    (DATE_TYPES, _to_date),
    (DATETIME_TYPES, _to_datetime),
)


_CONVERTER_OF_TYPE = {kind: converter for kinds, converter in _CONVERTERS for kind in kinds}


def utf16_length(text: str) -> int:
    """Length as Salesforce counts it: UTF-16 code units (Java strings), so an emoji counts twice."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def trim_utf16(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 code units, never splitting a character."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return text[:i]
    return text
