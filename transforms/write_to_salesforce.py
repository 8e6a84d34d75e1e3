"""WriteToSalesforce: batches of merged operations created or updated, failures as dead letters.

Batches are written on a few threads, so that the pipeline's own work and Salesforce's answers overlap;
a batch that shares a record with one still being written waits for it, so that one record is never
written by two calls at once. Outputs and metrics are made on the bundle's thread, and the bundle ends
only once every batch it took is written.

All instances of one writer in a worker process share one session (client, threads, records in flight,
reported totals) through Beam's `Shared`: a runner that sets a DoFn up for every bundle (the local
BundleBasedDirectRunner does) would otherwise log in and describe the objects again for every batch.
"""

import collections
import datetime
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import apache_beam as beam
from apache_beam.io.components.adaptive_throttler import AdaptiveThrottler
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared
from apache_beam.utils.windowed_value import WindowedValue

from salesforce import stopping
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials, CredentialsSource
from salesforce.errors import LOGIN_BLOCK_REASONS, ConfigurationError
from schemas.dead_letter import UndeliveredEvent
from schemas.records import MergedOp, target_key
from transforms import metrics
from transforms.batch_writer import (  # noqa: F401  (re-exported: the writer's public names)
    KEY_FIELD,
    LIMIT_POLL_SECONDS,
    ON_API_LIMIT,
    TIMES_FIELD,
    BatchReport,
    BatchWriter,
    Failure,
    FittedItem,
    WritePolicy,
    WrittenRecord,
    all_failed,
    fit_item,
    login_paused,
    org_setup_fields,
)
from transforms.result import Result
from transforms.tally import TALLY, Counts, collect

DEAD_LETTER = "dead_letter"
STAGE = "write"
# WrittenRecord.action -> the kind its counters (events_written:<object>:<kind>) and the summary use.
ACTION_COUNTER = {
    "created": "create",
    "updated": "update",
    "deleted": "delete",
    "read": "read",
    "no_match": "no_match",
    "updated_converted": "update_converted_lead",
}
# A dry run's planned write (WrittenRecord.action): one per record, its row in `rows`; not counted.
PLANNED = "planned"
# Long runs log a progress line per writer at most this often.
PROGRESS_EVERY_SECONDS = 10.0
# Batches written at once by one writer; more would only queue at the org (and its concurrency cap).
DEFAULT_WRITER_THREADS = 4
# Beam's name for time spent throttled, which Dataflow's autoscaler reads (as Beam's own IOs report it).
THROTTLING_COUNTER = "cumulativeThrottlingSeconds"
# The adaptive throttler (Beam's, as its Datastore and RequestResponse IOs use it): over the last two
# minutes, calls are delayed once more than half of them were answered "slow down".
THROTTLER_WINDOW_MS = 120_000
THROTTLER_BUCKET_MS = 1_000
THROTTLER_OVERLOAD = 2.0
# While a batch is in flight, the bundle's thread looks this often whether the writer pauses for its
# login, so that the runner's gauges say so while it lasts (runners that report metrics of a bundle
# in flight, as Dataflow's and the portable ones do).
PAUSE_CHECK_SECONDS = 1.0

_log = logging.getLogger(__name__)

ClientFactory = Callable[[Credentials, ConnectionSettings], Any]


def read_rows(written: WrittenRecord) -> Iterable[dict]:
    """A read action's records (WrittenRecord.rows), one JSON-ready row each: the action, the event's
    messageId, and the record's fields."""
    if written.action == "read":
        for row in written.rows:
            yield {
                "action": written.action_name,
                "messageId": written.instance,
                "object": written.sobject,
                "record": row,
            }


def planned_rows(written: WrittenRecord) -> Iterable[dict]:
    """A dry run's planned writes (salesforce/dry_run.py rows)."""
    if written.action == PLANNED:
        yield from written.rows


def _undelivered(op: MergedOp, reason: str, message: str, retryable: bool) -> Iterable[UndeliveredEvent]:
    for ref in op.refs:
        yield UndeliveredEvent(ref, STAGE, reason, message, retryable, op.action or None)


def _epoch_seconds(iso_utc: str) -> float:
    try:
        return datetime.datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


class _Session:
    """What every instance of one writer in a process shares: the logged-in client and its batch writer,
    the threads that write, which write holds each record, and the totals already reported as counters."""

    def __init__(self, client, writer: BatchWriter, threads: int) -> None:
        self.client = client
        self.writer = writer
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="beamforce-writer")
        self.lock = threading.Lock()
        self.in_flight: dict[str, Future] = {}  # target record (target_key) -> the write that holds it
        self.reported: dict[str, int] = {}
        self.limit_waited = 0.0
        self.pauses_reported: frozenset[str] = frozenset()  # the login_paused gauges last set to 1


class WriterFn(beam.DoFn):
    """The metrics every writer DoFn reports (REST and Bulk alike)."""

    def __init__(self) -> None:
        ns = metrics.NAMESPACE
        self.counts = Counts()  # the counters the summary reads, tallied per bundle too
        self.batch_sizes = Metrics.distribution(ns, metrics.WRITE_BATCH_SIZE)
        self.latency_ms = Metrics.distribution(ns, metrics.WRITE_BATCH_LATENCY_MS)
        self.api_remaining = Metrics.gauge(ns, metrics.API_CALLS_REMAINING)
        self.event_lag = Metrics.gauge(ns, metrics.EVENT_TIME_LAG_SECONDS)

    def setup(self) -> None:
        self._noted: dict[str, set[str]] = {kind: set() for kind in metrics.FIELD_NOTE_KINDS}
        self._capped: set[str] = set()  # kinds whose names this writer stopped listing
        self._progress: collections.Counter[str] = collections.Counter()

    def _outputs(self, report: BatchReport) -> Iterable[tuple[str | None, Any]]:
        """A written batch's outputs as (tag, element), tag None for the main output (WrittenRecords,
        a dry run's planned rows among them) and DEAD_LETTER for UndeliveredEvents; its metrics counted."""
        counts = self.counts
        for sobject, notes in report.field_notes:
            self._note_fields(sobject, notes)
        for name in report.setup_missing:
            counts.add(metrics.ORG_SETUP_MISSING, name)
        for sobject in report.ambiguous:
            counts.inc(metrics.ambiguous_match(sobject))
        if report.stale_fields:
            counts.inc(metrics.STALE_FIELDS_SKIPPED, report.stale_fields)
        for row in report.planned:
            yield None, WrittenRecord(row["object"], "", PLANNED, None, 0, rows=(row,))
        written: collections.Counter = collections.Counter()  # (sObject, kind, what) -> count
        newest = ""
        for op, result in report.results:
            if isinstance(result, WrittenRecord):
                kind = ACTION_COUNTER[result.action]
                written[(result.sobject, kind, "records")] += result.records
                written[(result.sobject, kind, "events")] += op.events
                if result.action_name:
                    written[(result.action_name, kind, "action")] += result.records
                self._progress[result.action] += 1
                newest = max(newest, max(op.field_times.values(), default=""))
                yield None, result
            else:
                self._progress["dead-lettered"] += op.events
                for failure in _undelivered(op, *result):
                    yield DEAD_LETTER, failure
        # Counted once per batch: a counter update per record costs more than the record's output.
        for (where, kind, what), n in written.items():
            count = {
                "records": metrics.records_written,
                "events": metrics.events_written,
                "action": metrics.action_records,
            }[what]
            counts.inc(count(where, kind), n)
        if newest:
            self.event_lag.set(max(0, int(time.time() - _epoch_seconds(newest))))

    def _note_fields(self, sobject: str, notes: dict[str, tuple[str, ...]]) -> None:
        for kind, names in notes.items():
            if not names:
                continue
            self.counts.inc(metrics.field_note(kind))
            noted = self._noted[kind]
            for name in names:
                qualified = f"{sobject}.{name}"
                if qualified in noted:
                    continue
                if len(noted) >= metrics.FIELD_NAMES_PER_KIND:
                    if kind not in self._capped:  # counted once per writer: the summary says "at least"
                        self._capped.add(kind)
                        self.counts.inc(metrics.field_names_capped(kind))
                    continue
                noted.add(qualified)
                self.counts.add(metrics.field_names(kind), qualified)
                _log.info("field %s: %s", qualified, kind.replace("_", " "))


class _WriteBatch(WriterFn):
    def __init__(
        self,
        credentials: Credentials | CredentialsSource,
        settings: ConnectionSettings,
        client_factory: ClientFactory,
        on_api_limit: str,
        limit_poll_seconds: float,
        sleep: Callable[[float], None],
        threads: int,
        shared: Shared,
        policy: WritePolicy,
    ) -> None:
        self._policy = policy
        self._credentials = credentials
        self._settings = settings
        self._client_factory = client_factory
        self._on_api_limit = on_api_limit
        self._limit_poll_seconds = limit_poll_seconds
        self._sleep = sleep
        self._threads = threads
        self._shared = shared
        self._session: _Session | None = None
        self._setup_error = ""
        super().__init__()
        ns = metrics.NAMESPACE
        self.login_paused = {r: Metrics.gauge(ns, login_paused(r)) for r in LOGIN_BLOCK_REASONS}

    def display_data(self) -> dict:
        # Credentials stay out on purpose: display data ends up in runner UIs and job graphs.
        return {
            "login_url": self._settings.login_url,
            "api_version": self._settings.api_version,
            "sandbox": self._settings.sandbox or "",
            "auth": self._settings.auth,
        }

    def setup(self) -> None:
        super().setup()
        self._last_progress = time.monotonic()
        self._pending: collections.deque = collections.deque()
        credentials = self._credentials
        reload = None
        ca_bundle = self._settings.ca_bundle
        if ca_bundle and not os.path.isfile(ca_bundle):
            # Checked where the job was launched; a worker is another machine, where it may be missing.
            self._setup_error = (
                f"--salesforce_ca_bundle {ca_bundle!r} is missing on this worker: put the file at the same "
                "path on every worker (e.g. in the worker image) and replay these dead letters"
            )
            _log.error("the writer cannot reach Salesforce: %s", self._setup_error)
            return
        if isinstance(credentials, CredentialsSource):
            # Read here, on the worker: the pickled DoFn carries where to find them, not the secrets.
            reload = credentials.resolve
            try:
                credentials = credentials.resolve()
            except ConfigurationError as e:
                # Every batch becomes a retryable dead letter saying why, instead of workers crashing.
                self._setup_error = str(e)
                _log.error("the writer cannot read the Salesforce credentials: %s", e)
                return
        self._session = self._shared.acquire(lambda: self._new_session(credentials, reload))

    def _new_session(
        self, credentials: Credentials, reload: Callable[[], Credentials] | None = None
    ) -> _Session:
        client = self._client_factory(credentials, self._settings)
        if hasattr(client, "throttler"):
            client.throttler = AdaptiveThrottler(
                window_ms=THROTTLER_WINDOW_MS,
                bucket_ms=THROTTLER_BUCKET_MS,
                overload_ratio=THROTTLER_OVERLOAD,
            )
        writer = BatchWriter(
            client,
            self._on_api_limit,
            self._limit_poll_seconds,
            self._sleep,
            getattr(self._settings, "batch_deadline_seconds", None),
            # A writer held by a refused login reads the credentials again before each new try.
            reload_credentials=reload,
            policy=self._policy,
        )
        # No login here: the writer logs in with its first batch, where the call is counted (a writer
        # that gets no batch, e.g. when Bulk writes every object, spends none), and a refused login
        # holds or dead-letters that batch as any later refusal does.
        return _Session(client, writer, self._threads)

    def teardown(self) -> None:
        # The session (client, threads) outlives this instance: the next instance in this process takes it
        # over, and Beam lets it go with the last instance that holds it.
        self._session = None

    def start_bundle(self) -> None:
        self._pending = collections.deque()

    def process(
        self, batch: list[MergedOp], timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam
    ):
        self.batch_sizes.update(len(batch))
        session = self._session
        if session is None:
            message = f"this worker cannot log in: {self._setup_error}"
            report = BatchReport(results=all_failed(batch, "login_failed", message))
            yield from self._emit(report, timestamp, window)
            return
        keys = {target_key(op) for op in batch}
        with session.lock:
            in_flight = session.in_flight
            earlier = {in_flight[k] for k in keys if k in in_flight}
            future = session.pool.submit(self._write_after, session.writer, earlier, batch)
            for key in keys:
                in_flight[key] = future
        self._pending.append((future, keys, timestamp, window))
        # Outputs leave in the order batches came; at most a few batches are in flight per writer.
        while self._pending and (self._pending[0][0].done() or len(self._pending) > 2 * self._threads):
            yield from self._finish_oldest()

    def finish_bundle(self):
        # The bundle (and the source's acknowledgement of its events) ends only when all is written.
        while self._pending:
            yield from self._finish_oldest()
        yield from self.counts.emit()

    @staticmethod
    def _write_after(
        writer: BatchWriter, earlier: set[Future], batch: list[MergedOp]
    ) -> tuple[BatchReport, float]:
        wait(earlier)
        started = time.monotonic()
        report = writer.write(batch)
        return report, time.monotonic() - started

    def _finish_oldest(self):
        future, keys, timestamp, window = self._pending.popleft()
        while True:
            try:
                report, seconds = future.result(timeout=PAUSE_CHECK_SECONDS)
                break
            except TimeoutError:
                self._report_pauses()
        self._report_pauses()
        session = self._session
        with session.lock:
            for key in keys:
                if session.in_flight.get(key) is future:
                    del session.in_flight[key]
        self.latency_ms.update(int(seconds * 1000))
        yield from self._emit(report, timestamp, window)
        self._report_client()
        self._log_progress()

    def _emit(self, report: BatchReport, timestamp, window):
        if report.limit_waited_seconds and self._session is not None:
            with self._session.lock:
                self._session.limit_waited += report.limit_waited_seconds
        for tag, element in self._outputs(report):
            value = WindowedValue(element, timestamp, (window,))
            yield value if tag is None else beam.pvalue.TaggedOutput(tag, value)

    def _report_pauses(self) -> None:
        """Sets the login_paused gauges when why the session's writer pauses changed."""
        session = self._session
        if session is None:
            return
        paused = frozenset(session.writer.paused_for_login())
        with session.lock:
            before, session.pauses_reported = session.pauses_reported, paused
        for reason in before ^ paused:
            self.login_paused[reason].set(1 if reason in paused else 0)

    def _report_client(self) -> None:
        """The session's running totals as counter increments (metrics are only kept inside a bundle):
        each increment is reported once, by whichever instance sees it first."""
        session = self._session
        if session is None:
            return
        client = session.client
        with session.lock:
            limit_waited = session.limit_waited
            totals = {
                metrics.API_CALLS: client.api_calls,
                metrics.THROTTLED_SECONDS: int(getattr(client, "throttled_seconds", 0.0)),
                metrics.CLIENT_RETRIES: getattr(client, "retries", 0),
                metrics.CLIENT_BACKOFF_SECONDS: int(getattr(client, "backoff_seconds", 0.0)),
                metrics.SESSION_RENEWALS: getattr(client, "session_renewals", 0),
                metrics.BATCH_DEADLINE_EXCEEDED: getattr(client, "deadlines_exceeded", 0),
                metrics.PLANNED_WRITE_CALLS: getattr(client, "planned_calls", 0),
                # The counter runners read to hold back autoscaling: time spent waiting for the rate
                # limit, the adaptive throttler and the org's allocation.
                THROTTLING_COUNTER: int(
                    getattr(client, "throttled_seconds", 0.0)
                    + getattr(client, "adaptive_throttled_seconds", 0.0)
                    + limit_waited
                ),
                metrics.API_LIMIT_WAIT_SECONDS: int(limit_waited),
            }
            reported = session.reported
            for name, value in totals.items():
                previous = reported.get(name, 0)
                if value > previous:
                    self.counts.inc(name, value - previous)
                    reported[name] = value
        usage = getattr(client, "api_usage", None)
        if usage is not None:
            self.api_remaining.set(max(0, usage.max - usage.used))

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
                self._session.reported.get(metrics.API_CALLS, 0) if self._session else 0,
            )


class WriteToSalesforce(beam.PTransform):
    """Looks each batch up by its match field, then creates or updates the records (per-record results).

    Returns Result(WrittenRecords, UndeliveredEvents); ResolveDeadLetters turns the latter into dead
    letters holding the original events.
    """

    def __init__(
        self,
        credentials: Credentials | CredentialsSource,
        settings: ConnectionSettings,
        client_factory: ClientFactory = SalesforceClient,
        on_api_limit: str = "dead_letter",
        limit_poll_seconds: float = LIMIT_POLL_SECONDS,
        sleep: Callable[[float], None] = stopping.sleep,
        threads: int = DEFAULT_WRITER_THREADS,
        policy: WritePolicy | None = None,
    ) -> None:
        super().__init__()
        self._policy = policy or WritePolicy()
        if not isinstance(credentials, Credentials | CredentialsSource):
            raise ValueError(
                "WriteToSalesforce needs a salesforce.credentials.CredentialsSource (where workers read the "
                "credentials), or Credentials in tests"
            )
        if not isinstance(settings, ConnectionSettings):
            raise ValueError("WriteToSalesforce needs salesforce.connection.ConnectionSettings")
        if on_api_limit not in ON_API_LIMIT:
            raise ValueError(f"on_api_limit must be one of {', '.join(ON_API_LIMIT)}, not {on_api_limit!r}")
        if not limit_poll_seconds > 0:
            raise ValueError(f"limit_poll_seconds must be more than 0, not {limit_poll_seconds!r}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads!r}")
        self._credentials = credentials
        self._settings = settings
        self._client_factory = client_factory
        self._on_api_limit = on_api_limit
        self._limit_poll_seconds = limit_poll_seconds
        self._sleep = sleep
        self._threads = threads
        # One session per process for this writer (see the module's docstring).
        self._shared = Shared()

    def display_data(self) -> dict:
        return {
            "login_url": self._settings.login_url,
            "api_version": self._settings.api_version,
            "auth": self._settings.auth,
        }

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
                self._threads,
                self._shared,
                self._policy,
            )
        ).with_output_types(WrittenRecord).with_outputs(DEAD_LETTER, TALLY, main="written")
        collect(written[TALLY])
        return Result(written.written, written[DEAD_LETTER])
