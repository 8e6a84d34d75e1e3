"""Create-or-update by a match key: one IN-list lookup per batch, then sObject Collections writes."""

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from salesforce.client import COLLECTION_SIZE, SalesforceClient, SaveResult
from salesforce.errors import ApiLimitExceeded, SalesforceApiError, TransientError, is_retryable
from salesforce.soql import fold, in_clause_queries

log = logging.getLogger(__name__)

# Per-record lock contention clears within seconds; more retries would only hold the bundle.
LOCK_RETRIES = 3
# Newest first; Id breaks ties between records modified within the same millisecond.
LOOKUP_ORDER = "LastModifiedDate DESC, Id DESC"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # names go into SOQL unquoted
# Event times as field_times and the times field hold them: fixed width, so text order is time order.
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# The times field's length when describe cannot tell (docs/org-setup.md: Long Text Area(131072)).
TIMES_FIELD_LENGTH = 131_072
# A second writer's create of a key that the first one created is refused with this code.
DUPLICATE_VALUE = "DUPLICATE_VALUE"

CREATED = "created"
UPDATED = "updated"
SKIPPED_CONVERTED = "skipped_converted"
FAILED = "failed"


@dataclass(frozen=True)
class UpsertItem:
    key: str  # match value (e.g. email); compared case-insensitively
    fields: dict  # written on create and update
    create_defaults: dict = field(default_factory=dict)  # only on create, only where `fields` lacks the field
    # Per field of `fields`: the time of the event that set it, "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC); a
    # missing field or "" is unknown, older than any time. Used only with upsert_by_key's times_field.
    field_times: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpsertOutcome:
    key: str
    action: str  # "created" | "updated" | "skipped_converted" | "failed"
    record_id: str | None
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False
    ambiguous: bool = False  # several records matched; the most recently modified one was updated
    # Fields not written because the record holds a newer value (times_field); an update whose every
    # field is stale makes no call and is still "updated".
    stale_fields: tuple[str, ...] = ()
    # "skipped_converted": the record the match was converted to (redirect_field), if the org says.
    redirect_id: str | None = None


@dataclass
class _Entry:
    """One distinct key of the batch, with the fields of every item that carried it merged."""

    key: str
    fields: dict
    create_defaults: dict
    times: dict[str, str] = field(default_factory=dict)  # lower-cased field name -> event time
    outcome: UpsertOutcome | None = None
    created_by_us: bool = False  # not found at first, found after a create call failed ambiguously
    maybe_applied: bool = False  # this round: its create call failed in a way that may have written it
    collided: bool = False  # its create was refused: a record holds its key (key_field), look it up
    retry_error: tuple[str, str] | None = None  # code and message that sent it round again


def _merged(base: Mapping[str, Any], newer: Mapping[str, Any]) -> dict:
    """`newer` over `base`, field names compared as Salesforce does (ignoring case)."""
    out = dict(base)
    names = {k.lower(): k for k in out}
    for name, value in newer.items():
        old = names.get(name.lower())
        if old is not None and old != name:
            del out[old]
        out[name] = value
        names[name.lower()] = name
    return out


def _get(record: Mapping[str, Any], name: str) -> Any:
    """A field of a queried record; the org answers with its own casing of the field name."""
    if name in record:
        return record[name]
    lowered = name.lower()
    return next((v for k, v in record.items() if k.lower() == lowered), None)


def _has(fields: Mapping[str, Any], name: str) -> bool:
    if name in fields:
        return True
    lowered = name.lower()
    return any(k.lower() == lowered for k in fields)


class BatchStopped(Exception):
    """The rest of the batch cannot be written now (the daily API limit, or the share of it the governor
    keeps for other integrations: API_USAGE_RESERVED); remaining keys fail with it."""

    def __init__(self, code: str, message: str, retryable: bool):
        self.code, self.message, self.retryable = code, message, retryable


class _Upsert:
    def __init__(
        self,
        client: SalesforceClient,
        sobject: str,
        match_field: str,
        skip_field: str | None,
        key_field: str | None = None,
        times_field: str | None = None,
        redirect_field: str | None = None,
    ):
        self.client = client
        self.sobject = sobject
        self.match_field = match_field
        self.skip_field = skip_field
        self.key_field = key_field
        self.times_field = times_field
        self.redirect_field = redirect_field
        self.times_length = TIMES_FIELD_LENGTH
        self.unreadable_times = 0  # records whose times field held no JSON object of times
        extra = [f for f in (skip_field, key_field, times_field, redirect_field) if f]
        fields = ["Id", match_field, "LastModifiedDate"] + extra
        self.select = f"SELECT {', '.join(fields)} FROM {sobject}"

    @property
    def query_path(self) -> str:
        return f"/services/data/v{self.client.settings.api_version}/query/?q="

    # -- lookup ------------------------------------------------------------------------------------

    def queries(self, entries: list[_Entry]) -> list[str]:
        return in_clause_queries(
            self.select,
            self.match_field,
            [e.key for e in entries],
            api_path=self.query_path,
            order_by=LOOKUP_ORDER,
        )

    def lookup(self, entries: list[_Entry], by_key: list[_Entry] | None = None) -> dict[str, list[dict]]:
        """Matching records by folded key, most recently modified first; for the `by_key` entries
        also the record that holds their key in key_field, whatever its match field says now."""
        found: dict[str, list[dict]] = {}
        for soql in self.queries(entries):
            for record in self.client.query_all(soql):
                value = _get(record, self.match_field)
                if isinstance(value, str):
                    found.setdefault(fold(value), []).append(record)
        if by_key and self.key_field:
            self._lookup_keys(by_key, found)
        for records in found.values():
            # The server orders each query; sorting again keeps the rule true across split queries.
            records.sort(
                key=lambda r: (str(_get(r, "LastModifiedDate") or ""), str(r.get("Id"))), reverse=True
            )
        return found

    def _lookup_keys(self, entries: list[_Entry], found: dict[str, list[dict]]) -> None:
        assert self.key_field is not None
        owners: dict[str, list[str]] = {}  # normalized key -> folded keys of the entries
        for entry in entries:
            owners.setdefault(normal_key(entry.key), []).append(fold(entry.key))
        try:
            queries = in_clause_queries(
                self.select, self.key_field, list(owners), api_path=self.query_path, order_by=LOOKUP_ORDER
            )
        except ValueError:
            return  # a key too long for a query is too long for key_field: no record holds it
        for soql in queries:
            for record in self.client.query_all(soql):
                value = _get(record, self.key_field)
                for folded in owners.get(fold(value), ()) if isinstance(value, str) else ():
                    records = found.setdefault(folded, [])
                    if all(r.get("Id") != record.get("Id") for r in records):
                        records.append(record)

    # -- record bodies -----------------------------------------------------------------------------

    def create_body(self, entry: _Entry) -> dict:
        record = _create_record(self.match_field, entry)
        if self.key_field:
            _put(record, self.key_field, normal_key(entry.key))
        if self.times_field:
            times = {
                k: entry.times[k.lower()]
                for k in record
                if entry.times.get(k.lower()) and _has(entry.fields, k)
            }
            if times:
                _put(record, self.times_field, _times_json(times, self.times_length))
        return record

    def update_body(self, entry: _Entry, record: Mapping[str, Any]) -> tuple[dict, tuple[str, ...], bool]:
        """(fields to send, stale fields, whether key_field was added) for updating `record`; the
        fields are empty when every one of them is stale."""
        fields = {k: v for k, v in entry.fields.items() if k.lower() != "id"}
        stale: list[str] = []
        if self.times_field:
            raw = _get(record, self.times_field)
            stored = self.stored_times(raw)
            fresh = {}
            for name, value in fields.items():
                # Equal times write: replaying the event that set the value changes nothing.
                if stored.get(name.lower(), ("", ""))[1] > entry.times.get(name.lower(), ""):
                    stale.append(name)
                else:
                    fresh[name] = value
            if not fresh:
                return {}, tuple(stale), False
            fields = fresh
            merged = dict(stored)
            for name in fresh:
                when = entry.times.get(name.lower(), "")
                if when:  # not stale, so at least as new as the stored time
                    merged[name.lower()] = (name, when)
            text = _times_json(dict(merged.values()), self.times_length) if merged else ""
            if text != (raw or ""):
                _put(fields, self.times_field, text)
        key_added = False
        if self.key_field and not _get(record, self.key_field):
            # Someone else created it: claiming the key makes a concurrent create of it collide.
            _put(fields, self.key_field, normal_key(entry.key))
            key_added = True
        return fields, tuple(stale), key_added

    def stored_times(self, raw: Any) -> dict[str, tuple[str, str]]:
        """The times field's value as lower-cased field name -> (field name, time); {} if unreadable."""
        if raw is None or raw == "":
            return {}
        try:
            data = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.unreadable_times += 1
            return {}
        out = {}
        for name, when in data.items():
            if isinstance(when, str) and _TIME.match(when):
                out[str(name).lower()] = (str(name), when)
            else:
                self.unreadable_times += 1
        return out

    # -- writes ------------------------------------------------------------------------------------

    def write(
        self,
        call: Callable[[str, list[dict]], list[SaveResult]],
        records: dict[str, dict],
        look_up_before_resending: bool = False,
    ) -> "Written":
        return write_collections(self.client, self.sobject, call, records, look_up_before_resending)


def write_collections(
    client: SalesforceClient,
    sobject: str,
    call: Callable[[str, list[dict]], list[SaveResult]],
    records: dict[str, dict],
    look_up_before_resending: bool = False,
) -> "Written":
    """Writes `records` (key -> record) in collections of 200 through `call` (client.create_many, ...),
    retrying records that fail with a retryable code such as UNABLE_TO_LOCK_ROW (a record that failed was
    not written). With `look_up_before_resending` (creates), a call that may have been applied is reported
    in `maybe_applied` instead of failing. The daily API limit stops the write: what is left fails with it.
    """
    written = Written()
    keys = list(records)
    for start in range(0, len(keys), COLLECTION_SIZE):
        todo = keys[start : start + COLLECTION_SIZE]
        for attempt in range(LOCK_RETRIES + 1):
            try:
                results = call(sobject, [records[k] for k in todo])
            except TransientError as exc:
                for k in todo:
                    if exc.maybe_applied and look_up_before_resending:
                        written.maybe_applied[k] = exc
                    else:
                        written.failed[k] = (exc.error_code, exc.message, True)
                break
            except ApiLimitExceeded as exc:  # ApiUsageReserved too: same handling, its own code
                # Keep what was written so far; nothing after this can be sent today.
                written.stopped = BatchStopped(exc.error_code, exc.message, True)
                for k in todo + keys[start + COLLECTION_SIZE :]:
                    written.failed[k] = (exc.error_code, exc.message, True)
                return written
            except SalesforceApiError as exc:
                for k in todo:
                    written.failed[k] = (exc.error_code, exc.message, False)
                break
            again = []
            for k, result in zip(todo, results, strict=True):
                if result.success:
                    written.ok[k] = result
                elif is_retryable(result.error_code) and attempt < LOCK_RETRIES:
                    again.append(k)
                else:
                    code = result.error_code or "UNKNOWN_EXCEPTION"
                    written.failed[k] = (code, result.message or "", is_retryable(code))
            if not again:
                break
            client.back_off(attempt)
            todo = again
    return written


@dataclass
class Written:
    """What became of each record of a write, by key."""

    ok: dict[str, SaveResult] = field(default_factory=dict)
    failed: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # code, message, retryable
    maybe_applied: dict[str, TransientError] = field(default_factory=dict)  # call failed mid-flight
    stopped: "BatchStopped | None" = None  # the daily API limit ran out: send nothing more


def upsert_by_key(
    client: SalesforceClient,
    sobject: str,
    match_field: str,
    items: list[UpsertItem],
    skip_field: str | None = None,
    key_field: str | None = None,
    times_field: str | None = None,
    redirect_field: str | None = None,
) -> list[UpsertOutcome]:
    """Creates or updates one record per item, matched on `match_field` = item.key (ignoring case).

    One outcome per item, in item order. A lookup (IN list, newest first) finds existing records;
    when several match, the most recently modified one that `skip_field` does not exclude is updated
    (`ambiguous`); when every match has `skip_field` true (a converted Lead) the item is skipped.
    Updates send `fields` only; creates send `fields`, match_field = key and the create_defaults that
    `fields` lacks. A create call that fails in a way that may have written records is never resent
    blindly: the keys are looked up again first, so nothing is created twice.

    `key_field` (a text field marked External ID and Unique, case-insensitive) receives the
    normalized key, fold(key.strip()), on create, and on update when the record lacks it: Salesforce
    then refuses a second writer's create of the same key (DUPLICATE_VALUE), and that writer looks the
    key up again and updates the record instead, so concurrent jobs neither duplicate nor lose writes.
    If another record already holds the key, the update is made without it and is `ambiguous`.

    `times_field` (a Long Text Area) holds {"Field": "event time", ...} as JSON. A field whose stored
    time is newer than item.field_times says is not written (`stale_fields`), so replaying old events
    never reverts newer values; the times of what is written are merged in by the same call.

    `redirect_field` (with skip_field: Lead.ConvertedContactId) is read with the lookup, and a skipped
    item's outcome carries its value as `redirect_id`, the record the match was converted to.

    Pass key_field and times_field only when the org has them (docs/org-setup.md); upsert_by_key adds
    their values itself. Without them it behaves as before they existed.

    Failures of the whole batch (daily API limit, retries exhausted, a query Salesforce rejects)
    become "failed" outcomes with Salesforce's code and `retryable`; only SalesforceLoginError is
    raised, because no batch can succeed until the credentials are fixed.
    """
    run = _Upsert(client, sobject, match_field, skip_field, key_field, times_field, redirect_field)
    return run_upsert(run, items)


def run_upsert(run: "_Upsert", items: list[UpsertItem]) -> list[UpsertOutcome]:
    """upsert_by_key's work with a prepared `run` (salesforce/upsert.py's own, or a subclass such as the
    Bulk writer's, whose lookups and writes go another way); the rules and outcomes are the same."""
    sobject, match_field, skip_field = run.sobject, run.match_field, run.skip_field
    key_field, times_field, client = run.key_field, run.times_field, run.client
    optional = (skip_field, key_field, times_field, run.redirect_field)
    for name in (sobject, match_field, *(f or "Id" for f in optional)):
        if not _NAME.match(name):
            raise ValueError(f"not a Salesforce API name: {name!r}")
    own = [f.lower() for f in (key_field, times_field) if f]
    if len(set(own)) != len(own) or set(own) & {match_field.lower(), (skip_field or "").lower()}:
        raise ValueError("key_field and times_field must be two fields of their own, not the match field")
    if times_field:
        for item in items:
            for name, when in item.field_times.items():
                if when and not (isinstance(when, str) and _TIME.match(when)):
                    raise ValueError(
                        f"field_times[{name!r}] must be 'YYYY-MM-DDTHH:MM:SS.mmmZ' (UTC) or '', got {when!r}"
                    )
    entries: dict[str, _Entry] = {}
    item_entry: list[_Entry | None] = []
    for item in items:
        if not item.key:
            item_entry.append(None)
            continue
        folded = fold(item.key)
        entry = entries.get(folded)
        fields = {k: v for k, v in item.fields.items() if k.lower() not in own} if own else dict(item.fields)
        times = {k.lower(): v for k, v in item.field_times.items() if v} if times_field else {}
        if entry is None:
            entries[folded] = entry = _Entry(item.key, fields, dict(item.create_defaults), times)
        elif times_field:
            # The newer event's value wins field by field; at equal times, the later item's.
            newer = {
                k: v for k, v in fields.items() if times.get(k.lower(), "") >= entry.times.get(k.lower(), "")
            }
            entry.fields = _merged(entry.fields, newer)
            entry.times.update({k.lower(): times[k.lower()] for k in newer if k.lower() in times})
            entry.create_defaults = _merged(entry.create_defaults, item.create_defaults)
        else:
            # The caller merges ops per key; should two still arrive, the later one's values win.
            entry.fields = _merged(entry.fields, fields)
            entry.create_defaults = _merged(entry.create_defaults, item.create_defaults)
        item_entry.append(entry)

    _reject_unqueryable(run, entries)
    pending = [e for e in entries.values() if e.outcome is None]
    try:
        if times_field and pending:
            run.times_length = _field_length(client, sobject, times_field)
        _run_rounds(run, pending)
    except BatchStopped as stop:
        for entry in entries.values():
            if entry.outcome is None:
                entry.outcome = UpsertOutcome(
                    entry.key, FAILED, None, stop.code, stop.message, stop.retryable
                )
    if run.unreadable_times:
        log.warning(
            "%d %s value(s) of %s were not a JSON object of field times; read as no times",
            run.unreadable_times,
            sobject,
            times_field,
        )

    outcomes = []
    for item, entry in zip(items, item_entry, strict=True):
        if entry is None:
            outcomes.append(
                UpsertOutcome(item.key, FAILED, None, "MISSING_KEY", f"no {match_field} to match on")
            )
            continue
        assert entry.outcome is not None
        outcomes.append(
            entry.outcome if entry.outcome.key == item.key else replace(entry.outcome, key=item.key)
        )
    return outcomes


def _reject_unqueryable(run: _Upsert, entries: dict[str, _Entry]) -> None:
    """Fails keys too long to fit in a lookup query; no record can hold them anyway."""
    longest = max((len(e.key.encode("utf-8", "surrogatepass")) for e in entries.values()), default=0)
    try:
        # If the costliest key of that many bytes fits, every key does: a ' is escaped (\\') and each
        # of those two characters URL-encoded (%5C%27), 6 bytes for one; other characters cost less.
        run.queries([_Entry("'" * longest, {}, {})])
        return
    except ValueError:
        pass
    for entry in entries.values():
        try:
            run.queries([entry])
        except ValueError as exc:
            entry.outcome = UpsertOutcome(entry.key, FAILED, None, "KEY_TOO_LONG", str(exc))


def _run_rounds(run: _Upsert, pending: list[_Entry]) -> None:
    """Looks `pending` up and writes it; keys whose create call may have been applied, or was refused
    because another writer created the key meanwhile, go round again."""
    client = run.client
    round_no = 0
    while pending:
        pending, last_error = _one_round(run, pending)
        if not pending:
            return
        if round_no >= client.settings.max_retries:
            for entry in pending:
                assert entry.retry_error is not None
                entry.outcome = UpsertOutcome(entry.key, FAILED, None, *entry.retry_error, True)
            return
        # A key another writer created is there to be found at once; a failed call needs a pause.
        if last_error is not None:
            log.warning(
                "create call failed (%s); looking the keys up again before retrying", last_error.error_code
            )
            client.back_off(round_no)
        round_no += 1


def _one_round(run: _Upsert, pending: list[_Entry]) -> tuple[list[_Entry], TransientError | None]:
    try:
        found = run.lookup(pending, [e for e in pending if e.collided])
    except (ApiLimitExceeded, TransientError) as exc:
        raise BatchStopped(exc.error_code, exc.message, True) from None
    except SalesforceApiError as exc:
        raise BatchStopped(exc.error_code, exc.message, False) from None

    by_key = {fold(e.key): e for e in pending}
    updates: dict[str, dict] = {}
    targets: dict[str, tuple[str, bool]] = {}  # folded key -> (record id, ambiguous)
    stale: dict[str, tuple[str, ...]] = {}
    key_added: set[str] = set()
    creates: dict[str, dict] = {}
    for folded, entry in by_key.items():
        matches = found.get(folded, [])
        maybe_applied, entry.maybe_applied = entry.maybe_applied, False
        if not matches:
            if entry.collided:
                # The record holding the key is not one this user can see, or the duplicate was of
                # another unique field: a create would be refused again.
                assert entry.retry_error is not None
                entry.outcome = UpsertOutcome(entry.key, FAILED, None, *entry.retry_error, False)
            else:
                creates[folded] = run.create_body(entry)
            continue
        if maybe_applied:
            entry.created_by_us = True
        open_matches = [m for m in matches if not (run.skip_field and _get(m, run.skip_field))]
        ambiguous = len(matches) > 1
        if not open_matches:
            redirect = _get(matches[0], run.redirect_field) if run.redirect_field else None
            entry.outcome = UpsertOutcome(
                entry.key,
                SKIPPED_CONVERTED,
                matches[0].get("Id"),
                ambiguous=ambiguous,
                redirect_id=redirect if isinstance(redirect, str) and redirect else None,
            )
            continue
        target = _target(run, entry, open_matches)
        targets[folded] = (target["Id"], ambiguous)
        if not entry.fields:
            entry.outcome = _updated(entry, *targets[folded])
            continue
        fields, stale[folded], added = run.update_body(entry, target)
        if not fields:
            entry.outcome = _updated(entry, *targets[folded], stale[folded])
            continue
        if added:
            key_added.add(folded)
        updates[folded] = {"Id": target["Id"], **fields}

    written = run.write(run.client.update_many, updates)
    without_key: dict[str, dict] = {}
    for folded, (code, _, _) in list(written.failed.items()):
        if code == DUPLICATE_VALUE and folded in key_added:
            # Another record holds the key already: update this one without claiming it.
            del written.failed[folded]
            without_key[folded] = {k: v for k, v in updates[folded].items() if k != run.key_field}
            targets[folded] = (targets[folded][0], True)
    _record_updates(by_key, targets, stale, written)
    if without_key:
        _record_updates(by_key, targets, stale, run.write(run.client.update_many, without_key))

    written = run.write(run.client.create_many, creates, look_up_before_resending=True)
    for folded, result in written.ok.items():
        by_key[folded].outcome = UpsertOutcome(by_key[folded].key, CREATED, result.id)
    again = []
    for folded, (code, message, retryable) in written.failed.items():
        entry = by_key[folded]
        if run.key_field and code == DUPLICATE_VALUE:
            # Another writer created the key since the lookup: find its record and update it.
            entry.collided, entry.retry_error = True, (code, message)
            again.append(entry)
        else:
            entry.outcome = UpsertOutcome(entry.key, FAILED, None, code, message, retryable)
    if written.stopped:
        raise written.stopped
    for folded, exc in written.maybe_applied.items():
        entry = by_key[folded]
        entry.maybe_applied, entry.retry_error = True, (exc.error_code, exc.message)
        again.append(entry)
    last_error = next(iter(written.maybe_applied.values()), None)
    return again, last_error


def _record_updates(
    by_key: dict[str, _Entry],
    targets: dict[str, tuple[str, bool]],
    stale: dict[str, tuple[str, ...]],
    written: "Written",
) -> None:
    for folded in written.ok:
        by_key[folded].outcome = _updated(by_key[folded], *targets[folded], stale[folded])
    for folded, (code, message, retryable) in written.failed.items():
        entry = by_key[folded]
        entry.outcome = UpsertOutcome(entry.key, FAILED, targets[folded][0], code, message, retryable)
    if written.stopped:
        raise written.stopped


def _target(run: _Upsert, entry: _Entry, open_matches: list[dict]) -> dict:
    """The record to update: the one holding the key in key_field, else the most recently modified."""
    if run.key_field:
        key = normal_key(entry.key)
        for record in open_matches:
            value = _get(record, run.key_field)
            if isinstance(value, str) and fold(value) == key:
                return record
    return open_matches[0]


def _create_record(match_field: str, entry: _Entry) -> dict:
    record = dict(entry.fields)
    for name in [k for k in record if len(k) == 2 and k.lower() == "id"]:
        del record[name]
    if not _has(record, match_field):
        record[match_field] = entry.key
    for name, value in entry.create_defaults.items():
        if not _has(record, name):
            record[name] = value
    return record


def _updated(entry: _Entry, record_id: str, ambiguous: bool, stale: tuple[str, ...] = ()) -> UpsertOutcome:
    # Found only after our own create call failed mid-flight: the record is ours, just created.
    action = CREATED if entry.created_by_us else UPDATED
    return UpsertOutcome(entry.key, action, record_id, ambiguous=ambiguous, stale_fields=stale)


def normal_key(key: str) -> str:
    """The key as key_field holds it: trimmed and folded, so that every writer spells it alike."""
    return fold(key.strip())


def _put(record: dict, name: str, value: Any) -> None:
    """Sets `name`, replacing any spelling of it that differs only in case."""
    for k in [k for k in record if k.lower() == name.lower()]:
        del record[k]
    record[name] = value


def _times_json(times: Mapping[str, str], limit: int) -> str:
    """Compact JSON of field -> time, dropping the oldest entries until it fits in `limit` characters."""
    kept = dict(times)
    while True:
        text = json.dumps(kept, separators=(",", ":"), sort_keys=True)
        if len(text) <= limit or not kept:
            return text
        del kept[min(kept, key=lambda name: (kept[name], name))]


def _field_length(client: SalesforceClient, sobject: str, name: str) -> int:
    """The field's length from describe (cached by the client), or the documented length."""
    try:
        meta = client.describe(sobject).get(name)
    except (ApiLimitExceeded, TransientError, SalesforceApiError):
        return TIMES_FIELD_LENGTH
    return meta.length if meta is not None and meta.length > 0 else TIMES_FIELD_LENGTH
