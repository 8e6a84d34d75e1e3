"""A backfill through Bulk API 2.0: one lookup per object, then create and update jobs of many records.

No Beam here. `BulkWriter.write_all(batches)` takes every batch of a backfill (re-iterable, as a
GroupByKey's values are), looks the records up once per sObject (a Bulk query job over the object's
records, or IN-list SOQL when that costs fewer calls; nothing at all when the object has no record with
a match value), then writes chunks that grow from `first_job_records` to `records_per_job` records (the
last two share what is left evenly: chunk_size). Each chunk is one upsert as salesforce/upsert.py does it
(the same fitting, create defaults, key and times fields, DUPLICATE_VALUE handling and outcomes), except
that its writes go as Bulk ingest jobs.
Writes of fewer than `min_job_records` records (a small object, the few retries of a round) go through
sObject Collections, which cost fewer calls at that size. Up to `jobs_at_once` chunks are in flight,
each on a thread of its own, staggered: a chunk starts once the one before has handed its rows to
Salesforce, so that it is fitted, looked up and written as CSV while Salesforce runs the job before.
"""

import collections
import itertools
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from salesforce import bulk as bulk_api
from salesforce import stopping
from salesforce.bulk import BulkClient
from salesforce.client import SaveResult
from salesforce.errors import (
    ApiLimitExceeded,
    SalesforceApiError,
    SalesforceLoginError,
    TransientError,
)
from salesforce.soql import fold, in_clause_queries
from salesforce.upsert import (
    LOCK_RETRIES,
    LOOKUP_ORDER,
    BatchStopped,
    UpsertItem,
    UpsertOutcome,
    Written,
    _Entry,
    _get,
    _Upsert,
    run_upsert,
)
from schemas.fields import ObjectMeta
from schemas.records import MergedOp, target_key
from transforms.batch_writer import (
    LIMIT_POLL_SECONDS,
    SKIP_FIELDS,
    BatchReport,
    BatchWriter,
    WritePolicy,
)

_log = logging.getLogger(__name__)

# Records per chunk: each chunk is one update job and one create job (plus a retry or two). Bulk API
# takes far more per job; this bounds the writer's memory (the chunk's records and their CSV).
DEFAULT_RECORDS_PER_JOB = 50_000
# An object's first chunk: small, so that Salesforce starts work soon; each next chunk twice the one
# before, up to records_per_job, so that it is made ready (fitted, looked up, its CSV written) while
# Salesforce runs the job before, which takes about twice as long (docs/benchmarks-bulk.md). The last two
# share what is left evenly (chunk_size).
FIRST_JOB_RECORDS = 10_000
# Chunks in flight, each on a thread of its own. They are staggered: a chunk starts once the one before
# has handed its rows over, so that this process makes one ready while Salesforce runs the other.
# Started together, two chunks only competed for this process and were slower (docs/benchmarks-bulk.md).
DEFAULT_JOBS_AT_ONCE = 2
# Below this many records a write goes through sObject Collections: 200 records a call, so at most 10
# calls, against a job's 6 or more (create, upload, close, polls, results) and one of the org's daily
# Bulk batches. Salesforce itself advises Bulk API from about 2,000 records.
DEFAULT_MIN_JOB_RECORDS = 2_000
# IN-list lookups that cost at most this many calls are not worth a COUNT() to price the alternative.
REST_LOOKUP_CALLS_WITHOUT_COUNT = 3
# Keys priced to see whether IN-list lookups would cost more than that (far more than 3 queries hold).
PRICED_KEYS = 5_000
PROGRESS_EVERY_SECONDS = 10.0


# -- values and rows -----------------------------------------------------------------------------------


def chunk_size(planned: int, left: int, least: int) -> int:
    """The records of the next chunk, `planned` by the growth rule, when `left` records remain: all of
    them when they fit; half of them (rounded up) when they fit in two chunks of at least `least` (the
    first chunk's size), so that the last two are even.

    A large chunk followed by a small one leaves Salesforce running the large one alone while the small
    one waits to be made ready: 10,000, 20,000, 40,000 and 20,000 records (89,989 Leads) took 12.3 and
    12.9 s to write into the local Salesforce, 10,000, 20,000, 30,000 and 30,000 took 10.3 and 9.8 s, with
    26 calls instead of 30 (two interleaved rounds of `BulkWriter.write_all` in process).
    """
    if left <= planned:
        return left
    if left < 2 * planned and left // 2 >= least:
        return -(-left // 2)
    return planned


def csv_text(value: Any, field_type: str = "") -> str:
    """A fitted value as Bulk API's CSV writes it, meaning what the same value means over REST.

    Empty CSV values leave a field as it is, so null and "" (which REST stores as null) become #N/A.
    Numbers are written without exponents; datetimes with "Z" (the +0000 fitting writes is REST's form).
    """
    if isinstance(value, str):
        if not value:
            return bulk_api.NULL
        if field_type == "datetime" and value.endswith("+0000"):
            return value[:-5] + "Z"
        return value
    if value is None:
        return bulk_api.NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _plain(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return _plain(value)
    return json.dumps(value, separators=(",", ":"))


def _plain(number: Decimal) -> str:
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def to_rows(
    records: list[Mapping[str, Any]], meta: ObjectMeta | None, first: str | None = None
) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of records whose fields differ: the union of their fields (spelled as first
    seen, names compared ignoring case, `first` leading), and "" where a record lacks a field."""
    columns: dict[str, str] = {}
    if first:
        columns[first.lower()] = first
    for record in records:
        for name in record:
            columns.setdefault(name.lower(), name)
    header = list(columns.values())
    # Each column under its lower-cased name and, as records use them, under their spellings.
    position = {name.lower(): n for n, name in enumerate(header)}
    types = [_type_of(meta, name) for name in header]
    rows = []
    for record in records:
        row = [""] * len(header)
        for name, value in record.items():
            n = position.get(name)
            if n is None:
                n = position[name] = position[name.lower()]
            row[n] = csv_text(value, types[n])
        rows.append(row)
    return header, rows


def _type_of(meta: ObjectMeta | None, name: str) -> str:
    field = meta.get(name) if meta is not None else None
    return field.type if field is not None else ""


def cheaper_lookup(in_list_calls: int, export_calls: int | None) -> str:
    """ "rest" (IN-list SOQL queries) or "export" (one Bulk query job over the object's records)."""
    if export_calls is None or in_list_calls <= export_calls:
        return "rest"
    return "export"


# -- the upsert, with Bulk jobs ------------------------------------------------------------------------


class _BulkUpsert(_Upsert):
    """salesforce/upsert.py's upsert whose first lookup comes from a prefetched index and whose writes
    of `min_job_records` or more go as Bulk ingest jobs."""

    def __init__(
        self,
        client: Any,
        bulk: BulkClient,
        sobject: str,
        match_field: str,
        skip_field: str | None,
        key_field: str | None,
        times_field: str | None,
        meta: ObjectMeta | None = None,
        index: dict[str, list[dict]] | None = None,
        min_job_records: int = DEFAULT_MIN_JOB_RECORDS,
        redirect_field: str | None = None,
    ) -> None:
        super().__init__(client, sobject, match_field, skip_field, key_field, times_field, redirect_field)
        self.bulk = bulk
        self.meta = meta
        self.index = index
        self.min_job_records = min_job_records

    def lookup(self, entries: list[_Entry], by_key: list[_Entry] | None = None) -> dict[str, list[dict]]:
        if self.index is not None and not by_key:
            # The first round: every key of the chunk was looked up before writing began. Later rounds
            # (keys another writer created meanwhile, creates whose results were lost) ask again.
            index, self.index = self.index, None
            wanted = (fold(e.key) for e in entries)
            return {key: [dict(r) for r in index[key]] for key in wanted if key in index}
        return super().lookup(entries, by_key)

    def write(
        self,
        call: Callable[[str, list[dict]], list[SaveResult]],
        records: dict[str, dict],
        look_up_before_resending: bool = False,
    ) -> Written:
        operation = {"create_many": "insert", "update_many": "update"}.get(getattr(call, "__name__", ""))
        if operation is None or len(records) < self.min_job_records:
            return super().write(call, records, look_up_before_resending)
        return self._write_jobs(call, operation, records, look_up_before_resending)

    def _write_jobs(
        self,
        call: Callable[[str, list[dict]], list[SaveResult]],
        operation: str,
        records: dict[str, dict],
        look_up_before_resending: bool,
    ) -> Written:
        """As _Upsert.write, through jobs: rows refused with a retryable code and rows a failed job left
        unprocessed are sent again (LOCK_RETRIES times at most, the last few through Collections)."""
        written = Written()
        todo = list(records)
        for attempt in range(LOCK_RETRIES + 1):
            if attempt and len(todo) < self.min_job_records:
                _absorb(written, super().write(call, {k: records[k] for k in todo}, look_up_before_resending))
                return written
            key_name = "Id" if operation == "update" else (self.key_field or self.match_field)
            header, rows = to_rows([records[k] for k in todo], self.meta, first=key_name)
            try:
                results = self.bulk.ingest(self.sobject, operation, header, rows, key_column=0)
            except ApiLimitExceeded as exc:  # ApiUsageReserved too
                written.stopped = BatchStopped(exc.error_code, exc.message, True)
                for k in todo:
                    written.failed[k] = (exc.error_code, exc.message, True)
                return written
            again = []
            for k, result in zip(todo, results, strict=True):
                if result.state == bulk_api.OK:
                    written.ok[k] = SaveResult(result.record_id, True)
                    continue
                code = result.error_code or "UNKNOWN_EXCEPTION"
                message = result.message or ""
                if result.state == bulk_api.UNKNOWN:
                    if look_up_before_resending:  # a create: looked up before it is sent again
                        written.maybe_applied[k] = TransientError(
                            code, message, attempt + 1, maybe_applied=True
                        )
                    elif attempt < LOCK_RETRIES:  # an update by Id: sending it again changes nothing more
                        again.append(k)
                    else:
                        written.failed[k] = (code, message, True)
                elif attempt < LOCK_RETRIES and (
                    result.retry if result.state == bulk_api.UNPROCESSED else result.retryable
                ):
                    again.append(k)
                else:
                    written.failed[k] = (code, message, result.retryable)
            if not again:
                break
            _log.warning(
                "%d %s rows of a Bulk %s were refused for now or left unprocessed; sending them again",
                len(again),
                self.sobject,
                operation,
            )
            self.client.back_off(attempt)
            todo = again
        return written


def _absorb(into: Written, other: Written) -> None:
    into.ok.update(other.ok)
    into.failed.update(other.failed)
    into.maybe_applied.update(other.maybe_applied)
    into.stopped = into.stopped or other.stopped


def bulk_upsert_by_key(
    client: Any,
    bulk: BulkClient,
    sobject: str,
    match_field: str,
    items: list[UpsertItem],
    skip_field: str | None = None,
    key_field: str | None = None,
    times_field: str | None = None,
    meta: ObjectMeta | None = None,
    index: dict[str, list[dict]] | None = None,
    min_job_records: int = DEFAULT_MIN_JOB_RECORDS,
    redirect_field: str | None = None,
) -> list[UpsertOutcome]:
    """salesforce.upsert.upsert_by_key through Bulk jobs: the same contract, outcomes and rules (the same
    run_upsert), with lookups and writes of its own.

    `index` (folded key -> matching records, newest first, for every key of `items`) replaces the first
    lookup.
    """
    run = _BulkUpsert(
        client,
        bulk,
        sobject,
        match_field,
        skip_field,
        key_field,
        times_field,
        meta,
        index,
        min_job_records,
        redirect_field,
    )
    return run_upsert(run, items)


def _holds_null_marker(item: UpsertItem) -> bool:
    """Whether a value of the record is the text bulk_api.NULL (#N/A), which Bulk would write as null."""
    for values in ((item.key,), item.fields.values(), item.create_defaults.values()):
        for value in values:
            if isinstance(value, str) and bulk_api.NULL in value and value.strip() == bulk_api.NULL:
                return True
    return False


# -- lookups ------------------------------------------------------------------------------------------


def _typed(record: dict[str, str], meta: ObjectMeta) -> dict[str, Any]:
    """A Bulk query row as a REST query gives it: null for empty, booleans as booleans."""
    out: dict[str, Any] = {}
    for name, text in record.items():
        kind = _type_of(meta, name)
        if text == "":
            out[name] = False if kind == "boolean" else None
        elif kind == "boolean":
            out[name] = text.lower() == "true"
        else:
            out[name] = text
    return out


def export_index(
    bulk: BulkClient, select: str, sobject: str, match_field: str, keys: set[str], meta: ObjectMeta
) -> dict[str, list[dict]]:
    """Records of `sobject` whose match value (folded) is in `keys`, newest first, from one Bulk query job
    over every record that has a match value; only the matching ones are kept."""
    found: dict[str, list[dict]] = {}
    for page in bulk.query(f"{select} WHERE {match_field} != null"):
        for row in page:
            record = _typed(row, meta)
            value = _get(record, match_field)
            if isinstance(value, str) and fold(value) in keys:
                found.setdefault(fold(value), []).append(record)
    for records in found.values():
        records.sort(key=lambda r: (str(_get(r, "LastModifiedDate") or ""), str(r.get("Id"))), reverse=True)
    return found


# -- the writer ---------------------------------------------------------------------------------------


class Progress:
    """Progress lines of one sObject's backfill: records done, rate, time left, API calls.

    Chunks written at once report from their own threads: `running(chunk, processed)` as their jobs are
    polled, `finished(chunk, records)` once their results are in.
    """

    def __init__(self, label: str, total: int, client: Any, clock: Callable[[], float], every: float) -> None:
        self.label, self.total, self.client = label, total, client
        self.clock, self.every = clock, every
        self.started: float | None = None
        self.last = 0.0
        self.done = 0  # records of finished chunks
        self._running: dict[int, int] = {}  # chunk -> rows its jobs processed so far
        self._lock = threading.Lock()

    def begin(self) -> None:
        """Starts the clock at the first chunk (not while other objects are still being written)."""
        with self._lock:
            if self.started is not None:
                return
            self.started = self.last = self.clock()
        _log.info("bulk write of %s: %d records to write", self.label, self.total)

    def running(self, chunk: int, processed: int) -> None:
        with self._lock:
            self._running[chunk] = processed
            done = self.done + sum(self._running.values())
        self.show(done)

    def finished(self, chunk: int, records: int) -> None:
        with self._lock:
            self._running.pop(chunk, None)
            self.done += records
            done, complete = self.done + sum(self._running.values()), self.done >= self.total
        self.show(done, force=complete)

    def show(self, done: int, force: bool = False) -> None:
        now = self.clock()
        done = min(done, self.total)
        with self._lock:
            # The line that says "done" is the forced one, once the last records' results are read.
            if not force and (now - self.last < self.every or done >= self.total):
                return
            self.last = now
        elapsed = max(now - (self.started if self.started is not None else now), 1e-9)
        rate = done / elapsed
        left = f"about {math.ceil((self.total - done) / rate)} s left" if rate > 0 else "time left unknown"
        _log.info(
            "bulk write of %s: %d of %d records (%d%%), %.0f records/s, %s; %d API calls so far",
            self.label,
            done,
            self.total,
            100 * done // max(self.total, 1),
            rate,
            left if done < self.total else "done",
            getattr(self.client, "api_calls", 0),
        )


class BulkWriter(BatchWriter):
    """Writes a backfill's batches through Bulk API 2.0 jobs on one client (see the module docstring).

    Results come back as BatchReports, one per chunk, exactly as BatchWriter's for a batch.
    """

    def __init__(
        self,
        client: Any,
        bulk: BulkClient | None = None,
        on_api_limit: str = "dead_letter",
        limit_poll_seconds: float = LIMIT_POLL_SECONDS,
        sleep: Callable[[float], None] = stopping.sleep,
        clock: Callable[[], float] = time.monotonic,
        records_per_job: int = DEFAULT_RECORDS_PER_JOB,
        min_job_records: int = DEFAULT_MIN_JOB_RECORDS,
        progress_every_seconds: float = PROGRESS_EVERY_SECONDS,
        jobs_at_once: int = DEFAULT_JOBS_AT_ONCE,
        policy: WritePolicy | None = None,
        first_job_records: int = FIRST_JOB_RECORDS,
    ) -> None:
        if records_per_job < 1:
            raise ValueError(f"records_per_job must be at least 1, not {records_per_job!r}")
        if first_job_records < 1:
            raise ValueError(f"first_job_records must be at least 1, not {first_job_records!r}")
        if min_job_records < 1:
            raise ValueError(f"min_job_records must be at least 1, not {min_job_records!r}")
        if jobs_at_once < 1:
            raise ValueError(f"jobs_at_once must be at least 1, not {jobs_at_once!r}")
        # No per-batch deadline: a job's polling has its own timeout (BulkClient.job_timeout_seconds).
        super().__init__(client, on_api_limit, limit_poll_seconds, sleep, None, policy=policy)
        self.bulk = bulk if bulk is not None else BulkClient(client, sleep=sleep, clock=clock)
        self._clock = clock
        self._records_per_job = records_per_job
        self._first_job_records = min(first_job_records, records_per_job)
        self._min_job_records = min_job_records
        self._progress_every = progress_every_seconds
        self._jobs_at_once = jobs_at_once
        self._local = threading.local()  # the chunk's prefetched index, for its thread's _attempt

    def write_all(self, batches: Iterable[list[MergedOp]]) -> Iterator[BatchReport]:
        """Writes every record of `batches` (iterated twice: keys first, then records), a chunk at a time,
        `jobs_at_once` chunks at once on threads of their own; yields each chunk's report in turn."""
        if iter(batches) is batches:  # a one-pass iterator: keep what it gives for the second pass
            batches = list(batches)
        groups: dict[tuple[str, str], dict[str, str]] = {}  # (sObject, match field) -> folded -> value
        records: collections.Counter[tuple[str, str]] = collections.Counter()
        for batch in batches:
            for op in batch:
                group = (op.sobject, op.match_field)
                records[group] += 1
                groups.setdefault(group, {}).setdefault(fold(op.match_value), op.match_value)
        indexes = {group: self._prefetch(*group, keys) for group, keys in groups.items()}
        progress = {
            group: Progress(group[0], len(keys), self._client, self._clock, self._progress_every)
            for group, keys in groups.items()
        }
        in_flight: collections.deque[Future[BatchReport]] = collections.deque()
        handed_over = threading.Event()
        handed_over.set()
        with ThreadPoolExecutor(self._jobs_at_once, thread_name_prefix="beamforce-bulk") as pool:
            for n, (group, ops) in enumerate(self._chunks(batches, records)):
                if len(in_flight) >= self._jobs_at_once:
                    yield in_flight.popleft().result()
                # Staggered: a chunk starts once the one before has handed its rows to Salesforce, so
                # that it is made ready while that job runs, instead of both competing for this process.
                handed_over.wait()
                handed_over = threading.Event()
                progress[group].begin()
                in_flight.append(
                    pool.submit(self._write_chunk, n, ops, indexes[group], progress[group], handed_over)
                )
            while in_flight:
                yield in_flight.popleft().result()

    def _chunks(
        self, batches: Iterable[list[MergedOp]], records: Mapping[tuple[str, str], int]
    ) -> Iterator[tuple[tuple[str, str], list[MergedOp]]]:
        """(group, records of it), as the batches fill them: first_job_records, then twice as many each
        time, up to records_per_job, the last two even (chunk_size; `records` counts each group's). Never
        cut between the records that several actions hold of one Salesforce record (side by side in a
        batch: schemas.records.batch_order): in two chunks written at once, each could find no record
        and create one."""
        buffers: dict[tuple[str, str], list[MergedOp]] = {group: [] for group in records}
        planned = dict.fromkeys(buffers, self._first_job_records)
        left = dict(records)  # records of the group in no chunk yet, the filling one's included
        least = self._first_job_records
        sizes = {group: chunk_size(planned[group], left[group], least) for group in buffers}
        for batch in batches:
            for op in batch:
                group = (op.sobject, op.match_field)
                buffer = buffers[group]
                if len(buffer) >= sizes[group] and target_key(op) != target_key(buffer[-1]):
                    buffers[group] = [op]
                    left[group] -= len(buffer)
                    planned[group] = min(2 * planned[group], self._records_per_job)
                    sizes[group] = chunk_size(planned[group], left[group], least)
                    yield group, buffer
                else:
                    buffer.append(op)
        for group, buffer in buffers.items():
            if buffer:
                yield group, buffer

    def _write_chunk(
        self,
        chunk: int,
        ops: list[MergedOp],
        index: dict[str, list[dict]] | None,
        progress: Progress,
        handed_over: threading.Event,
    ) -> BatchReport:
        """Writes one chunk (on a thread of its own; the client, the Bulk client and write() allow it);
        sets `handed_over` once its first job is closed (Salesforce has its rows), or it is done."""
        if index is not None:
            keys = {fold(op.match_value) for op in ops}
            self._local.index = {key: index[key] for key in keys if key in index}
        processed: dict[str, int] = {}

        def heard(info: bulk_api.JobInfo) -> None:
            # A chunk is an update job, a create job and maybe a retry or two: their rows add up.
            handed_over.set()
            processed[info.id] = info.records_processed
            progress.running(chunk, min(sum(processed.values()), len(ops)))

        self.bulk.on_poll = heard
        try:
            report = self.write(ops)
        finally:
            self._local.index = None
            self.bulk.on_poll = None
            handed_over.set()
        progress.finished(chunk, len(ops))
        return report

    def _prefetch(self, sobject: str, match_field: str, keys: dict[str, str]) -> dict[str, list[dict]] | None:
        """Existing records for every key, or None when each chunk should look its keys up itself (IN-list
        queries cost no more, or the prefetch failed: the chunk's own lookup then says why)."""
        client = self._client
        try:
            self._log_in()
            meta = client.describe(sobject)
            key_field, times_field = self._setup_fields(sobject, meta, BatchReport())
            run = _Upsert(
                client,
                sobject,
                match_field,
                SKIP_FIELDS.get(sobject),
                key_field,
                times_field,
                self.redirect_field(sobject),
            )
            # More queries for the first keys means more for all: the rest need not be priced.
            first_keys = list(itertools.islice(keys.values(), PRICED_KEYS))
            try:
                queries = in_clause_queries(
                    run.select, match_field, first_keys, api_path=run.query_path, order_by=LOOKUP_ORDER
                )
                if len(queries) <= REST_LOOKUP_CALLS_WITHOUT_COUNT and len(keys) > len(first_keys):
                    queries = in_clause_queries(
                        run.select, match_field, keys.values(), api_path=run.query_path, order_by=LOOKUP_ORDER
                    )
            except ValueError:
                return None  # a key too long for any query: the chunks say which
            if len(queries) <= REST_LOOKUP_CALLS_WITHOUT_COUNT:
                return None
            count = self.bulk.count(f"SELECT COUNT() FROM {sobject} WHERE {match_field} != null")
            if count == 0:
                # What the query job would find: no record has a value to match (a first backfill).
                _log.info("looking up %d %s keys: no %s has %s set", len(keys), sobject, sobject, match_field)
                return {}
            method = cheaper_lookup(len(queries), self.bulk.query_calls(count))
            _log.info(
                "looking up %d %s keys: %d IN-list queries or one Bulk query job over %d records: %s",
                len(keys),
                sobject,
                len(queries),
                count,
                "the query job" if method == "export" else "the IN-list queries",
            )
            if method == "rest":
                return None
            return export_index(self.bulk, run.select, sobject, match_field, set(keys), meta)
        except (SalesforceLoginError, ApiLimitExceeded, TransientError, SalesforceApiError) as e:
            _log.warning("could not look %s records up in bulk (%s); each chunk looks its own up", sobject, e)
            if isinstance(e, SalesforceLoginError):
                self.logged_in = False
            return None

    def _upsert_call(
        self,
        sobject: str,
        match_field: str,
        items: list[UpsertItem],
        key_field: str | None,
        times_field: str | None,
        meta: ObjectMeta,
    ) -> list[UpsertOutcome]:
        """BatchWriter's upsert, through Bulk API 2.0 jobs, with the chunk's prefetched lookup if any.

        A record holding the text #N/A, which a Bulk CSV can only say as null (bulk_api.NULL), goes
        through REST instead, as do its outcomes; the others keep their order among the outcomes."""
        index, self._local.index = getattr(self._local, "index", None), None
        by_rest = [i for i, item in enumerate(items) if _holds_null_marker(item)]
        rest_outcomes = (
            super()._upsert_call(
                sobject, match_field, [items[i] for i in by_rest], key_field, times_field, meta
            )
            if by_rest
            else []
        )
        rest_indexes = set(by_rest)
        bulk_items = [item for i, item in enumerate(items) if i not in rest_indexes]
        bulk_outcomes = (
            bulk_upsert_by_key(
                self._client,
                self.bulk,
                sobject,
                match_field,
                bulk_items,
                SKIP_FIELDS.get(sobject),
                key_field=key_field,
                times_field=times_field,
                meta=meta,
                index=index,
                min_job_records=self._min_job_records,
                redirect_field=self.redirect_field(sobject),
            )
            if bulk_items
            else []
        )
        if not by_rest:
            return bulk_outcomes
        via_rest = dict(zip(by_rest, rest_outcomes, strict=True))
        via_bulk = iter(bulk_outcomes)
        return [via_rest[i] if i in via_rest else next(via_bulk) for i in range(len(items))]
