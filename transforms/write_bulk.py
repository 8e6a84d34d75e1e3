"""WriteToSalesforceBulk: a backfill's merged records gathered per sObject and written as Bulk API 2.0 jobs.

Bounded input reaches the writer as lists of merged records: each shard's (MergePerShard), or batches
of up to a thousand (CutIntoBatches). A Bulk job is worth its fixed cost (about six calls, and one of
the org's daily Bulk batches) only when it holds many records, so the lists are cut into pieces of at
most PIECE_RECORDS, keyed by sObject and match field and grouped (GroupByKey): one writer call then
sees every record of an object, looks them all up once (a Bulk query job, or IN-list SOQL when that is
cheaper) and writes them in chunks of up to `records_per_job` records, each chunk one update job and
one create job. The group's values are iterated, not held: Beam's runners hand a GroupByKey's values
over as a lazy, re-iterable sequence, so the writer's memory is two chunks and a piece plus the
lookup's matches. Records are unique across lists (they were merged), so no record is written twice,
and objects are written in parallel, one worker each.

Input, outputs, tags and metric names are WriteToSalesforce's, so that the graph can take either.
"""

import logging
import time
from collections.abc import Callable, Iterable

import apache_beam as beam
from apache_beam.io.components.adaptive_throttler import AdaptiveThrottler

from salesforce import stopping
from salesforce.bulk import (
    JOB_TIMEOUT_SECONDS,
    MAX_POLL_SECONDS,
    POLL_SECONDS,
    BulkClient,
)
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials, CredentialsSource
from salesforce.errors import ConfigurationError
from schemas.records import MergedOp
from transforms import metrics
from transforms.batch_by_shard import cut
from transforms.batch_writer import (
    LIMIT_POLL_SECONDS,
    ON_API_LIMIT,
    BatchReport,
    WritePolicy,
    WrittenRecord,
    all_failed,
)
from transforms.bulk_writer import DEFAULT_MIN_JOB_RECORDS, DEFAULT_RECORDS_PER_JOB, BulkWriter
from transforms.coders import LocalList
from transforms.result import Result
from transforms.tally import TALLY, collect
from transforms.write_to_salesforce import (
    DEAD_LETTER,
    THROTTLER_BUCKET_MS,
    THROTTLER_OVERLOAD,
    THROTTLER_WINDOW_MS,
    THROTTLING_COUNTER,
    ClientFactory,
    WriterFn,
)

_log = logging.getLogger(__name__)

# Makes the Bulk API client of a writer from its SalesforceClient (tests inject one that aborts jobs).
BulkFactory = Callable[..., BulkClient]

# The client totals reported as counters, as WriteToSalesforce reports them.
_CLIENT_TOTALS = (
    (metrics.API_CALLS, "api_calls"),
    (metrics.THROTTLED_SECONDS, "throttled_seconds"),
    (metrics.CLIENT_RETRIES, "retries"),
    (metrics.CLIENT_BACKOFF_SECONDS, "backoff_seconds"),
    (metrics.SESSION_RENEWALS, "session_renewals"),
    (metrics.BATCH_DEADLINE_EXCEEDED, "deadlines_exceeded"),
)


# The most records of one value of the grouping by object: a shard's list can hold millions.
PIECE_RECORDS = 10_000


def key_by_object(
    ops: list[MergedOp], piece: int = PIECE_RECORDS, local: bool = False
) -> Iterable[tuple[str, list[MergedOp]]]:
    """A list split by sObject and match field, keyed "<sObject>|<match field>", in pieces of about
    `piece` records: a piece is never cut between the records of one target record (batch_by_shard.cut),
    which the writer then finds side by side, whatever order the grouping gives the pieces in. `local`:
    the pieces are LocalLists, which the grouping hands over by reference (transforms/coders.py)."""
    groups: dict[str, list[MergedOp]] = {}
    for op in ops:
        groups.setdefault(f"{op.sobject}|{op.match_field}", []).append(op)
    for key, group in groups.items():
        for part in cut(group, piece):
            yield key, LocalList(part) if local else part


class _WriteObject(WriterFn):
    """Writes every batch of one sObject (a GroupByKey's values) through a BulkWriter."""

    def __init__(
        self,
        credentials: Credentials | CredentialsSource,
        settings: ConnectionSettings,
        client_factory: ClientFactory,
        on_api_limit: str,
        limit_poll_seconds: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        records_per_job: int,
        min_job_records: int,
        poll_seconds: float,
        max_poll_seconds: float,
        job_timeout_seconds: float,
        bulk_factory: BulkFactory,
        policy: WritePolicy,
    ) -> None:
        self._policy = policy
        self._credentials = credentials
        self._settings = settings
        self._client_factory = client_factory
        self._on_api_limit = on_api_limit
        self._limit_poll_seconds = limit_poll_seconds
        self._sleep = sleep
        self._clock = clock
        self._records_per_job = records_per_job
        self._min_job_records = min_job_records
        self._poll = (poll_seconds, max_poll_seconds, job_timeout_seconds)
        self._bulk_factory = bulk_factory
        self._client = None
        self._writer: BulkWriter | None = None
        self._setup_error = ""
        super().__init__()

    def display_data(self) -> dict:
        # Credentials stay out on purpose: display data ends up in runner UIs and job graphs.
        return {"login_url": self._settings.login_url, "api_version": self._settings.api_version}

    def setup(self) -> None:
        self._reported: dict[str, float] = {}
        self._limit_waited = 0.0
        super().setup()
        credentials = self._credentials
        if isinstance(credentials, CredentialsSource):
            # Read here, on the worker: the pickled DoFn carries where to find them, not the secrets.
            try:
                credentials = credentials.resolve()
            except ConfigurationError as e:
                self._setup_error = str(e)
                _log.error("the Bulk writer cannot read the Salesforce credentials: %s", e)
                return
        self._client = client = self._client_factory(credentials, self._settings)
        if hasattr(client, "throttler"):
            client.throttler = AdaptiveThrottler(
                window_ms=THROTTLER_WINDOW_MS,
                bucket_ms=THROTTLER_BUCKET_MS,
                overload_ratio=THROTTLER_OVERLOAD,
            )
        poll_seconds, max_poll_seconds, job_timeout_seconds = self._poll
        bulk = self._bulk_factory(
            client,
            sleep=self._sleep,
            clock=self._clock,
            poll_seconds=poll_seconds,
            max_poll_seconds=max_poll_seconds,
            job_timeout_seconds=job_timeout_seconds,
        )
        self._writer = BulkWriter(
            client,
            bulk,
            self._on_api_limit,
            self._limit_poll_seconds,
            self._sleep,
            self._clock,
            self._records_per_job,
            self._min_job_records,
            policy=self._policy,
        )
        # No login here: the writer logs in at its first object, so that a run whose objects all go
        # through REST ("auto" below the threshold) spends no call on a writer that writes nothing.

    def teardown(self) -> None:
        client, self._client = self._client, None
        self._writer = None
        close = getattr(client, "close", None)
        if close is not None:
            close()

    def process(self, element: tuple[str, Iterable[list[MergedOp]]]):
        _, batches = element
        writer = self._writer
        if writer is None:
            message = f"no credentials on this worker: {self._setup_error}"
            for batch in batches:
                yield from self._emit(BatchReport(results=all_failed(batch, "login_failed", message)))
            return
        started = time.monotonic()
        for report in writer.write_all(batches):
            self.batch_sizes.update(len(report.results))
            self.latency_ms.update(int((time.monotonic() - started) * 1000))
            yield from self._emit(report)
            self._report_client()
            started = time.monotonic()

    def finish_bundle(self):
        yield from self.counts.emit()

    def _emit(self, report: BatchReport):
        self._limit_waited += report.limit_waited_seconds
        for tag, element in self._outputs(report):
            yield element if tag is None else beam.pvalue.TaggedOutput(tag, element)

    def _report_client(self) -> None:
        """The client's running totals as counter increments (metrics are only kept inside a bundle)."""
        client = self._client
        if client is None:
            return
        totals = {name: int(getattr(client, attr, 0)) for name, attr in _CLIENT_TOTALS}
        totals[THROTTLING_COUNTER] = int(
            getattr(client, "throttled_seconds", 0.0)
            + getattr(client, "adaptive_throttled_seconds", 0.0)
            + self._limit_waited
        )
        totals[metrics.API_LIMIT_WAIT_SECONDS] = int(self._limit_waited)
        for name, value in totals.items():
            previous = self._reported.get(name, 0)
            if value > previous:
                self.counts.inc(name, value - previous)
                self._reported[name] = value
        usage = getattr(client, "api_usage", None)
        if usage is not None:
            self.api_remaining.set(max(0, usage.max - usage.used))


class WriteToSalesforceBulk(beam.PTransform):
    """Writes batches of merged records through Bulk API 2.0 (bounded input only).

    The same input and outputs as WriteToSalesforce: Result(WrittenRecords, UndeliveredEvents), the same
    tags and metric names. `sleep` and `clock` drive job polling (tests inject them); `records_per_job`
    bounds a chunk (and a job), `min_job_records` sends smaller writes through sObject Collections;
    `bulk_factory(client, sleep=, clock=, poll_seconds=, max_poll_seconds=, job_timeout_seconds=)` makes
    each writer's BulkClient. `local`: the runner runs every stage in this process
    (pipeline/runner_kind.py), so the grouping by object hands the records over by reference.
    """

    def __init__(
        self,
        credentials: Credentials | CredentialsSource,
        settings: ConnectionSettings,
        client_factory: ClientFactory = SalesforceClient,
        on_api_limit: str = "dead_letter",
        limit_poll_seconds: float = LIMIT_POLL_SECONDS,
        sleep: Callable[[float], None] = stopping.sleep,
        clock: Callable[[], float] = time.monotonic,
        records_per_job: int = DEFAULT_RECORDS_PER_JOB,
        min_job_records: int = DEFAULT_MIN_JOB_RECORDS,
        poll_seconds: float = POLL_SECONDS,
        max_poll_seconds: float = MAX_POLL_SECONDS,
        job_timeout_seconds: float = JOB_TIMEOUT_SECONDS,
        bulk_factory: BulkFactory = BulkClient,
        policy: WritePolicy | None = None,
        local: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(credentials, Credentials | CredentialsSource):
            raise ValueError(
                "WriteToSalesforceBulk needs a salesforce.credentials.CredentialsSource (where workers read "
                "the credentials), or Credentials in tests"
            )
        if not isinstance(settings, ConnectionSettings):
            raise ValueError("WriteToSalesforceBulk needs salesforce.connection.ConnectionSettings")
        if on_api_limit not in ON_API_LIMIT:
            raise ValueError(f"on_api_limit must be one of {', '.join(ON_API_LIMIT)}, not {on_api_limit!r}")
        if not limit_poll_seconds > 0:
            raise ValueError(f"limit_poll_seconds must be more than 0, not {limit_poll_seconds!r}")
        if records_per_job < 1:
            raise ValueError(f"records_per_job must be at least 1, not {records_per_job!r}")
        if min_job_records < 1:
            raise ValueError(f"min_job_records must be at least 1, not {min_job_records!r}")
        if not 0 < poll_seconds <= max_poll_seconds:
            raise ValueError(
                f"poll_seconds must be more than 0 and at most max_poll_seconds ({max_poll_seconds}), "
                f"not {poll_seconds!r}"
            )
        if not job_timeout_seconds > 0:
            raise ValueError(f"job_timeout_seconds must be more than 0, not {job_timeout_seconds!r}")
        self._args = (
            credentials,
            settings,
            client_factory,
            on_api_limit,
            limit_poll_seconds,
            sleep,
            clock,
            records_per_job,
            min_job_records,
            poll_seconds,
            max_poll_seconds,
            job_timeout_seconds,
            bulk_factory,
            policy or WritePolicy(),
        )
        self._settings = settings
        self._local = local

    def display_data(self) -> dict:
        return {"login_url": self._settings.login_url, "api_version": self._settings.api_version}

    def expand(self, batches: beam.PCollection):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        if not batches.is_bounded:
            raise ValueError(
                "WriteToSalesforceBulk writes bounded input only (a backfill); write streams with "
                "WriteToSalesforce (--write_method rest)"
            )
        piece = LocalList if self._local else list[MergedOp]
        written = (
            batches
            | "KeyByObject"
            >> beam.FlatMap(key_by_object, local=self._local).with_output_types(tuple[str, piece])
            | "GroupByObject" >> beam.GroupByKey()
            | "WriteJobs"
            >> beam.ParDo(_WriteObject(*self._args))
            .with_input_types(tuple[str, Iterable[piece]])
            .with_output_types(WrittenRecord)
            .with_outputs(DEAD_LETTER, TALLY, main="written")
        )
        collect(written[TALLY])
        return Result(written.written, written[DEAD_LETTER])
