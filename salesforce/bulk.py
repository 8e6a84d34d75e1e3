"""Bulk API 2.0 on a SalesforceClient's session: ingest jobs (CSV up, per-row results back) and query jobs.

Every HTTP call goes through the client's `_call`, so Bulk calls are counted, retried, governed and
renew the session exactly as REST calls do. No Beam here.
"""

import csv
import io
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.util import exception_handler

from salesforce import stopping
from salesforce.errors import SalesforceApiError, TransientError, is_retryable

log = logging.getLogger(__name__)

INGEST = "ingest"
QUERY = "query"
OPEN = "Open"
UPLOAD_COMPLETE = "UploadComplete"
IN_PROGRESS = "InProgress"
JOB_COMPLETE = "JobComplete"
FAILED = "Failed"
ABORTED = "Aborted"
TERMINAL_STATES = frozenset({JOB_COMPLETE, FAILED, ABORTED})

# One upload holds at most 100 MB of CSV (150 MB once Salesforce base64-encodes it); a margin keeps
# a job under it whatever the encoding of the line endings.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_JOB_BYTES = 95 * 1024 * 1024
# Salesforce processes ingest data in internal batches of 10,000 records, each one of the org's
# 15,000 daily batches; a job of this many records spends 10 of them.
DEFAULT_MAX_JOB_RECORDS = 100_000
# Query results are read in pages of this many records (one call each, Sforce-Locator to the next).
DEFAULT_QUERY_PAGE_RECORDS = 100_000
# Polling: the first look after this long, doubling up to MAX; a job still running after the timeout
# is aborted, so that its unprocessed rows come back to be retried or dead-lettered.
# A small job is often done within a second; a large one is looked at less and less often.
POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 30.0
JOB_TIMEOUT_SECONDS = 3600.0

NULL = "#N/A"  # a CSV value that sets the field to null (an empty value leaves it as it is)

# Row outcomes of an ingest.
OK = "ok"
FAILED_ROW = "failed"
UNPROCESSED = "unprocessed"  # never processed: safe to send again
UNKNOWN = "unknown"  # the job ran, but its results could not be read: the row may have been applied

# Job errorMessages start with a Bulk error code ("InvalidBatch : Failed to parse CSV ...").
_JOB_ERROR_CODE = re.compile(r"^([A-Za-z][A-Za-z_]*)\s*:")
# Codes of a Failed job that no retry of the same data fixes: the data or the org must change first.
_JOB_CODES_NOT_RETRYABLE = frozenset(
    {"InvalidBatch", "ClientInputError", "InvalidJob", "InvalidOperation", "FeatureNotEnabled", "InvalidUser"}
)
# A failed job of the org's daily Bulk allocation: retryable later, pointless now.
_JOB_CODES_LATER = frozenset({"ExceededQuota"})
# sf__Error holds "CODE:message:fields --" per error, one after the other.
_ERROR_START = re.compile(r"(?:^|(?<=--))([A-Z][A-Z0-9_]*):")


@dataclass(frozen=True)
class JobInfo:
    """The parts of a job's info the writer uses."""

    id: str
    state: str
    operation: str = ""
    object: str = ""
    records_processed: int = 0
    records_failed: int = 0
    error_message: str = ""

    @classmethod
    def from_json(cls, body: Any) -> "JobInfo":
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise SalesforceApiError(200, "UNEXPECTED_RESPONSE", "a Bulk API job answer without an id")
        return cls(
            id=body["id"],
            state=str(body.get("state") or ""),
            operation=str(body.get("operation") or ""),
            object=str(body.get("object") or ""),
            records_processed=int(body.get("numberRecordsProcessed") or 0),
            records_failed=int(body.get("numberRecordsFailed") or 0),
            error_message=str(body.get("errorMessage") or ""),
        )


@dataclass(frozen=True)
class RowResult:
    """What became of one row of an ingest.

    `state` is OK, FAILED_ROW (Salesforce refused it: `error_code`, `message`), UNPROCESSED (its job
    failed or was aborted before reaching it; `retry` says whether sending it again now may help) or
    UNKNOWN (the job's results could not be read: it may have been applied).
    """

    state: str
    record_id: str | None = None
    created: bool = False
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False
    retry: bool = False


@dataclass(frozen=True)
class JobFailure:
    """Why a job left rows unprocessed, as a dead letter would say it."""

    code: str
    message: str
    retry_now: bool  # worth sending the rows again in this run
    retryable: bool  # worth replaying the dead letter later


def job_failure(info: JobInfo) -> JobFailure:
    """How to treat the rows a Failed or Aborted job did not process."""
    if info.state == ABORTED:
        message = f"Bulk job {info.id} was aborted before it processed the record"
        return JobFailure("BULK_JOB_ABORTED", message, True, True)
    match = _JOB_ERROR_CODE.match(info.error_message)
    code = match.group(1) if match else "BULK_JOB_FAILED"
    message = f"Bulk job {info.id} failed: {info.error_message or 'no reason given'}"
    if code in _JOB_CODES_NOT_RETRYABLE:
        return JobFailure(code, message, False, False)
    if code in _JOB_CODES_LATER:
        return JobFailure(code, message, False, True)
    return JobFailure(code, message, True, True)


def next_poll_seconds(
    delay: float, elapsed: float, processed: int, rows: int, first: float, longest: float
) -> float:
    """How long to wait before looking at a running job again, having waited `delay` last time.

    Twice as long as last time, at most `longest`; but once the job reports rows processed (of `rows`),
    as long as its remaining rows take at the rate so far (a little more, at least a quarter of `first`),
    so that a look lands soon after the job ends instead of up to `delay` later. Never more than twice
    the last wait: a job's early rate is no promise (it shares the org with the job before it), and a
    look that comes too late costs more time than one more call.
    """
    longest = min(delay * 2, longest)
    if 0 < processed < rows and elapsed > 0:
        left = (rows - processed) * elapsed / processed
        return min(max(left * 1.1, first / 4), longest)
    return longest


def parse_sf_error(text: str) -> tuple[str, str]:
    """(first error code, messages joined by "; ") of an sf__Error value, as SaveResult reports REST errors.

    sf__Error is `CODE:message:fields --` per error, e.g. `REQUIRED_FIELD_MISSING:Required fields are
    missing: [Name]:Name --`; messages may hold colons, so the fields are what follows the last one.
    """
    text = text.strip()
    starts = [m.start() for m in _ERROR_START.finditer(text)]
    if not starts:
        return ("UNKNOWN_EXCEPTION", text) if text else ("UNKNOWN_EXCEPTION", "")
    code = ""
    messages = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(text)
        part = text[start:end].strip()
        part = part[:-2].rstrip() if part.endswith("--") else part
        part_code, _, rest = part.partition(":")
        message, sep, _fields = rest.rpartition(":")
        code = code or part_code
        messages.append(message if sep else rest)
    return code, "; ".join(messages)


def _csv_line(row: Sequence[str]) -> str:
    """One CSV row and its LF. A value holding a comma, a quote or any line break is quoted, a lone CR
    too (Python's csv module leaves that bare, and a CSV reader ends the record there)."""
    line = ",".join(row)
    # Most rows need no quotes: one search over the row instead of one per value.
    if line.count(",") == len(row) - 1 and not _QUOTE_OR_BREAK.search(line):
        return line + "\n"
    return ",".join(map(_csv_value, row)) + "\n"


_NEEDS_QUOTES = re.compile(r'[",\r\n]')
_QUOTE_OR_BREAK = re.compile(r'["\r\n]')


def _csv_value(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if _NEEDS_QUOTES.search(value) else value


def encode_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    """UTF-8 CSV with a header row, comma-delimited, LF line endings (the job's defaults)."""
    return "".join(map(_csv_line, [header, *rows])).encode("utf-8")


def row_bytes(row: Sequence[str]) -> int:
    """Bytes `row` takes in encode_csv's output."""
    return len(_csv_line(row).encode("utf-8"))


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def split_rows(header_bytes: int, sizes: Sequence[int], max_bytes: int, max_records: int) -> list[range]:
    """Consecutive row ranges, each of at most `max_records` rows and `max_bytes` with its header.

    Raises ValueError for a row too large for a job of its own.
    """
    parts: list[range] = []
    start, used = 0, header_bytes
    for i, size in enumerate(sizes):
        if header_bytes + size > max_bytes:
            raise ValueError(f"row {i} takes {size} bytes: more than one Bulk job may hold ({max_bytes})")
        if i > start and (used + size > max_bytes or i - start >= max_records):
            parts.append(range(start, i))
            start, used = i, header_bytes
        used += size
    if start < len(sizes):
        parts.append(range(start, len(sizes)))
    return parts


def read_csv(text: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV answer; ([], []) when empty."""
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    if not rows:
        return [], []
    return rows[0], rows[1:]


class BulkClient:
    """Bulk API 2.0 jobs through a SalesforceClient (its session, retries, call counting and governor).

    `sleep` and `clock` drive polling and the job timeout (tests inject them). `on_poll(job)`, when set
    (per thread: threads may run jobs at once), hears an ingest job's close and each poll of a job, for
    progress lines and to know that Salesforce has the job's rows. One client
    may be used by several threads at once, as its SalesforceClient is.
    """

    def __init__(
        self,
        client: Any,
        sleep: Callable[[float], None] = stopping.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = POLL_SECONDS,
        max_poll_seconds: float = MAX_POLL_SECONDS,
        job_timeout_seconds: float = JOB_TIMEOUT_SECONDS,
        max_job_bytes: int = DEFAULT_MAX_JOB_BYTES,
        max_job_records: int = DEFAULT_MAX_JOB_RECORDS,
        query_page_records: int = DEFAULT_QUERY_PAGE_RECORDS,
    ) -> None:
        if not 0 < poll_seconds <= max_poll_seconds:
            raise ValueError(
                f"poll_seconds must be more than 0 and at most max_poll_seconds, not {poll_seconds}"
            )
        if not job_timeout_seconds > 0:
            raise ValueError(f"job_timeout_seconds must be more than 0, not {job_timeout_seconds}")
        if not 0 < max_job_bytes <= MAX_UPLOAD_BYTES:
            raise ValueError(
                f"max_job_bytes must be more than 0 and at most {MAX_UPLOAD_BYTES}, not {max_job_bytes}"
            )
        if max_job_records < 1 or query_page_records < 1:
            raise ValueError("max_job_records and query_page_records must be at least 1")
        self.client = client
        self._sleep = sleep
        self._clock = clock
        self.poll_seconds = poll_seconds
        self.max_poll_seconds = max_poll_seconds
        self.job_timeout_seconds = job_timeout_seconds
        self.max_job_bytes = max_job_bytes
        self.max_job_records = max_job_records
        self.query_page_records = query_page_records
        self._local = threading.local()  # on_poll, per thread: several jobs may run at once
        self._lock = threading.Lock()
        self.jobs = 0  # ingest and query jobs created

    @property
    def on_poll(self) -> Callable[[JobInfo], None] | None:
        """Hears the close of the ingest jobs this thread runs and each poll of the jobs it waits for."""
        return getattr(self._local, "on_poll", None)

    @on_poll.setter
    def on_poll(self, listener: Callable[[JobInfo], None] | None) -> None:
        self._local.on_poll = listener

    def _count_job(self) -> None:
        with self._lock:
            self.jobs += 1

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        idempotent: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        timeout = self.client.settings.timeout_seconds
        extra = dict(headers or {})

        def op(sf: Salesforce) -> requests.Response:
            response = sf.session.request(
                method, sf.bulk2_url + path, headers={**sf.headers, **extra}, timeout=timeout, **kwargs
            )
            if response.status_code >= 300:
                exception_handler(response, name=f"jobs/{path}")
            return response

        # The client's retries, session renewal, governor and call counting (salesforce/client.py).
        return self.client._call(op, idempotent=idempotent)

    def _json(self, method: str, path: str, idempotent: bool = True, **kwargs: Any) -> JobInfo:
        return JobInfo.from_json(self._request(method, path, idempotent=idempotent, **kwargs).json())

    # -- jobs --------------------------------------------------------------------------------------

    def create_ingest_job(self, sobject: str, operation: str) -> JobInfo:
        body = {
            "object": sobject,
            "operation": operation,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        # A job created twice (a retry after a lost answer) is an empty Open job that Salesforce
        # removes on its own: harmless, so the call is retried like a read.
        job = self._json("POST", INGEST, json=body)
        self._count_job()
        return job

    def upload(self, job_id: str, data: bytes) -> None:
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError(f"{len(data)} bytes is more than one Bulk upload may hold ({MAX_UPLOAD_BYTES})")
        # Not idempotent: a job that received two uploads refuses to close.
        self._request(
            "PUT",
            f"{INGEST}/{job_id}/batches",
            idempotent=False,
            data=data,
            headers={"Content-Type": "text/csv; charset=UTF-8"},
        )

    def close(self, job_id: str) -> JobInfo:
        return self._json("PATCH", f"{INGEST}/{job_id}", idempotent=False, json={"state": UPLOAD_COMPLETE})

    def abort(self, job_id: str, kind: str = INGEST) -> JobInfo:
        return self._json("PATCH", f"{kind}/{job_id}", json={"state": ABORTED})

    def job(self, job_id: str, kind: str = INGEST) -> JobInfo:
        return self._json("GET", f"{kind}/{job_id}")

    def results(self, job_id: str, which: str) -> str:
        """successfulResults, failedResults or unprocessedrecords of an ingest job, as CSV text."""
        response = self._request(
            "GET", f"{INGEST}/{job_id}/{which}", headers={"Accept": "text/csv", "Content-Type": "text/csv"}
        )
        response.encoding = "utf-8"
        return response.text

    def wait(self, job_id: str, kind: str = INGEST, rows: int = 0) -> JobInfo:
        """Polls the job with backoff until it ends; aborts it past job_timeout_seconds.

        `rows`, the rows of an ingest job, lets the next look come when its rate says it will be done.
        """
        started = self._clock()
        delay = self.poll_seconds
        while True:
            self._sleep(delay)
            info = self.job(job_id, kind)
            listener = self.on_poll
            if listener is not None:
                listener(info)
            if info.state in TERMINAL_STATES:
                return info
            if self._clock() - started > self.job_timeout_seconds:
                log.warning(
                    "Bulk %s job %s still %s after %.0f s: aborting it",
                    kind,
                    job_id,
                    info.state,
                    self._clock() - started,
                )
                try:
                    return self.abort(job_id, kind)
                except SalesforceApiError:
                    return self.job(job_id, kind)  # it finished meanwhile
            delay = next_poll_seconds(
                delay,
                self._clock() - started,
                info.records_processed,
                rows,
                self.poll_seconds,
                self.max_poll_seconds,
            )

    def _abort_quietly(self, job_id: str) -> None:
        # Best effort: a job never closed is never processed, and Salesforce removes it in time.
        try:
            self.abort(job_id)
        except Exception as exc:
            log.info("could not abort Bulk job %s: %s", job_id, type(exc).__name__)

    # -- ingest ----------------------------------------------------------------------------------

    def ingest(
        self,
        sobject: str,
        operation: str,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        key_column: int,
    ) -> list[RowResult]:
        """Sends `rows` (strings, in `header`'s order) as as few jobs as the size limits allow.

        One RowResult per row, in row order. Results come back in no particular order and are matched
        to rows by their `key_column` value, which should be unique (the record's Id for updates, its
        key for creates). Raises ApiLimitExceeded (the org's allocation) and SalesforceLoginError; any
        other failure is reported per row.
        """
        if not rows:
            return []
        top = _csv_line(header)
        lines = [_csv_line(row) for row in rows]
        parts = split_rows(
            _utf8_length(top), list(map(_utf8_length, lines)), self.max_job_bytes, self.max_job_records
        )
        results: list[RowResult] = []
        for part in parts:
            data = (top + "".join(lines[part.start : part.stop])).encode("utf-8")
            results.extend(
                self._run_job(sobject, operation, header, rows[part.start : part.stop], key_column, data)
            )
        return results

    def _run_job(
        self,
        sobject: str,
        operation: str,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        key_column: int,
        data: bytes,
    ) -> list[RowResult]:
        """One ingest job of `rows`, sent as `data` (their CSV, header first)."""
        try:
            job = self.create_ingest_job(sobject, operation)
        except TransientError as exc:
            return _all(
                rows,
                RowResult(
                    UNPROCESSED, error_code=exc.error_code, message=exc.message, retryable=True, retry=True
                ),
            )
        except SalesforceApiError as exc:
            return _all(rows, RowResult(FAILED_ROW, error_code=exc.error_code, message=exc.message))
        try:
            self.upload(job.id, data)
        except (TransientError, SalesforceApiError) as exc:
            # Never closed, so never processed: abort it and hand the rows back.
            self._abort_quietly(job.id)
            retryable = isinstance(exc, TransientError)
            failure = RowResult(
                UNPROCESSED if retryable else FAILED_ROW,
                error_code=exc.error_code,
                message=exc.message,
                retryable=retryable,
                retry=retryable,
            )
            return _all(rows, failure)
        except BaseException:
            self._abort_quietly(job.id)
            raise
        try:
            closed = self.close(job.id)
        except (TransientError, SalesforceApiError) as exc:
            # The close may have been applied: the job's state says.
            try:
                state = self.job(job.id).state
            except TransientError:
                return _all(
                    rows, RowResult(UNKNOWN, error_code=exc.error_code, message=exc.message, retryable=True)
                )
            if state == OPEN:
                self._abort_quietly(job.id)
                return _all(
                    rows,
                    RowResult(
                        UNPROCESSED,
                        error_code=exc.error_code,
                        message=exc.message,
                        retryable=True,
                        retry=True,
                    ),
                )
        else:
            listener = self.on_poll
            if listener is not None:
                listener(closed)
        try:
            info = self.wait(job.id, rows=len(rows))
        except (TransientError, SalesforceApiError) as exc:
            # Closed, so it may have run (a job deleted meanwhile answers NOT_FOUND): worth finding out.
            return _all(
                rows, RowResult(UNKNOWN, error_code=exc.error_code, message=exc.message, retryable=True)
            )
        return self._collect(info, header, rows, key_column)

    def _collect(
        self, info: JobInfo, header: Sequence[str], rows: list[Sequence[str]], key_column: int
    ) -> list[RowResult]:
        found: list[RowResult | None] = [None] * len(rows)
        positions: dict[str, deque[int]] = {}
        for i, row in enumerate(rows):
            positions.setdefault(row[key_column], deque()).append(i)
        key_name = header[key_column]
        unmatched = 0
        failure = job_failure(info) if info.state != JOB_COMPLETE else None
        try:
            if info.records_processed > info.records_failed:
                for sf_id, created, key in self._result_rows(
                    info.id, "successfulResults", "sf__Created", key_name
                ):
                    where = positions.get(key)
                    if where:
                        found[where.popleft()] = RowResult(OK, sf_id or None, created.lower() == "true")
                    else:
                        unmatched += 1
            if info.records_failed:
                for sf_id, error, key in self._result_rows(info.id, "failedResults", "sf__Error", key_name):
                    where = positions.get(key)
                    if where:
                        code, message = parse_sf_error(error)
                        found[where.popleft()] = RowResult(
                            FAILED_ROW,
                            sf_id or None,
                            error_code=code,
                            message=message,
                            retryable=is_retryable(code),
                        )
                    else:
                        unmatched += 1
            if info.state != JOB_COMPLETE or info.records_processed < len(rows):
                # Read, not inferred: the rows Salesforce says it never processed.
                _, unprocessed = read_csv(self.results(info.id, "unprocessedrecords"))
                header_index = {name: n for n, name in enumerate(header)}
                column = header_index.get(key_name, key_column)
                for row in unprocessed:
                    where = positions.get(row[column]) if column < len(row) else None
                    if where:
                        found[where.popleft()] = _unprocessed(failure, info)
        except (TransientError, SalesforceApiError) as exc:
            # The job ran: its rows may have been applied whatever its results say (a job deleted since
            # it ended answers NOT_FOUND), so they are unknown, never failed.
            log.warning("could not read the results of Bulk job %s: %s", info.id, exc.error_code)
            return [
                r
                if r is not None
                else RowResult(UNKNOWN, error_code=exc.error_code, message=exc.message, retryable=True)
                for r in found
            ]
        if unmatched:
            log.error("%d result rows of Bulk job %s matched no row that was sent", unmatched, info.id)
        missing = RowResult(
            UNKNOWN,
            error_code="BULK_RESULT_MISSING",
            message=f"Bulk job {info.id} reported no result for the record",
            retryable=True,
        )
        return [
            r if r is not None else (_unprocessed(failure, info) if failure is not None else missing)
            for r in found
        ]

    def _result_rows(
        self, job_id: str, which: str, detail: str, key_name: str
    ) -> Iterator[tuple[str, str, str]]:
        """(sf__Id, `detail` column, key column) of each row of a results CSV."""
        header, rows = read_csv(self.results(job_id, which))
        if not header:
            return
        columns = {name: n for n, name in enumerate(header)}
        id_col, detail_col = columns.get("sf__Id"), columns.get(detail)
        # The original columns follow the two sf__ ones, named as they were sent.
        key_col = columns.get(key_name)
        if key_col is None:
            key_col = next((n for n, name in enumerate(header) if name.lower() == key_name.lower()), None)
        if id_col is None or detail_col is None or key_col is None:
            raise SalesforceApiError(200, "UNEXPECTED_RESPONSE", f"{which} of job {job_id} lacks its columns")
        for row in rows:
            if len(row) == len(header):
                yield row[id_col], row[detail_col], row[key_col]

    # -- query -----------------------------------------------------------------------------------

    def query(self, soql: str) -> Iterator[list[dict[str, str]]]:
        """The records of a Bulk query job, a page at a time, as {column: text} (empty text for null).

        Raises SalesforceApiError when Salesforce refuses the query or the job fails.
        """
        body = {
            "operation": "query",
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        job = self._json("POST", QUERY, json=body)
        self._count_job()
        info = self.wait(job.id, QUERY)
        if info.state != JOB_COMPLETE:
            failure = job_failure(info)
            raise SalesforceApiError(200, failure.code, failure.message)
        locator = ""
        header: list[str] = []
        while True:
            params = {"maxRecords": str(self.query_page_records)}
            if locator:
                params["locator"] = locator
            response = self._request(
                "GET",
                f"{QUERY}/{job.id}/results",
                params=params,
                headers={"Accept": "text/csv", "Content-Type": "text/csv"},
            )
            response.encoding = "utf-8"
            page_header, rows = read_csv(response.text)
            if not header:
                header = page_header
            elif page_header != header:
                rows = [page_header, *rows]  # a page without its header row
            yield [dict(zip(header, row, strict=False)) for row in rows]
            locator = response.headers.get("Sforce-Locator") or ""
            if locator in ("", "null"):
                return

    def count(self, soql: str) -> int:
        """totalSize of a REST `SELECT COUNT() ...` query (one call)."""
        timeout = self.client.settings.timeout_seconds
        answer = self.client._call(lambda sf: sf.query(soql, timeout=timeout))
        return int(answer.get("totalSize") or 0)

    def query_calls(self, records: int) -> int:
        """Calls a query job returning `records` records costs: create, one poll, the result pages."""
        return 2 + max(1, math.ceil(records / self.query_page_records))


def _all(rows: Sequence[Any], result: RowResult) -> list[RowResult]:
    return [result] * len(rows)


def _unprocessed(failure: JobFailure | None, info: JobInfo) -> RowResult:
    if failure is None:
        # A completed job that left rows unprocessed: Salesforce's own hiccup, worth a retry.
        failure = JobFailure(
            "BULK_ROW_UNPROCESSED", f"Bulk job {info.id} did not process the record", True, True
        )
    return RowResult(
        UNPROCESSED,
        error_code=failure.code,
        message=failure.message,
        retryable=failure.retryable,
        retry=failure.retry_now,
    )
