"""Custom actions' operations on one object: batched lookups by several match fields, then collection writes.

The classic create-or-update by one field (salesforce/upsert.py) serves upserts that match on one field
and update the newest match; everything else an action can ask (create, read, update, delete, upserts that
match on several fields or update every match) is done here, through the same collection writes.
"""

import datetime
import decimal
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from salesforce.client import SalesforceClient
from salesforce.errors import ApiLimitExceeded, SalesforceApiError, TransientError
from salesforce.soql import DEFAULT_MAX_URL_BYTES as MAX_URL_BYTES
from salesforce.soql import MAX_SOQL_CHARS, encoded_length, fold, quote
from salesforce.upsert import LOOKUP_ORDER, BatchStopped, Written, _get, _has, _put, write_collections
from schemas.fields import ObjectMeta

log = logging.getLogger(__name__)

OPERATIONS = ("create", "read", "update", "upsert", "delete")
ON_MULTIPLE = ("update_latest", "all", "dead_letter")

CREATED = "created"
UPDATED = "updated"
DELETED = "deleted"
READ = "read"
NO_MATCH = "no_match"
FAILED = "failed"
# Every match is a record Salesforce refuses to change (a converted Lead: ActionSpec.skip_field true).
SKIPPED_CONVERTED = "skipped_converted"
# An already deleted record is what a delete wants: a replayed delete is not a failure.
_GONE = frozenset({"ENTITY_IS_DELETED"})


@dataclass(frozen=True)
class ActionItem:
    """One record's operation: the match values (one per match field), and the fitted fields."""

    match: tuple[str, ...]
    fields: dict[str, Any] = field(default_factory=dict)  # written on create and update
    create_defaults: dict[str, Any] = field(default_factory=dict)  # only on create, never over `fields`
    instance: str = ""  # create: the event's messageId, the idempotency field's value


@dataclass(frozen=True)
class ActionOutcome:
    action: str  # created | updated | deleted | read | no_match | failed
    record_ids: tuple[str, ...] = ()
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False
    ambiguous: bool = False  # several records matched and the newest was chosen (update_latest)
    rows: tuple[dict, ...] = ()  # read: the matched records' requested fields
    redirect_id: str | None = None  # skipped_converted: the record it became (ActionSpec.redirect_field)

    @property
    def record_id(self) -> str | None:
        return self.record_ids[0] if self.record_ids else None


@dataclass(frozen=True)
class ActionSpec:
    """What the operation needs to know of a custom action (actions/config.py: Action)."""

    name: str
    sobject: str
    operation: str
    match_fields: tuple[str, ...] = ()
    on_multiple: str = "update_latest"
    idempotency_field: str | None = None
    read_fields: tuple[str, ...] = ()
    # Lead: IsConverted. Updates and upserts pass over matches it marks (Salesforce refuses to change
    # them); when every match is marked the item is skipped_converted, with redirect_field's value
    # (ConvertedContactId) when given.
    skip_field: str | None = None
    redirect_field: str | None = None

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, not {self.operation!r}")
        if self.on_multiple not in ON_MULTIPLE:
            raise ValueError(f"on_multiple must be one of {', '.join(ON_MULTIPLE)}, not {self.on_multiple!r}")
        if (self.operation == "create") == bool(self.match_fields):
            raise ValueError("create takes no match fields; every other operation needs at least one")


def run_action(
    client: SalesforceClient, spec: ActionSpec, items: list[ActionItem], meta: ObjectMeta | None = None
) -> list[ActionOutcome]:
    """Does `spec`'s operation for each item: one outcome per item, in order.

    Matches are found with one query per batch (split only to fit the URI limit): every match field
    compared with IN, the exact combination checked here, newest first. Several matches follow
    `on_multiple`: the newest (`ambiguous`), all of them, or a MULTIPLE_MATCHES failure. An update or delete
    without a match is `no_match` and makes no call. A create with an idempotency field is an upsert on it
    (holding the event's messageId), so a retried create cannot make a second record; without one, a
    create call that may have been applied fails (retryable) rather than being sent again blindly.
    Failures of the whole batch become "failed" outcomes; only SalesforceLoginError is raised.
    """
    outcomes: list[ActionOutcome | None] = [None] * len(items)
    try:
        if spec.operation == "create":
            _create(client, spec, items, outcomes)
        else:
            _matched(client, spec, items, outcomes, meta)
    except BatchStopped as stop:
        for i, outcome in enumerate(outcomes):
            if outcome is None:
                outcomes[i] = ActionOutcome(FAILED, (), stop.code, stop.message, stop.retryable)
    return [
        o if o is not None else ActionOutcome(FAILED, (), "UNKNOWN_EXCEPTION", "not written")
        for o in outcomes
    ]


def _create(
    client: SalesforceClient, spec: ActionSpec, items: list[ActionItem], outcomes: list[ActionOutcome | None]
) -> None:
    records = {str(i): _create_body(item, spec) for i, item in enumerate(items)}
    if spec.idempotency_field:
        for i, item in enumerate(items):
            _put(records[str(i)], spec.idempotency_field, item.instance)
        idem = spec.idempotency_field
        written = write_collections(
            client, spec.sobject, lambda sobject, chunk: client.upsert_many(sobject, idem, chunk), records
        )
    else:
        written = write_collections(
            client, spec.sobject, client.create_many, records, look_up_before_resending=True
        )
    _record(written, outcomes, CREATED)
    for key, exc in written.maybe_applied.items():
        outcomes[int(key)] = ActionOutcome(
            FAILED,
            (),
            exc.error_code,
            f"{exc.message}; the create may have been applied, and action {spec.name!r} has no "
            "idempotency_field to make sending it again safe",
            retryable=True,
        )


def _matched(
    client: SalesforceClient,
    spec: ActionSpec,
    items: list[ActionItem],
    outcomes: list[ActionOutcome | None],
    meta: ObjectMeta | None,
) -> None:
    try:
        try:
            found = lookup(client, spec, [item.match for item in items], meta)
        except ValueError:  # values too long for any query: no record can hold them either
            too_long = unqueryable(client, spec, [item.match for item in items], meta)
            for i, item in enumerate(items):
                message = too_long.get(_folded(item.match))
                if message is not None:
                    outcomes[i] = ActionOutcome(FAILED, (), "KEY_TOO_LONG", message)
            rest = [item.match for item in items if _folded(item.match) not in too_long]
            found = lookup(client, spec, rest, meta)
    except (ApiLimitExceeded, TransientError) as exc:
        raise BatchStopped(exc.error_code, exc.message, True) from None
    except SalesforceApiError as exc:
        raise BatchStopped(exc.error_code, exc.message, False) from None
    updates: dict[str, dict] = {}  # record id -> fields; items that share a record write it once
    update_items: dict[int, tuple[str, ...]] = {}
    deletes: dict[str, str] = {}
    delete_items: dict[int, tuple[str, ...]] = {}
    creates: dict[str, dict] = {}
    for i, item in enumerate(items):
        if outcomes[i] is not None:
            continue
        matches = found.get(_folded(item.match), [])
        if matches and spec.skip_field and spec.operation in ("update", "upsert"):
            open_matches = [m for m in matches if not _get(m, spec.skip_field)]
            if not open_matches:
                redirect = _get(matches[0], spec.redirect_field) if spec.redirect_field else None
                outcomes[i] = ActionOutcome(
                    SKIPPED_CONVERTED,
                    (str(matches[0]["Id"]),),
                    redirect_id=redirect if isinstance(redirect, str) and redirect else None,
                )
                continue
            matches = open_matches
        if not matches:
            if spec.operation == "upsert":
                creates[str(i)] = _create_body(item, spec)
            else:
                outcomes[i] = ActionOutcome(NO_MATCH)
            continue
        several = len(matches) > 1
        # Counted as ambiguous only when the newest of several was chosen (update_latest).
        ambiguous = several and spec.on_multiple == "update_latest"
        if several and spec.on_multiple == "dead_letter":
            ids = ", ".join(str(m.get("Id")) for m in matches[:10])
            outcomes[i] = ActionOutcome(
                FAILED,
                tuple(str(m.get("Id")) for m in matches),
                "MULTIPLE_MATCHES",
                f"{len(matches)} {spec.sobject} records match ({ids}); action {spec.name!r} dead-letters "
                "several matches (on_multiple: dead_letter)",
            )
            continue
        targets = matches if spec.on_multiple == "all" else matches[:1]
        ids = tuple(str(m["Id"]) for m in targets)
        if spec.operation == "read":
            rows = tuple({name: _get(m, name) for name in spec.read_fields} for m in targets)
            outcomes[i] = ActionOutcome(READ, ids, ambiguous=ambiguous, rows=rows)
        elif spec.operation == "delete":
            deletes.update((record_id, record_id) for record_id in ids)
            delete_items[i] = ids
            outcomes[i] = ActionOutcome(DELETED, ids, ambiguous=ambiguous)
        elif not item.fields:
            outcomes[i] = ActionOutcome(UPDATED, ids, ambiguous=ambiguous)
        else:
            for record_id in ids:
                updates[record_id] = {**updates.get(record_id, {"Id": record_id}), **item.fields}
            update_items[i] = ids
            outcomes[i] = ActionOutcome(UPDATED, ids, ambiguous=ambiguous)
    if updates:
        _fail_unwritten(
            write_collections(client, spec.sobject, client.update_many, updates), update_items, outcomes
        )
    if deletes:
        written = write_collections(client, spec.sobject, client.delete_many, deletes)
        for record_id in [k for k, (code, _, _) in written.failed.items() if code in _GONE]:
            del written.failed[record_id]
        _fail_unwritten(written, delete_items, outcomes)
    if creates:
        _create_matched(client, spec, items, creates, outcomes, meta)


def _create_matched(
    client: SalesforceClient,
    spec: ActionSpec,
    items: list[ActionItem],
    creates: dict[str, dict],
    outcomes: list[ActionOutcome | None],
    meta: ObjectMeta | None,
) -> None:
    """Upsert's creates. A call that may have been applied is looked up again before it is sent again."""
    for round_no in range(client.settings.max_retries + 1):
        written = write_collections(
            client, spec.sobject, client.create_many, creates, look_up_before_resending=True
        )
        _record(written, outcomes, CREATED)
        _update_taken(
            client, spec, items, [k for k, f in written.failed.items() if f[0] in _TAKEN], outcomes, meta
        )
        if not written.maybe_applied:
            return
        again = list(written.maybe_applied)
        last = next(iter(written.maybe_applied.values()))
        if round_no == client.settings.max_retries:
            for key in again:
                outcomes[int(key)] = ActionOutcome(FAILED, (), last.error_code, last.message, retryable=True)
            return
        log.warning("create call failed (%s); looking the records up again before retrying", last.error_code)
        client.back_off(round_no)
        try:
            found = lookup(client, spec, [items[int(k)].match for k in again], meta)
        except (ApiLimitExceeded, TransientError) as exc:
            raise BatchStopped(exc.error_code, exc.message, True) from None
        creates = {}
        for key in again:
            matches = found.get(_folded(items[int(key)].match), [])
            if matches:  # our own create, applied before the call failed
                outcomes[int(key)] = ActionOutcome(CREATED, (str(matches[0]["Id"]),))
            else:
                creates[key] = _create_body(items[int(key)], spec)
        if not creates:
            return


def _update_taken(
    client: SalesforceClient,
    spec: ActionSpec,
    items: list[ActionItem],
    keys: list[str],
    outcomes: list[ActionOutcome | None],
    meta: ObjectMeta | None,
) -> None:
    """Creates refused because another writer made the record since the lookup (a unique match field's
    DUPLICATE_VALUE): the record is looked up again and updated, as upsert_by_key does."""
    if not keys:
        return
    try:
        found = lookup(client, spec, [items[int(k)].match for k in keys], meta)
    except (ApiLimitExceeded, TransientError) as exc:
        raise BatchStopped(exc.error_code, exc.message, True) from None
    updates: dict[str, dict] = {}
    update_items: dict[int, tuple[str, ...]] = {}
    for key in keys:
        i = int(key)
        matches = found.get(_folded(items[i].match), [])
        if not matches:
            continue  # another unique field holds the value: the refusal stands
        record_id = str(matches[0]["Id"])
        ambiguous = len(matches) > 1 and spec.on_multiple == "update_latest"
        outcomes[i] = ActionOutcome(UPDATED, (record_id,), ambiguous=ambiguous)
        if items[i].fields:
            updates[record_id] = {**updates.get(record_id, {"Id": record_id}), **items[i].fields}
            update_items[i] = (record_id,)
    if updates:
        _fail_unwritten(
            write_collections(client, spec.sobject, client.update_many, updates), update_items, outcomes
        )


def _statement(
    client: SalesforceClient, spec: ActionSpec, meta: ObjectMeta | None
) -> tuple[str, str, tuple[str, ...] | None]:
    """The lookup's SELECT ... FROM, the query path, and the match fields' kinds (None: all text)."""
    fields = ["Id", "LastModifiedDate", *spec.match_fields]
    fields += [f for f in (spec.skip_field, spec.redirect_field) if f]
    fields += [f for f in spec.read_fields if f.lower() not in {x.lower() for x in fields}]
    select = f"SELECT {', '.join(fields)} FROM {spec.sobject}"
    api_path = f"/services/data/v{client.settings.api_version}/query/?q="
    kinds = tuple(match_kind(meta, name) for name in spec.match_fields) if meta is not None else None
    return select, api_path, kinds


def unqueryable(
    client: SalesforceClient, spec: ActionSpec, matches: list[tuple[str, ...]], meta: ObjectMeta | None = None
) -> dict[tuple[str, ...], str]:
    """The combinations (folded) too long for a lookup query of their own, with why."""
    select, api_path, kinds = _statement(client, spec, meta)
    too_long: dict[tuple[str, ...], str] = {}
    for combination in matches:
        try:
            match_queries(select, spec.match_fields, [combination], api_path, kinds=kinds)
        except ValueError as exc:
            too_long[_folded(combination)] = f"{exc}: no {spec.sobject} record can hold such values"
    return too_long


def lookup(
    client: SalesforceClient,
    spec: ActionSpec,
    matches: list[tuple[str, ...]],
    meta: ObjectMeta | None = None,
) -> dict[tuple[str, ...], list[dict]]:
    """The records matching each combination of values (folded), most recently modified first. `meta`
    (the object's describe) says which match fields are numbers, dates or checkboxes, written unquoted;
    without it every match field is text. Raises ValueError when a combination is too long for any query
    (`unqueryable` says which)."""
    select, api_path, kinds = _statement(client, spec, meta)
    # A value a number or date field cannot hold matches nothing: it is left out of the query.
    if kinds is not None:
        matches = [
            m for m in matches if all(_literal(v, k) is not None for v, k in zip(m, kinds, strict=True))
        ]
    kinds = kinds or (TEXT,) * len(spec.match_fields)
    # A record matches an event's combination when each field compares equal as its kind says (a
    # record's 1.5 matches an event's "1.50"): its compared values -> the events' combinations (folded).
    wanted: dict[tuple[str | None, ...], set[tuple[str, ...]]] = {}
    for m in matches:
        wanted.setdefault(_compared(m, kinds), set()).add(_folded(m))
    found: dict[tuple[str, ...], list[dict]] = {}
    for soql in match_queries(select, spec.match_fields, matches, api_path, kinds=kinds):
        for record in client.query_all(soql):
            values = [_get(record, name) for name in spec.match_fields]
            if not all(isinstance(v, str | int | float) for v in values):
                continue
            compared = _compared(values, kinds)
            for combination in wanted.get(compared, ()) if None not in compared else ():
                found.setdefault(combination, []).append(record)
    for records in found.values():
        records.sort(key=lambda r: (str(_get(r, "LastModifiedDate") or ""), str(r.get("Id"))), reverse=True)
    return found


def match_queries(
    select: str,
    match_fields: tuple[str, ...],
    matches: list[tuple[str, ...]],
    api_path: str,
    max_url_bytes: int = MAX_URL_BYTES,
    kinds: tuple[str, ...] | None = None,
) -> list[str]:
    """Statements `select WHERE f1 IN (...) AND f2 IN (...)` covering every combination, each within the
    URI and statement limits. The IN lists admit combinations not asked for: the caller checks each
    record's exact combination. Raises ValueError for a combination too long for a statement of its own.

    `kinds` (match_kind's, per match field, default all TEXT) says how each field's values are
    written: numbers and dates unquoted, as SOQL wants them; every value must be one the field can hold."""
    kinds = kinds or (TEXT,) * len(match_fields)
    heads = [f"{name} IN (" for name in match_fields]
    head, joint, tail = f"{select} WHERE ", ") AND ", f") ORDER BY {LOOKUP_ORDER}"
    # Sizes add up piece by piece (salesforce/soql.py, in_clause_queries): each new literal adds its own
    # encoded bytes and characters, and a comma's after the first of its field.
    fixed = head + joint.join(heads) + tail
    fixed_bytes, fixed_chars = encoded_length(fixed, api_path), len(fixed)
    comma_bytes = encoded_length(",", "")

    def render(literals: list[dict[str, None]]) -> str:
        return head + joint.join(h + ",".join(lits) for h, lits in zip(heads, literals, strict=True)) + tail

    queries: list[str] = []
    seen: set[tuple[str, ...]] = set()
    literals: list[dict[str, None]] = [{} for _ in match_fields]  # per field, in order, each once
    used_bytes, used_chars = fixed_bytes, fixed_chars
    for combo in matches:
        folded = _folded(combo)
        if folded in seen:
            continue
        seen.add(folded)
        texts = [str(_literal(value, kind)) for value, kind in zip(combo, kinds, strict=True)]
        alone_bytes = fixed_bytes + sum(encoded_length(t, "") for t in texts)
        if alone_bytes > max_url_bytes or fixed_chars + sum(map(len, texts)) > MAX_SOQL_CHARS:
            raise ValueError(
                f"match values of {sum(len(v) for v in combo)} characters do not fit in one query"
            )
        new = [(n, t) for n, t in enumerate(texts) if t not in literals[n]]
        extra_bytes = sum(encoded_length(t, "") + (comma_bytes if literals[n] else 0) for n, t in new)
        extra_chars = sum(len(t) + (1 if literals[n] else 0) for n, t in new)
        if any(literals) and (
            used_bytes + extra_bytes > max_url_bytes or used_chars + extra_chars > MAX_SOQL_CHARS
        ):
            queries.append(render(literals))
            literals = [{} for _ in match_fields]
            used_bytes, used_chars = fixed_bytes, fixed_chars
            new = list(enumerate(texts))
            extra_bytes = sum(encoded_length(t, "") for t in texts)
            extra_chars = sum(map(len, texts))
        for n, t in new:
            literals[n][t] = None
        used_bytes += extra_bytes
        used_chars += extra_chars
    if any(literals):
        queries.append(render(literals))
    return queries


# A create refused because the match value is taken: another writer created the record meanwhile.
_TAKEN = frozenset({"DUPLICATE_VALUE"})
TEXT, NUMBER, DATE, DATETIME, BOOLEAN = "text", "number", "date", "datetime", "boolean"
_NUMBER_TYPES = frozenset({"int", "double", "currency", "percent", "long"})
_KINDS = {"date": DATE, "datetime": DATETIME, "boolean": BOOLEAN} | {t: NUMBER for t in _NUMBER_TYPES}
_SOQL_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_SOQL_DATETIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?(Z|[+-][0-9]{2}:?[0-9]{2})$"
)
_SOQL_BOOLEAN = re.compile(r"^(true|false)$", re.IGNORECASE)
_PATTERNS = {DATE: _SOQL_DATE, DATETIME: _SOQL_DATETIME, BOOLEAN: _SOQL_BOOLEAN}
_MAX_NUMBER_DIGITS = 18  # a number field's precision is at most 18 digits


def match_kind(meta: ObjectMeta, name: str) -> str:
    """How a match field's values are written in SOQL and compared: TEXT, NUMBER, DATE, DATETIME or
    BOOLEAN (the last four unquoted, as SOQL wants them)."""
    field = meta.get(name)
    return TEXT if field is None else _KINDS.get(field.type, TEXT)


def _literal(value: str, kind: str) -> str | None:
    """The SOQL literal of `value` for a field of `kind`, or None when such a field cannot hold it."""
    if kind == TEXT:
        return quote(value)
    if kind == NUMBER:
        return _soql_number(value)
    if not _PATTERNS[kind].match(value):
        return None
    if kind == DATETIME and value[-3] != ":" and value[-1] != "Z":
        value = f"{value[:-2]}:{value[-2:]}"  # SOQL writes the offset as +hh:mm
    return value.lower() if kind == BOOLEAN else value


def _soql_number(value: str) -> str | None:
    """A number as SOQL writes it (digits, a point; 1E+2 as 100), or None when it is none or larger than
    any number field holds."""
    try:
        number = decimal.Decimal(value.strip())
    except decimal.InvalidOperation:
        return None
    if not number.is_finite() or number.adjusted() > _MAX_NUMBER_DIGITS or number.as_tuple().exponent < -30:
        return None
    return format(number, "f")


def match_key(value: Any, kind: str) -> str | None:
    """`value` (an event's match value or a record's field) as it compares for a field of `kind`: text
    folded; numbers by value (1.5 = 1.50); datetimes as the instant (UTC); None when it is no such value."""
    text = _text(value)
    if kind == TEXT:
        return fold(text)
    if kind == NUMBER:
        try:
            number = decimal.Decimal(text)
        except decimal.InvalidOperation:
            return None
        if not number.is_finite():
            return None
        return "0" if number.is_zero() else format(number.normalize(), "f")  # -0 is 0
    if kind == DATETIME:
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
        return moment.astimezone(datetime.UTC).isoformat()
    if kind == BOOLEAN:
        return text.lower() if text.lower() in ("true", "false") else None
    return text  # a date: YYYY-MM-DD either way


def _record(written: Written, outcomes: list[ActionOutcome | None], action: str) -> None:
    for key, result in written.ok.items():
        # An upsert on the idempotency field that found its record (a create sent again) updated it.
        done = UPDATED if action == CREATED and result.created is False else action
        outcomes[int(key)] = ActionOutcome(done, (result.id,) if result.id else ())
    for key, (code, message, retryable) in written.failed.items():
        outcomes[int(key)] = ActionOutcome(FAILED, (), code, message, retryable)
    if written.stopped:
        raise written.stopped


def _fail_unwritten(
    written: Written, by_item: Mapping[int, tuple[str, ...]], outcomes: list[ActionOutcome | None]
) -> None:
    """Items whose records (by id) did not all get written fail with the first record's error."""
    for i, ids in by_item.items():
        failed = [written.failed[r] for r in ids if r in written.failed]
        if failed:
            code, message, retryable = failed[0]
            outcomes[i] = ActionOutcome(FAILED, ids, code, message, retryable)
    if written.stopped:
        raise written.stopped


def _create_body(item: ActionItem, spec: ActionSpec) -> dict:
    record = {k: v for k, v in item.fields.items() if k.lower() != "id"}
    for name, value in zip(spec.match_fields, item.match, strict=True):
        if not _has(record, name):
            record[name] = value
    for name, value in item.create_defaults.items():
        if not _has(record, name):
            record[name] = value
    return record


def _compared(values, kinds: tuple[str, ...]) -> tuple[str | None, ...]:
    return tuple(match_key(v, k) for v, k in zip(values, kinds, strict=True))


def _folded(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(fold(v.strip()) for v in values)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
