"""WriteToSalesforce: batches of merged operations created or updated, failures as dead letters."""

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials, CredentialsSource
from salesforce.errors import (
    ApiLimitExceeded,
    ApiUsageReserved,
    ConfigurationError,
    SalesforceApiError,
    SalesforceLoginError,
    TransientError,
)
from salesforce.upsert import UpsertItem, UpsertOutcome, upsert_by_key
from schemas.dead_letter import UndeliveredEvent
from schemas.fields import ObjectMeta
from schemas.records import MergedOp
from transforms import fitting, metrics
from transforms.result import Result

DEAD_LETTER = "dead_letter"
STAGE = "write"

# Fields of the org set-up in docs/org-setup.md: an External ID + Unique text field holding the
# normalized match key (creates become safe against a concurrent writer), and a long text area holding
# each field's last event time (replays and backfills never revert newer values). Events never write them.
KEY_FIELD = "Beamforce_Key__c"
TIMES_FIELD = "Beamforce_Field_Times__c"
RESERVED_FIELDS = frozenset({KEY_FIELD.lower(), TIMES_FIELD.lower()})

# Salesforce refuses to update a converted Lead; the upsert skips it instead of failing the batch.
SKIP_FIELDS = {"Lead": "IsConverted"}

ACTION_COUNTER = {"created": "create", "updated": "update"}

# Long runs log a progress line per writer at most this often.
PROGRESS_EVERY_SECONDS = 10.0
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


class FittedItem(NamedTuple):
    item: UpsertItem | None  # None when the record cannot be written (see `error`)
    notes: dict[str, tuple[str, ...]]  # counter kind -> field names (trimmed, dropped_unknown, ...)
    error: tuple[str, str] | None = None  # (reason, message) of a record that must not be sent


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
    for_update = fitting.fit_fields(wanted, meta, for_create=False)
    for_create = fitting.fit_fields(wanted, meta, for_create=True)
    fitted_names = {k.lower() for k in for_create.fields}
    defaults = fitting.fit_fields(
        {k: v for k, v in op.create_defaults.items() if k.lower() not in fitted_names}, meta, for_create=True
    )
    create_only = {k: v for k, v in for_create.fields.items() if k not in for_update.fields}
    create_only.update(defaults.fields)
    notes = {
        kind: tuple(dict.fromkeys(getattr(for_update, kind) + getattr(for_create, kind)))
        for kind in ("trimmed", "converted", "dropped_type", "dropped_unknown")
    }
    # A field is only worth reporting as read-only when neither a create nor an update may write it.
    notes["dropped_readonly"] = reserved + tuple(
        f for f in for_update.dropped_readonly if f in set(for_create.dropped_readonly)
    )
    times = {}
    for name, time_ in op.field_times.items():
        field = meta.get(name)
        if field is not None:
            times[field.name] = time_
    return FittedItem(UpsertItem(op.match_value, for_update.fields, create_only, field_times=times), notes)


def _undelivered(op: MergedOp, reason: str, message: str, retryable: bool) -> Iterable[Any]:
    for ref in op.refs:
        failure = UndeliveredEvent(ref, STAGE, reason, message, retryable)
        yield beam.pvalue.TaggedOutput(DEAD_LETTER, failure)


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


ClientFactory = Callable[[Credentials, ConnectionSettings], Any]


class _WriteBatch(beam.DoFn):
    def __init__(
        self,
        credentials: Credentials | CredentialsSource,
        settings: ConnectionSettings,
        client_factory: ClientFactory,
        on_api_limit: str,
        limit_poll_seconds: float,
        sleep: Callable[[float], None],
    ) -> None:
        self._credentials = credentials
        self._settings = settings
        self._client_factory = client_factory
        self._on_api_limit = on_api_limit
        self._limit_poll_seconds = limit_poll_seconds
        self._sleep = sleep
        self._client = None
        self._logged_in = False
        self._calls_reported = 0
        self._throttled_reported = 0
        self._progress = {"created": 0, "updated": 0, "dead-lettered": 0}
        self._last_progress = 0.0
        self._noted: dict[str, set[str]] = {}  # field note kind -> "Object.Field" names reported
        self._setup_warned: set[str] = set()
        self._setup_error = ""
        ns = metrics.NAMESPACE
        self.api_calls = Metrics.counter(ns, metrics.API_CALLS)
        # Like Beam's cumulativeThrottlingSeconds: time this writer waited for --max_calls_per_second.
        self.throttled_seconds = Metrics.counter(ns, metrics.THROTTLED_SECONDS)
        self.stale_fields = Metrics.counter(ns, metrics.STALE_FIELDS_SKIPPED)
        self.batch_sizes = Metrics.distribution(ns, metrics.WRITE_BATCH_SIZE)
        self.latency_ms = Metrics.distribution(ns, metrics.WRITE_BATCH_LATENCY_MS)
        self.field_notes = {
            kind: Metrics.counter(ns, metrics.field_note(kind)) for kind in metrics.FIELD_NOTE_KINDS
        }
        self.field_names = {
            kind: Metrics.string_set(ns, metrics.field_names(kind)) for kind in metrics.FIELD_NOTE_KINDS
        }
        self.setup_missing = Metrics.string_set(ns, metrics.ORG_SETUP_MISSING)
        self.limit_wait_seconds = Metrics.counter(ns, metrics.API_LIMIT_WAIT_SECONDS)

    def display_data(self) -> dict:
        # Credentials stay out on purpose: display data ends up in runner UIs and job graphs.
        return {
            "login_url": self._settings.login_url,
            "api_version": self._settings.api_version,
            "sandbox": self._settings.sandbox or "",
        }

    def setup(self) -> None:
        self._last_progress = time.monotonic()
        self._noted = {kind: set() for kind in metrics.FIELD_NOTE_KINDS}
        self._setup_warned = set()
        credentials = self._credentials
        if isinstance(credentials, CredentialsSource):
            # Read here, on the worker: the pickled DoFn carries where to find them, not the secrets.
            try:
                credentials = credentials.resolve()
            except ConfigurationError as e:
                # Every batch becomes a retryable dead letter saying why, instead of workers crashing.
                self._setup_error = str(e)
                _log.error("the writer cannot read the Salesforce credentials: %s", e)
                return
        self._client = self._client_factory(credentials, self._settings)
        self._calls_reported = self._client.api_calls
        self._throttled_reported = self._whole_throttled_seconds()
        try:
            self._client.login()
            self._logged_in = True
        except (SalesforceLoginError, TransientError) as e:  # what login() raises
            # The main checked the credentials before the run; if they fail now, every batch is
            # dead-lettered (retryable) rather than crashing the workers in a loop.
            _log.warning("Salesforce login failed in a writer, will retry per batch: %s", type(e).__name__)

    def teardown(self) -> None:
        client, self._client = self._client, None
        close = getattr(client, "close", None)
        if close is not None:
            close()

    def _whole_throttled_seconds(self) -> int:
        # Counters hold integers: report whole seconds of the running total, so that many short waits
        # still add up. A client from another factory may have no rate limit at all.
        return int(getattr(self._client, "throttled_seconds", 0.0))

    def _report_api_calls(self) -> None:
        # Counted in process(), not setup(): metrics are only collected inside a bundle, and the
        # login made in setup() must be counted too.
        if self._client is None:
            return
        calls = self._client.api_calls
        self.api_calls.inc(calls - self._calls_reported)
        self._calls_reported = calls
        throttled = self._whole_throttled_seconds()
        if throttled > self._throttled_reported:
            self.throttled_seconds.inc(throttled - self._throttled_reported)
            self._throttled_reported = throttled

    def process(self, batch: list[MergedOp]):
        self.batch_sizes.update(len(batch))
        by_match: dict[tuple[str, str], list[MergedOp]] = {}
        for op in batch:
            by_match.setdefault((op.sobject, op.match_field), []).append(op)
        for (sobject, match_field), ops in by_match.items():
            started = time.monotonic()
            for op, result in self._write_waiting(sobject, match_field, ops):
                for out in self._emit(op, result):
                    self._count_progress(out)
                    yield out
            self.latency_ms.update(int((time.monotonic() - started) * 1000))
        self._log_progress()

    def _write_waiting(self, sobject: str, match_field: str, ops: list[MergedOp]):
        """(op, WrittenRecord or _Failure) for every op; with on_api_limit "wait", ops refused for the
        org's API allocation are held (the bundle with them: the source keeps its backlog) and tried
        again once the org's limits say calls are left, instead of being handed back as dead letters."""
        pending = ops
        waited = 0
        while True:
            results = self._attempt(sobject, match_field, pending)
            if self._on_api_limit != "wait":
                yield from results
                return
            held = []
            for op, result in results:
                if isinstance(result, _Failure) and result.reason in LIMIT_CODES:
                    held.append(op)
                else:
                    yield op, result
            if not held:
                return
            pending = held
            delay = min(self._limit_poll_seconds * (2 ** min(waited, 6)), MAX_LIMIT_POLL_SECONDS)
            waited += 1
            _log.warning(
                "the org's API allocation is used up (or reserved): holding %d records, checking again in "
                "%.0f s",
                len(held),
                delay,
            )
            self._sleep(delay)
            self.limit_wait_seconds.inc(int(delay))
            self._refresh_api_usage()

    def _refresh_api_usage(self) -> None:
        refresh = getattr(self._client, "refresh_api_usage", None)
        if refresh is None:
            return
        try:
            refresh()
        except Exception as e:  # still exhausted, or unreachable: the next attempt will tell
            _log.info("could not read the org's limits: %s", type(e).__name__)
        finally:
            self._report_api_calls()

    def _count_progress(self, out: Any) -> None:
        if isinstance(out, WrittenRecord):
            self._progress[out.action] += 1
        else:
            self._progress["dead-lettered"] += 1

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            _log.info(
                "progress (this writer): %d records created, %d updated, %d events dead-lettered, "
                "%d API calls",
                self._progress["created"],
                self._progress["updated"],
                self._progress["dead-lettered"],
                self._calls_reported,
            )

    def _setup_fields(self, sobject: str, meta: ObjectMeta) -> tuple[str | None, str | None]:
        key_field, times_field = org_setup_fields(meta)
        for wanted, found in ((KEY_FIELD, key_field), (TIMES_FIELD, times_field)):
            name = f"{sobject}.{wanted}"
            if found is None:
                self.setup_missing.add(name)
                if name not in self._setup_warned:
                    self._setup_warned.add(name)
                    _log.warning(
                        "%s is missing or not set up as docs/org-setup.md says: %s",
                        name,
                        "concurrent jobs may create duplicates"
                        if wanted == KEY_FIELD
                        else "a replay or backfill of older events may revert newer values",
                    )
        return key_field, times_field

    def _note_fields(self, sobject: str, notes: dict[str, tuple[str, ...]]) -> None:
        for kind, names in notes.items():
            if not names:
                continue
            self.field_notes[kind].inc()
            noted = self._noted[kind]
            for name in names:
                qualified = f"{sobject}.{name}"
                if qualified in noted or len(noted) >= metrics.FIELD_NAMES_PER_KIND:
                    continue
                noted.add(qualified)
                self.field_names[kind].add(qualified)
                _log.info("field %s: %s", qualified, kind.replace("_", " "))

    def _attempt(self, sobject: str, match_field: str, ops: list[MergedOp]) -> list[tuple[MergedOp, Any]]:
        """Writes `ops` (one sObject and match field): (op, WrittenRecord or _Failure) for each op."""
        client = self._client
        if client is None:
            return _all_failed(ops, "login_failed", f"no credentials on this worker: {self._setup_error}")
        try:
            if not self._logged_in:
                client.login()
                self._logged_in = True
            meta = client.describe(sobject)
            key_field, times_field = self._setup_fields(sobject, meta)
            fitted = [fit_item(op, meta) for op in ops]
            sendable = [(op, f) for op, f in zip(ops, fitted, strict=True) if f.item is not None]
            items = [f.item for _, f in sendable]
            skip_field = SKIP_FIELDS.get(sobject)
            outcomes = (
                upsert_by_key(
                    client,
                    sobject,
                    match_field,
                    items,
                    skip_field,
                    key_field=key_field,
                    times_field=times_field,
                )
                if items
                else []
            )
        # upsert_by_key turns the API limit (and the governor's ApiUsageReserved), exhausted retries
        # and refused calls into "failed" outcomes per record; it raises only SalesforceLoginError.
        # The other handlers are for login() and describe().
        except SalesforceLoginError as e:  # login, or a session renewal inside describe/upsert
            self._logged_in = False
            return _all_failed(ops, "login_failed", str(e))
        except ApiLimitExceeded as e:  # describe, or the governor refusing it
            if isinstance(e, ApiUsageReserved):
                message = e.message
            else:
                message = f"The org's API request limit is exhausted: {e}"
            return _all_failed(ops, e.error_code, message)
        except TransientError as e:  # login, or describe with no metadata read earlier to fall back on
            return _all_failed(ops, "transient_error", f"Salesforce did not answer in time: {e}")
        except SalesforceApiError as e:  # describe
            # E.g. the user may not read this object: no retry helps until the org is changed.
            return _all_failed(ops, e.error_code, str(e), retryable=False)
        finally:
            self._report_api_calls()
        results: list[tuple[MergedOp, Any]] = [
            (op, _Failure(*f.error, retryable=False)) for op, f in zip(ops, fitted, strict=True) if f.error
        ]
        for (op, f), outcome in zip(sendable, outcomes, strict=True):
            self._note_fields(sobject, f.notes)
            results.append((op, self._result_of(op, outcome)))
        return results

    def _result_of(self, op: MergedOp, outcome: UpsertOutcome) -> Any:
        sobject = op.sobject
        if outcome.ambiguous:
            Metrics.counter(metrics.NAMESPACE, metrics.ambiguous_match(sobject)).inc()
        if outcome.stale_fields:
            self.stale_fields.inc(len(outcome.stale_fields))
        if outcome.action in ACTION_COUNTER:
            return WrittenRecord(
                sobject, op.match_value, outcome.action, outcome.record_id, op.events, outcome.ambiguous
            )
        if outcome.action == "skipped_converted":
            message = (
                f"The {sobject} {outcome.record_id} matching {op.match_field}={op.match_value!r} was "
                "converted; Salesforce refuses updates to converted Leads"
            )
            return _Failure("lead_converted", message, retryable=False)
        reason = outcome.error_code or "UNKNOWN_EXCEPTION"
        message = outcome.message or "Salesforce rejected the record without a message"
        return _Failure(reason, message, retryable=outcome.retryable)

    def _emit(self, op: MergedOp, result: Any):
        if isinstance(result, WrittenRecord):
            kind = ACTION_COUNTER[result.action]
            Metrics.counter(metrics.NAMESPACE, metrics.records_written(op.sobject, kind)).inc()
            Metrics.counter(metrics.NAMESPACE, metrics.events_written(op.sobject, kind)).inc(op.events)
            yield result
        else:
            yield from _undelivered(op, result.reason, result.message, result.retryable)


class _Failure(NamedTuple):
    """Why one record was not written: the reason (a pipeline reason or Salesforce's code) and message."""

    reason: str
    message: str
    retryable: bool = True


def _all_failed(ops: list[MergedOp], reason: str, message: str, retryable: bool = True):
    # Nothing in the batch was written (or it was, and a replay finds and updates it, never creating
    # twice): every event is handed back.
    failure = _Failure(reason, message, retryable)
    return [(op, failure) for op in ops]


class WriteToSalesforce(beam.PTransform):
    """Looks each batch up by its match field, then creates or updates the records (per-record results)."""

    def __init__(
        self,
        credentials: Credentials | CredentialsSource,
        settings: ConnectionSettings,
        client_factory: ClientFactory = SalesforceClient,
        on_api_limit: str = "dead_letter",
        limit_poll_seconds: float = LIMIT_POLL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        if on_api_limit not in ON_API_LIMIT:
            raise ValueError(f"on_api_limit must be one of {', '.join(ON_API_LIMIT)}, not {on_api_limit!r}")
        if not limit_poll_seconds > 0:
            raise ValueError(f"limit_poll_seconds must be more than 0, not {limit_poll_seconds!r}")
        self._on_api_limit = on_api_limit
        self._limit_poll_seconds = limit_poll_seconds
        self._sleep = sleep
        if not isinstance(credentials, Credentials | CredentialsSource):
            raise ValueError(
                "WriteToSalesforce needs a salesforce.credentials.CredentialsSource (where workers read the "
                "credentials), or Credentials in tests"
            )
        if not isinstance(settings, ConnectionSettings):
            raise ValueError("WriteToSalesforce needs salesforce.connection.ConnectionSettings")
        self._credentials = credentials
        self._settings = settings
        self._client_factory = client_factory

    def display_data(self) -> dict:
        return {"login_url": self._settings.login_url, "api_version": self._settings.api_version}

    def expand(self, batches: beam.PCollection):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        written = batches | "UpsertBatch" >> beam.ParDo(
            _WriteBatch(
                self._credentials,
                self._settings,
                self._client_factory,
                self._on_api_limit,
                self._limit_poll_seconds,
                self._sleep,
            )
        ).with_output_types(WrittenRecord).with_outputs(DEAD_LETTER, main="written")
        return Result(written.written, written[DEAD_LETTER])
