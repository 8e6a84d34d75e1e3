"""Writing one batch of merged records through a client: fitting, the upsert, waiting for the allocation.

No Beam here: a writer DoFn runs BatchWriter.write on worker threads and turns each BatchReport into
metrics and outputs on its own thread (Beam's metrics belong to the bundle's thread).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from salesforce.errors import (
    ApiLimitExceeded,
    ApiUsageReserved,
    SalesforceApiError,
    SalesforceLoginError,
    TransientError,
)
from salesforce.upsert import UpsertItem, UpsertOutcome, upsert_by_key
from schemas.fields import ObjectMeta
from schemas.records import MergedOp
from transforms import fitting

# Fields of the org set-up in docs/org-setup.md: an External ID + Unique text field holding the
# normalized match key (creates become safe against a concurrent writer), and a long text area holding
# each field's last event time (replays and backfills never revert newer values). Events never write them.
KEY_FIELD = "Beamforce_Key__c"
TIMES_FIELD = "Beamforce_Field_Times__c"
RESERVED_FIELDS = frozenset({KEY_FIELD.lower(), TIMES_FIELD.lower()})

# Salesforce refuses to update a converted Lead; the upsert skips it instead of failing the batch.
SKIP_FIELDS = {"Lead": "IsConverted"}

# Failures that mean "the org's API allocation is used up (or reserved for other integrations)".
LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "API_USAGE_RESERVED"})
ON_API_LIMIT = ("wait", "dead_letter")
# While waiting for the org's API allocation, its limits are read again after this long, doubling up to
# MAX_LIMIT_POLL_SECONDS: a bounded interval, and few calls spent asking.
LIMIT_POLL_SECONDS = 5.0
MAX_LIMIT_POLL_SECONDS = 300.0

_log = logging.getLogger(__name__)


class WrittenRecord(NamedTuple):
    """One record created or updated, and how many events went into it."""

    sobject: str
    match_value: str
    action: str  # "created" | "updated"
    record_id: str | None
    events: int
    ambiguous: bool = False


class Failure(NamedTuple):
    """Why one record was not written: the reason (a pipeline reason or Salesforce's code) and message."""

    reason: str
    message: str
    retryable: bool = True


class FittedItem(NamedTuple):
    item: UpsertItem | None  # None when the record cannot be written (see `error`)
    notes: dict[str, tuple[str, ...]]  # counter kind -> field names (trimmed, dropped_unknown, ...)
    error: tuple[str, str] | None = None  # (reason, message) of a record that must not be sent


@dataclass
class BatchReport:
    """What became of a batch, and what the writer should count for it."""

    results: list[tuple[MergedOp, WrittenRecord | Failure]] = field(default_factory=list)
    field_notes: list[tuple[str, dict[str, tuple[str, ...]]]] = field(
        default_factory=list
    )  # (sObject, notes)
    stale_fields: int = 0
    ambiguous: list[str] = field(default_factory=list)  # sObject of each record several records matched
    setup_missing: set[str] = field(default_factory=set)  # "Object.Field" of docs/org-setup.md missing
    limit_waited_seconds: float = 0.0


def fit_item(op: MergedOp, meta: ObjectMeta) -> FittedItem:
    """Fits one merged operation to the org's fields, for update and for create.

    `fields` are what an update may write; create-only values (the op's create_defaults and any
    field that is createable but not updateable) go to `create_defaults`, which the upsert only
    writes on create and never over a value in `fields`. A create default fills a field only when
    fitting left it without a usable value: a Company that is a list is dropped, and 'n/a' still
    gives Salesforce the value it requires. A match value longer than its field gives no item but an
    `error`: trimmed, it would write a record that no later lookup finds.
    """
    too_long = fitting.match_value_too_long(op.match_field, op.match_value, meta)
    if too_long:
        return FittedItem(None, {}, ("STRING_TOO_LONG", f"{op.sobject}.{too_long}"))
    wanted = {k: v for k, v in op.fields.items() if k.lower() not in RESERVED_FIELDS}
    reserved = tuple(k for k in op.fields if k.lower() in RESERVED_FIELDS)
    # Converted and trimmed once; then split by what an update and a create may write.
    fitted = fitting.fit_fields(wanted, meta, for_create=None)
    for_update: dict[str, Any] = {}
    create_only: dict[str, Any] = {}
    for name, value in fitted.fields.items():
        meta_field = meta.get(name)
        if meta_field.updateable:
            for_update[name] = value
        elif meta_field.createable:
            create_only[name] = value
    fitted_names = {k.lower() for k in fitted.fields if meta.get(k).createable}
    defaults = fitting.fit_fields(
        {k: v for k, v in op.create_defaults.items() if k.lower() not in fitted_names}, meta, for_create=True
    )
    create_only.update(defaults.fields)
    notes = {
        kind: tuple(dict.fromkeys(getattr(fitted, kind)))
        for kind in ("trimmed", "converted", "dropped_type", "dropped_unknown")
    }
    # A field is only reported as read-only when neither a create nor an update may write it.
    notes["dropped_readonly"] = reserved + fitted.dropped_readonly
    times = {}
    for name, time_ in op.field_times.items():
        meta_field = meta.get(name)
        if meta_field is not None:
            times[meta_field.name] = time_
    return FittedItem(UpsertItem(op.match_value, for_update, create_only, field_times=times), notes)


def org_setup_fields(meta: ObjectMeta) -> tuple[str | None, str | None]:
    """The key and times fields of docs/org-setup.md as the org names them, or None where missing.

    The key field only counts when it is an External ID and Unique: without Salesforce's uniqueness
    it would protect nothing.
    """
    key = meta.get(KEY_FIELD)
    times = meta.get(TIMES_FIELD)
    key_name = key.name if key is not None and key.external_id and key.unique else None
    times_name = times.name if times is not None and times.createable and times.updateable else None
    return key_name, times_name


def all_failed(ops: list[MergedOp], reason: str, message: str, retryable: bool = True):
    # Nothing in the batch was written (or it was, and a replay finds and updates it, never creating
    # twice): every event is handed back.
    failure = Failure(reason, message, retryable)
    return [(op, failure) for op in ops]


class BatchWriter:
    """Writes batches through one client (shared by the threads that call write(); the client is
    thread-safe). `on_api_limit` "wait" holds records refused for the org's API allocation and tries
    them again once its limits say calls are left; "dead_letter" hands them back as failures."""

    def __init__(
        self,
        client: Any,
        on_api_limit: str = "dead_letter",
        limit_poll_seconds: float = LIMIT_POLL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        batch_deadline_seconds: float | None = None,
    ) -> None:
        if on_api_limit not in ON_API_LIMIT:
            raise ValueError(f"on_api_limit must be one of {', '.join(ON_API_LIMIT)}, not {on_api_limit!r}")
        self._client = client
        self._on_api_limit = on_api_limit
        self._limit_poll_seconds = limit_poll_seconds
        self._sleep = sleep
        self._deadline_seconds = batch_deadline_seconds
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        # Whether the client holds a session; a writer that could not log in tries again per batch.
        self.logged_in = False

    def write(self, batch: list[MergedOp]) -> BatchReport:
        report = BatchReport()
        by_match: dict[tuple[str, str], list[MergedOp]] = {}
        for op in batch:
            by_match.setdefault((op.sobject, op.match_field), []).append(op)
        for (sobject, match_field), ops in by_match.items():
            self._write_waiting(sobject, match_field, ops, report)
        return report

    def _write_waiting(
        self, sobject: str, match_field: str, ops: list[MergedOp], report: BatchReport
    ) -> None:
        pending = ops
        waited = 0
        while True:
            results = self._attempt(sobject, match_field, pending, report)
            if self._on_api_limit != "wait":
                report.results.extend(results)
                return
            held = []
            for op, result in results:
                if isinstance(result, Failure) and result.reason in LIMIT_CODES:
                    held.append(op)
                else:
                    report.results.append((op, result))
            if not held:
                return
            pending = held
            delay = min(self._limit_poll_seconds * (2 ** min(waited, 6)), MAX_LIMIT_POLL_SECONDS)
            waited += 1
            _log.warning(
                "the org's API allocation is used up (or reserved): holding %d records (the source keeps "
                "the rest), checking its limits again in %.0f s",
                len(held),
                delay,
            )
            self._sleep(delay)
            report.limit_waited_seconds += delay
            self._refresh_api_usage()

    def _refresh_api_usage(self) -> None:
        refresh = getattr(self._client, "refresh_api_usage", None)
        if refresh is None:
            return
        try:
            refresh()
        except Exception as e:  # still exhausted, or unreachable: the next attempt will tell
            _log.info("could not read the org's limits: %s", type(e).__name__)

    def _setup_fields(
        self, sobject: str, meta: ObjectMeta, report: BatchReport
    ) -> tuple[str | None, str | None]:
        key_field, times_field = org_setup_fields(meta)
        for wanted, found in ((KEY_FIELD, key_field), (TIMES_FIELD, times_field)):
            if found is not None:
                continue
            name = f"{sobject}.{wanted}"
            report.setup_missing.add(name)
            with self._lock:
                if name in self._warned:
                    continue
                self._warned.add(name)
            _log.warning(
                "%s is missing or not set up as docs/org-setup.md says: %s",
                name,
                "concurrent jobs may create duplicates"
                if wanted == KEY_FIELD
                else "a replay or backfill of older events may revert newer values",
            )
        return key_field, times_field

    def _attempt(
        self, sobject: str, match_field: str, ops: list[MergedOp], report: BatchReport
    ) -> list[tuple[MergedOp, WrittenRecord | Failure]]:
        """Writes `ops` (one sObject and match field): (op, WrittenRecord or Failure) for each op."""
        client = self._client
        if self._deadline_seconds is not None and hasattr(client, "deadline"):
            client.deadline = time.monotonic() + self._deadline_seconds
        try:
            if not self.logged_in:
                client.login()
                self.logged_in = True
            meta = client.describe(sobject)
            key_field, times_field = self._setup_fields(sobject, meta, report)
            fitted = [fit_item(op, meta) for op in ops]
            sendable = [(op, f) for op, f in zip(ops, fitted, strict=True) if f.item is not None]
            items = [f.item for _, f in sendable]
            outcomes = (
                upsert_by_key(
                    client,
                    sobject,
                    match_field,
                    items,
                    SKIP_FIELDS.get(sobject),
                    key_field=key_field,
                    times_field=times_field,
                )
                if items
                else []
            )
        # upsert_by_key turns the API limit (and the governor's ApiUsageReserved), exhausted retries
        # and refused calls into "failed" outcomes per record; it raises only SalesforceLoginError.
        # The other handlers are for describe() and its login.
        except SalesforceLoginError as e:
            self.logged_in = False
            return all_failed(ops, "login_failed", str(e))
        except ApiLimitExceeded as e:
            message = (
                e.message
                if isinstance(e, ApiUsageReserved)
                else f"The org's API request limit is exhausted: {e}"
            )
            return all_failed(ops, e.error_code, message)
        except TransientError as e:  # no metadata read earlier to fall back on
            return all_failed(ops, "transient_error", f"Salesforce did not answer in time: {e}")
        except SalesforceApiError as e:
            # E.g. the user may not read this object: no retry helps until the org is changed.
            return all_failed(ops, e.error_code, str(e), retryable=False)
        results: list[tuple[MergedOp, WrittenRecord | Failure]] = [
            (op, Failure(*f.error, retryable=False)) for op, f in zip(ops, fitted, strict=True) if f.error
        ]
        for (op, f), outcome in zip(sendable, outcomes, strict=True):
            if any(f.notes.values()):
                report.field_notes.append((sobject, f.notes))
            results.append((op, self._result_of(op, outcome, report)))
        return results

    @staticmethod
    def _result_of(op: MergedOp, outcome: UpsertOutcome, report: BatchReport) -> WrittenRecord | Failure:
        sobject = op.sobject
        if outcome.ambiguous:
            report.ambiguous.append(sobject)
        report.stale_fields += len(outcome.stale_fields)
        if outcome.action in ("created", "updated"):
            return WrittenRecord(
                sobject, op.match_value, outcome.action, outcome.record_id, op.events, outcome.ambiguous
            )
        if outcome.action == "skipped_converted":
            message = (
                f"The {sobject} {outcome.record_id} matching {op.match_field}={op.match_value!r} was "
                "converted; Salesforce refuses updates to converted Leads"
            )
            return Failure("lead_converted", message, retryable=False)
        reason = outcome.error_code or "UNKNOWN_EXCEPTION"
        message = outcome.message or "Salesforce rejected the record without a message"
        return Failure(reason, message, retryable=outcome.retryable)
