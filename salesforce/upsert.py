"""Create-or-update by a match key: one IN-list lookup per batch, then sObject Collections writes."""

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

CREATED = "created"
UPDATED = "updated"
SKIPPED_CONVERTED = "skipped_converted"
FAILED = "failed"


@dataclass(frozen=True)
class UpsertItem:
    key: str  # match value (e.g. email); compared case-insensitively
    fields: dict  # written on create and update
    create_defaults: dict = field(default_factory=dict)  # only on create, only where `fields` lacks the field


@dataclass(frozen=True)
class UpsertOutcome:
    key: str
    action: str  # "created" | "updated" | "skipped_converted" | "failed"
    record_id: str | None
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False
    ambiguous: bool = False  # several records matched; the most recently modified one was updated


@dataclass
class _Entry:
    """One distinct key of the batch, with the fields of every item that carried it merged."""

    key: str
    fields: dict
    create_defaults: dict
    outcome: UpsertOutcome | None = None
    created_by_us: bool = False  # not found at first, found after a create call failed ambiguously


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
    lowered = name.lower()
    return any(k.lower() == lowered for k in fields)


class _BatchStopped(Exception):
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
    ):
        self.client = client
        self.sobject = sobject
        self.match_field = match_field
        self.skip_field = skip_field
        fields = ["Id", match_field, "LastModifiedDate"] + ([skip_field] if skip_field else [])
        self.select = f"SELECT {', '.join(fields)} FROM {sobject}"
        self.query_path = f"/services/data/v{client.settings.api_version}/query/?q="

    # -- lookup ------------------------------------------------------------------------------------

    def queries(self, entries: list[_Entry]) -> list[str]:
        return in_clause_queries(
            self.select,
            self.match_field,
            [e.key for e in entries],
            api_path=self.query_path,
            order_by=LOOKUP_ORDER,
        )

    def lookup(self, entries: list[_Entry]) -> dict[str, list[dict]]:
        """Matching records by folded key, most recently modified first."""
        found: dict[str, list[dict]] = {}
        for soql in self.queries(entries):
            for record in self.client.query_all(soql):
                value = _get(record, self.match_field)
                if isinstance(value, str):
                    found.setdefault(fold(value), []).append(record)
        for records in found.values():
            # The server orders each query; sorting again keeps the rule true across split queries.
            records.sort(
                key=lambda r: (str(_get(r, "LastModifiedDate") or ""), str(r.get("Id"))), reverse=True
            )
        return found

    # -- writes ------------------------------------------------------------------------------------

    def write(
        self,
        call: Callable[[str, list[dict]], list[SaveResult]],
        records: dict[str, dict],
        look_up_before_resending: bool = False,
    ) -> "_Written":
        """Writes `records` (folded key -> record) in collections of 200, retrying records that fail
        with a retryable code such as UNABLE_TO_LOCK_ROW (a record that failed was not written).
        With `look_up_before_resending` (creates), a call that may have been applied is reported in
        `maybe_applied` instead of failing."""
        written = _Written()
        keys = list(records)
        for start in range(0, len(keys), COLLECTION_SIZE):
            todo = keys[start : start + COLLECTION_SIZE]
            for attempt in range(LOCK_RETRIES + 1):
                try:
                    results = call(self.sobject, [records[k] for k in todo])
                except TransientError as exc:
                    for k in todo:
                        if exc.maybe_applied and look_up_before_resending:
                            written.maybe_applied[k] = exc
                        else:
                            written.failed[k] = (exc.error_code, exc.message, True)
                    break
                except ApiLimitExceeded as exc:  # ApiUsageReserved too: same handling, its own code
                    # Keep what was written so far; nothing after this can be sent today.
                    written.stopped = _BatchStopped(exc.error_code, exc.message, True)
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
                self.client.back_off(attempt)
                todo = again
        return written


@dataclass
class _Written:
    """What became of each record of a write, by folded key."""

    ok: dict[str, SaveResult] = field(default_factory=dict)
    failed: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # code, message, retryable
    maybe_applied: dict[str, TransientError] = field(default_factory=dict)  # call failed mid-flight
    stopped: "_BatchStopped | None" = None  # the daily API limit ran out: send nothing more


def upsert_by_key(
    client: SalesforceClient,
    sobject: str,
    match_field: str,
    items: list[UpsertItem],
    skip_field: str | None = None,
) -> list[UpsertOutcome]:
    """Creates or updates one record per item, matched on `match_field` = item.key (ignoring case).

    One outcome per item, in item order. A lookup (IN list, newest first) finds existing records;
    when several match, the most recently modified one that `skip_field` does not exclude is updated
    (`ambiguous`); when every match has `skip_field` true (a converted Lead) the item is skipped.
    Updates send `fields` only; creates send `fields`, match_field = key and the create_defaults that
    `fields` lacks. A create call that fails in a way that may have written records is never resent
    blindly: the keys are looked up again first, so nothing is created twice.

    Failures of the whole batch (daily API limit, retries exhausted, a query Salesforce rejects)
    become "failed" outcomes with Salesforce's code and `retryable`; only SalesforceLoginError is
    raised, because no batch can succeed until the credentials are fixed.
    """
    for name in (sobject, match_field, skip_field or "Id"):
        if not _NAME.match(name):
            raise ValueError(f"not a Salesforce API name: {name!r}")
    run = _Upsert(client, sobject, match_field, skip_field)
    entries: dict[str, _Entry] = {}
    item_entry: list[_Entry | None] = []
    for item in items:
        if not item.key:
            item_entry.append(None)
            continue
        folded = fold(item.key)
        entry = entries.get(folded)
        if entry is None:
            entries[folded] = entry = _Entry(item.key, dict(item.fields), dict(item.create_defaults))
        else:
            # The caller merges ops per key; should two still arrive, the later one's values win.
            entry.fields = _merged(entry.fields, item.fields)
            entry.create_defaults = _merged(entry.create_defaults, item.create_defaults)
        item_entry.append(entry)

    _reject_unqueryable(run, entries)
    try:
        _run_rounds(run, [e for e in entries.values() if e.outcome is None])
    except _BatchStopped as stop:
        for entry in entries.values():
            if entry.outcome is None:
                entry.outcome = UpsertOutcome(
                    entry.key, FAILED, None, stop.code, stop.message, stop.retryable
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
    try:
        run.queries(list(entries.values()))
        return
    except ValueError:
        pass
    for entry in entries.values():
        try:
            run.queries([entry])
        except ValueError as exc:
            entry.outcome = UpsertOutcome(entry.key, FAILED, None, "KEY_TOO_LONG", str(exc))


def _run_rounds(run: _Upsert, pending: list[_Entry]) -> None:
    """Looks `pending` up and writes it; keys whose create call may have been applied go round again."""
    client = run.client
    round_no = 0
    while pending:
        pending, last_error = _one_round(run, pending, first_round=round_no == 0)
        if not pending:
            return
        assert last_error is not None
        if round_no >= client.settings.max_retries:
            for entry in pending:
                entry.outcome = UpsertOutcome(
                    entry.key, FAILED, None, last_error.error_code, last_error.message, True
                )
            return
        log.warning(
            "create call failed (%s); looking the keys up again before retrying", last_error.error_code
        )
        client.back_off(round_no)
        round_no += 1


def _one_round(
    run: _Upsert, pending: list[_Entry], first_round: bool
) -> tuple[list[_Entry], TransientError | None]:
    try:
        found = run.lookup(pending)
    except (ApiLimitExceeded, TransientError) as exc:
        raise _BatchStopped(exc.error_code, exc.message, True) from None
    except SalesforceApiError as exc:
        raise _BatchStopped(exc.error_code, exc.message, False) from None

    by_key = {fold(e.key): e for e in pending}
    updates: dict[str, dict] = {}
    targets: dict[str, tuple[str, bool]] = {}  # folded key -> (record id, ambiguous)
    creates: dict[str, dict] = {}
    for folded, entry in by_key.items():
        matches = found.get(folded, [])
        if not matches:
            creates[folded] = _create_record(run.match_field, entry)
            continue
        if not first_round:
            entry.created_by_us = True
        open_matches = [m for m in matches if not (run.skip_field and _get(m, run.skip_field))]
        ambiguous = len(matches) > 1
        if not open_matches:
            entry.outcome = UpsertOutcome(
                entry.key, SKIPPED_CONVERTED, matches[0].get("Id"), ambiguous=ambiguous
            )
            continue
        targets[folded] = (open_matches[0]["Id"], ambiguous)
        if entry.fields:
            updates[folded] = {
                "Id": targets[folded][0],
                **{k: v for k, v in entry.fields.items() if k.lower() != "id"},
            }
        else:
            entry.outcome = _updated(entry, *targets[folded])

    written = run.write(run.client.update_many, updates)
    for folded in written.ok:
        by_key[folded].outcome = _updated(by_key[folded], *targets[folded])
    for folded, (code, message, retryable) in written.failed.items():
        entry = by_key[folded]
        entry.outcome = UpsertOutcome(entry.key, FAILED, targets[folded][0], code, message, retryable)
    if written.stopped:
        raise written.stopped

    written = run.write(run.client.create_many, creates, look_up_before_resending=True)
    for folded, result in written.ok.items():
        by_key[folded].outcome = UpsertOutcome(by_key[folded].key, CREATED, result.id)
    for folded, (code, message, retryable) in written.failed.items():
        entry = by_key[folded]
        entry.outcome = UpsertOutcome(entry.key, FAILED, None, code, message, retryable)
    if written.stopped:
        raise written.stopped
    again = [by_key[k] for k in written.maybe_applied]
    last_error = next(iter(written.maybe_applied.values()), None)
    return again, last_error


def _create_record(match_field: str, entry: _Entry) -> dict:
    record = {k: v for k, v in entry.fields.items() if k.lower() != "id"}
    if not _has(record, match_field):
        record[match_field] = entry.key
    for name, value in entry.create_defaults.items():
        if not _has(record, name):
            record[name] = value
    return record


def _updated(entry: _Entry, record_id: str, ambiguous: bool) -> UpsertOutcome:
    # Found only after our own create call failed mid-flight: the record is ours, just created.
    action = CREATED if entry.created_by_us else UPDATED
    return UpsertOutcome(entry.key, action, record_id, ambiguous=ambiguous)
