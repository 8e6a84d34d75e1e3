"""WriteToSalesforce: batches of merged operations created or updated, failures as dead letters."""

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import (
    ApiLimitExceeded,
    ApiUsageReserved,
    SalesforceApiError,
    SalesforceLoginError,
    TransientError,
)
from salesforce.upsert import UpsertItem, UpsertOutcome, upsert_by_key
from schemas.dead_letter import DeadLetter
from schemas.fields import ObjectMeta
from schemas.records import MergedOp
from transforms import fitting
from transforms.result import Result

NAMESPACE = "beamforce"
DEAD_LETTER = "dead_letter"
STAGE = "write"

# Salesforce refuses to update a converted Lead; the upsert skips it instead of failing the batch.
SKIP_FIELDS = {"Lead": "IsConverted"}

ACTION_COUNTER = {"created": "create", "updated": "update"}

# Long runs log a progress line per writer at most this often.
PROGRESS_EVERY_SECONDS = 10.0

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
    writes on create and never over a value in `fields`. A match value longer than its field gives
    no item but an `error`: trimmed, it would write a record that no later lookup finds.
    """
    too_long = fitting.match_value_too_long(op.match_field, op.match_value, meta)
    if too_long:
        return FittedItem(None, {}, ("STRING_TOO_LONG", f"{op.sobject}.{too_long}"))
    for_update = fitting.fit_fields(op.fields, meta, for_create=False)
    for_create = fitting.fit_fields({**op.create_defaults, **op.fields}, meta, for_create=True)
    create_only = {k: v for k, v in for_create.fields.items() if k not in for_update.fields}
    notes = {
        kind: tuple(dict.fromkeys(getattr(for_update, kind) + getattr(for_create, kind)))
        for kind in ("trimmed", "converted", "dropped_type", "dropped_unknown")
    }
    # A field is only worth reporting as read-only when neither a create nor an update may write it.
    notes["dropped_readonly"] = tuple(
        f for f in for_update.dropped_readonly if f in set(for_create.dropped_readonly)
    )
    return FittedItem(UpsertItem(op.match_value, for_update.fields, create_only), notes)


def _dead_letters(op: MergedOp, reason: str, message: str, retryable: bool) -> Iterable[DeadLetter]:
    for event, source in zip(op.events, op.sources, strict=True):
        yield DeadLetter.of(STAGE, reason, message, event, retryable=retryable, source=source)


ClientFactory = Callable[[Credentials, ConnectionSettings], Any]


class _WriteBatch(beam.DoFn):
    def __init__(
        self, credentials: Credentials, settings: ConnectionSettings, client_factory: ClientFactory
    ) -> None:
        self._credentials = credentials
        self._settings = settings
        self._client_factory = client_factory
        self._client = None
        self._logged_in = False
        self._calls_reported = 0
        self._throttled_reported = 0
        self._progress = {"created": 0, "updated": 0, "dead-lettered": 0}
        self._last_progress = 0.0
        self.api_calls = Metrics.counter(NAMESPACE, "api_calls")
        # Like Beam's cumulativeThrottlingSeconds: time this writer waited for --max_calls_per_second.
        self.throttled_seconds = Metrics.counter(NAMESPACE, "throttled_seconds")
        self.batch_sizes = Metrics.distribution(NAMESPACE, "write_batch_size")
        self.latency_ms = Metrics.distribution(NAMESPACE, "write_batch_latency_ms")

    def display_data(self) -> dict:
        # Credentials stay out on purpose: display data ends up in runner UIs and job graphs.
        return {
            "login_url": self._settings.login_url,
            "api_version": self._settings.api_version,
            "sandbox": self._settings.sandbox or "",
        }

    def setup(self) -> None:
        self._last_progress = time.monotonic()
        self._client = self._client_factory(self._credentials, self._settings)
        self._calls_reported = self._client.api_calls
        self._throttled_reported = self._whole_throttled_seconds()
        try:
            self._client.login()
            self._logged_in = True
        except (SalesforceLoginError, TransientError) as e:  # what login() raises
            # The main checked the credentials before the run; if they fail now, every batch is
            # dead-lettered (retryable) rather than crashing the workers in a loop.
            _log.warning("Salesforce login failed in a writer, will retry per batch: %s", type(e).__name__)

    def _whole_throttled_seconds(self) -> int:
        # Counters hold integers: report whole seconds of the running total, so that many short waits
        # still add up. A client from another factory may have no rate limit at all.
        return int(getattr(self._client, "throttled_seconds", 0.0))

    def _report_api_calls(self) -> None:
        # Counted in process(), not setup(): metrics are only collected inside a bundle, and the
        # login made in setup() must be counted too.
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
            for out in self._write(sobject, match_field, ops):
                self._count_progress(out)
                yield out
            self.latency_ms.update(int((time.monotonic() - started) * 1000))
        self._log_progress()

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

    def _write(self, sobject: str, match_field: str, ops: list[MergedOp]):
        client = self._client
        try:
            if not self._logged_in:
                client.login()
                self._logged_in = True
            meta = client.describe(sobject)
            fitted = [fit_item(op, meta) for op in ops]
            sendable = [(op, f) for op, f in zip(ops, fitted, strict=True) if f.item is not None]
            items = [f.item for _, f in sendable]
            skip_field = SKIP_FIELDS.get(sobject)
            outcomes = upsert_by_key(client, sobject, match_field, items, skip_field) if items else []
        # upsert_by_key turns the API limit (and the governor's ApiUsageReserved), exhausted retries
        # and refused calls into "failed" outcomes per record; it raises only SalesforceLoginError.
        # The other handlers are for login() and describe().
        except SalesforceLoginError as e:  # login, or a session renewal inside describe/upsert
            self._logged_in = False
            yield from self._batch_failed(ops, "login_failed", str(e))
            return
        except ApiLimitExceeded as e:  # describe, or the governor refusing it
            if isinstance(e, ApiUsageReserved):
                message = e.message
            else:
                message = f"The org's API request limit is exhausted: {e}"
            yield from self._batch_failed(ops, e.error_code, message)
            return
        except TransientError as e:  # login, or describe with no metadata read earlier to fall back on
            yield from self._batch_failed(ops, "transient_error", f"Salesforce did not answer in time: {e}")
            return
        except SalesforceApiError as e:  # describe
            # E.g. the user may not read this object: no retry helps until the org is changed.
            yield from self._batch_failed(ops, e.error_code, str(e), retryable=False)
            return
        finally:
            self._report_api_calls()
        for op, f in zip(ops, fitted, strict=True):
            if f.error is not None:
                for dl in _dead_letters(op, *f.error, retryable=False):
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER, dl)
        for (op, f), outcome in zip(sendable, outcomes, strict=True):
            for kind, names in f.notes.items():
                for name in names:
                    Metrics.counter(NAMESPACE, f"{kind}:{sobject}.{name}").inc()
            yield from self._outcome(op, outcome)

    def _outcome(self, op: MergedOp, outcome: UpsertOutcome):
        sobject = op.sobject
        if outcome.ambiguous:
            Metrics.counter(NAMESPACE, f"ambiguous_match:{sobject}").inc()
        if outcome.action in ACTION_COUNTER:
            kind = ACTION_COUNTER[outcome.action]
            Metrics.counter(NAMESPACE, f"records_written:{sobject}:{kind}").inc()
            Metrics.counter(NAMESPACE, f"events_written:{sobject}:{kind}").inc(len(op.events))
            yield WrittenRecord(
                sobject, op.match_value, outcome.action, outcome.record_id, len(op.events), outcome.ambiguous
            )
        elif outcome.action == "skipped_converted":
            message = (
                f"The {sobject} {outcome.record_id} matching {op.match_field}={op.match_value!r} was "
                "converted; Salesforce refuses updates to converted Leads"
            )
            for dl in _dead_letters(op, "lead_converted", message, retryable=False):
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, dl)
        else:
            reason = outcome.error_code or "UNKNOWN_EXCEPTION"
            message = outcome.message or "Salesforce rejected the record without a message"
            for dl in _dead_letters(op, reason, message, retryable=outcome.retryable):
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, dl)

    def _batch_failed(self, ops: list[MergedOp], reason: str, message: str, retryable: bool = True):
        # Nothing in the batch was written (or it was, and a replay finds and updates it, never
        # creating twice): every event is handed back.
        for op in ops:
            for dl in _dead_letters(op, reason, message, retryable=retryable):
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, dl)


class WriteToSalesforce(beam.PTransform):
    """Looks each batch up by its match field, then creates or updates the records (per-record results)."""

    def __init__(
        self,
        credentials: Credentials,
        settings: ConnectionSettings,
        client_factory: ClientFactory = SalesforceClient,
    ) -> None:
        super().__init__()
        if not isinstance(credentials, Credentials):
            raise ValueError(
                "WriteToSalesforce needs salesforce.credentials.Credentials (see Credentials.from_env)"
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
            _WriteBatch(self._credentials, self._settings, self._client_factory)
        ).with_outputs(DEAD_LETTER, main="written")
        return Result(written.written, written[DEAD_LETTER])
