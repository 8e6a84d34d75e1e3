"""Bulk API 2.0 of the emulator: ingest and query job routes under /services/data/vXX.X/jobs/."""

import functools
import json
import logging
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from emulator import ids
from emulator.bulk2_jobs import (
    ABORTED,
    DELIMITERS,
    FAILED,
    IN_PROGRESS,
    INGEST,
    INGEST_OPERATIONS,
    JOB_COMPLETE,
    LINE_ENDINGS,
    OPEN,
    QUERY,
    QUERY_OPERATIONS,
    TERMINAL_STATES,
    UPLOAD_COMPLETE,
    CsvDataError,
    Job,
    JobRunner,
    JobStore,
    decode_locator,
    encode_locator,
    parse_csv,
    render_csv,
    run_query,
)
from emulator.errors import ApiError
from emulator.responses import JSONResponse
from emulator.surrogates import may_hold_surrogates, replace_surrogates

if TYPE_CHECKING:
    from emulator.org import Org

log = logging.getLogger(__name__)

DB_FILE = "bulk2.sqlite3"
DEFAULT_USER_ID = "005000000000001AAA"
CSV_MEDIA_TYPE = "text/csv"
_RESULT_KINDS = {
    "successfulresults": "successful",
    "failedresults": "failed",
    "unprocessedrecords": "unprocessed",
}
_MULTIPLE_UPLOADS = (
    "Found multipe contents for job: <{job_id}>, please 'Close' / 'Abort' / 'Delete' the current Job then "
    "create a new Job and make sure you only do 'PUT' once on a given Job."
)  # sic: Salesforce's own spelling
_ABORT_WORDS = {JOB_COMPLETE: "Completed", FAILED: "Failed", ABORTED: "Aborted"}


class BulkError(Exception):
    """A Bulk API error answered as [{"errorCode", "message"}] with `status`."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


def _not_found() -> BulkError:
    return BulkError(404, "NOT_FOUND", "The requested resource does not exist")


class Bulk2Service:
    """The jobs of one emulator: their store, the org they write to and the background runner."""

    def __init__(self, db_path: str | Path, org: "Org"):
        self.org = org
        self.store = JobStore(db_path)
        self.runner = JobRunner(self.store, org)

    def close(self) -> None:
        self.runner.stop()
        self.store.close()

    def reset(self) -> None:
        """Deletes every job (the admin reset), holding the org's lock so that no chunk is half-way."""
        with self.org.transaction():
            self.store.clear()

    # -- ingest ---------------------------------------------------------------------------------

    def create_ingest(self, body: dict[str, Any], version: str, user_id: str) -> Job:
        operation = body.get("operation")
        if operation not in INGEST_OPERATIONS:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        name = body.get("object")
        if not isinstance(name, str) or not name:
            raise BulkError(400, "INVALIDJOB", "InvalidJob : Object is required to create a job")
        try:
            sobject = self.org.canonical_sobject(name)
        except ApiError as exc:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {name}") from exc
        line_ending, delimiter = _csv_options(body)
        external_id = body.get("externalIdFieldName")
        if operation == "upsert":
            external_id = self._external_id_field(sobject, external_id, version)
        else:
            external_id = None
        return self.store.create(
            job_type=INGEST,
            operation=operation,
            sobject=sobject,
            created_by_id=user_id,
            api_version=version,
            line_ending=line_ending,
            column_delimiter=delimiter,
            external_id_field=external_id,
        )

    def _external_id_field(self, sobject: str, given: Any, version: str) -> str:
        if not isinstance(given, str) or not given:
            raise BulkError(
                400,
                "INVALIDJOB",
                f"InvalidJob : External ID was blank for {sobject}. "
                "An External ID must be specified for upsert.",
            )
        for field in self.org.describe(sobject, version).get("fields", []):
            upsert_key = field["name"] == "Id" or field.get("externalId") or field.get("idLookup")
            if field["name"].lower() == given.lower() and upsert_key:
                return field["name"]
        raise BulkError(
            400,
            "INVALIDJOB",
            f"InvalidJob : Field name provided, {given} does not match an External ID, Salesforce Id, "
            f"or indexed field for {sobject}",
        )

    def upload(self, job_id: str, data: bytes) -> None:
        job = self._job(job_id, INGEST)
        if not self.store.add_upload(job.id, data):
            raise BulkError(
                409, "INVALIDJOBSTATE", f"Job {job.id} is not in {OPEN} state; its state is {job.state}"
            )

    def change_state(self, job_id: str, job_type: str, body: dict[str, Any]) -> Job:
        job = self._job(job_id, job_type)
        state = body.get("state")
        if state == UPLOAD_COMPLETE and job_type == INGEST:
            if job.state != OPEN:
                raise BulkError(409, "INVALIDJOBSTATE", f"Closing a job in state {job.state} is not allowed")
            if job.uploads > 1:
                raise BulkError(400, "INVALIDJOB", _MULTIPLE_UPLOADS.format(job_id=job.id))
            if not self.store.transition(job.id, UPLOAD_COMPLETE, (OPEN,)):
                raise BulkError(409, "INVALIDJOBSTATE", "The job's state changed while closing it")
            closed = self.store.get(job.id)
            self.runner.submit(job.id)
            assert closed is not None
            return closed
        if state == ABORTED:
            if job.state in TERMINAL_STATES:
                word = _ABORT_WORDS[job.state]
                raise BulkError(409, "INVALIDJOBSTATE", f"Aborting already {word} Job not allowed")
            if not self.store.transition(job.id, ABORTED, (OPEN, UPLOAD_COMPLETE, IN_PROGRESS)):
                raise BulkError(409, "INVALIDJOBSTATE", "The job finished while aborting it")
            aborted = self.store.get(job.id)
            assert aborted is not None
            return aborted
        raise BulkError(400, "INVALIDJOBSTATE", f"Invalid state for this request: {state}")

    def delete(self, job_id: str, job_type: str) -> None:
        job = self._job(job_id, job_type)
        if job.state not in (UPLOAD_COMPLETE, *TERMINAL_STATES):
            raise BulkError(409, "INVALIDJOBSTATE", f"Deleting a job in state {job.state} is not allowed")
        self.store.delete(job.id)

    def ingest_results(self, job_id: str, kind: str) -> str:
        job = self._job(job_id, INGEST)
        if kind == "unprocessed":
            return self._unprocessed(job)
        header = job.header
        if header is None:
            # Not processed (yet, or aborted first): the columns are still those of the upload.
            try:
                header, _ = parse_csv(self.store.upload_data(job.id), job.column_delimiter, job.line_ending)
            except CsvDataError:
                header = []
        rows = self.store.results(job.id, success=kind == "successful")
        first = ["sf__Id", "sf__Created" if kind == "successful" else "sf__Error"]
        return render_csv(
            first + (header or []),
            ([sf_id, detail, *row] for sf_id, detail, row in rows),
            job.column_delimiter,
            job.line_ending,
        )

    def _unprocessed(self, job: Job) -> str:
        data = self.store.upload_data(job.id)
        if not data:
            return ""
        try:
            header, rows = parse_csv(data, job.column_delimiter, job.line_ending)
        except CsvDataError:
            # Data that never parsed was never processed: hand it back as it came.
            return data.decode("utf-8", errors="replace")
        done = self.store.processed_indexes(job.id)
        return render_csv(
            header, (r for i, r in enumerate(rows) if i not in done), job.column_delimiter, job.line_ending
        )

    # -- query ----------------------------------------------------------------------------------

    def create_query(self, body: dict[str, Any], version: str, user_id: str) -> Job:
        operation = body.get("operation")
        if operation not in QUERY_OPERATIONS:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        soql = body.get("query")
        if not isinstance(soql, str) or not soql.strip():
            raise BulkError(400, "INVALIDJOB", "InvalidJob : A query is required for a query job")
        line_ending, delimiter = _csv_options(body)
        sobject, header, rows = run_query(self.org, soql, operation == "queryAll", version)
        job = self.store.create(
            job_type=QUERY,
            operation=operation,
            sobject=sobject,
            created_by_id=user_id,
            api_version=version,
            line_ending=line_ending,
            column_delimiter=delimiter,
            query=soql,
            state=UPLOAD_COMPLETE,
        )
        self.store.store_query_rows(job.id, header, rows)
        self.runner.submit(job.id)
        return job

    def query_page(self, job_id: str, locator: str | None, max_records: str | None) -> tuple[str, int, str]:
        job = self._job(job_id, QUERY)
        if job.state != JOB_COMPLETE:
            raise BulkError(
                409, "INVALIDJOBSTATE", f"Results are not available for a job in state {job.state}"
            )
        offset = 0
        if locator not in (None, "", "null"):
            decoded = decode_locator(locator)
            if decoded is None:
                raise BulkError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
            offset = decoded
        limit = None
        if max_records not in (None, ""):
            try:
                limit = int(max_records)
            except ValueError:
                limit = 0
            if limit < 1:
                raise BulkError(400, "INVALIDJOB", f"maxRecords must be a positive integer: {max_records}")
        rows = self.store.query_rows(job.id, offset, limit)
        following = offset + len(rows)
        next_locator = encode_locator(following) if following < self.store.query_row_count(job.id) else "null"
        text = render_csv(job.header or [], rows, job.column_delimiter, job.line_ending)
        return text, len(rows), next_locator

    # -- common ---------------------------------------------------------------------------------

    def job(self, job_id: str, job_type: str) -> Job:
        return self._job(job_id, job_type)

    def jobs(self, job_type: str) -> list[Job]:
        return self.store.jobs(job_type)

    def _job(self, job_id: str, job_type: str) -> Job:
        if len(job_id) == 15 and ids.is_valid(job_id):
            job_id = ids.to18(job_id)
        job = self.store.get(job_id)
        if job is None or job.job_type != job_type:
            raise _not_found()
        return job


def _csv_options(body: dict[str, Any]) -> tuple[str, str]:
    content_type = body.get("contentType", "CSV")
    if content_type != "CSV":
        raise BulkError(400, "INVALIDJOB", f"InvalidJob : Unsupported content type: {content_type}")
    line_ending = body.get("lineEnding", "LF")
    if line_ending not in LINE_ENDINGS:
        raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid line ending: {line_ending}")
    delimiter = body.get("columnDelimiter", "COMMA")
    if delimiter not in DELIMITERS:
        raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid column delimiter: {delimiter}")
    return line_ending, delimiter


def job_info(job: Job, full: bool) -> dict[str, Any]:
    """Job info as Salesforce answers it: the short form on create/close/list, the full one on GET."""
    info: dict[str, Any] = {
        "id": job.id,
        "operation": job.operation,
        "object": job.object,
        "createdById": job.created_by_id,
        "createdDate": job.created_date,
        "systemModstamp": job.system_modstamp,
        "state": job.state,
    }
    if job.external_id_field:
        info["externalIdFieldName"] = job.external_id_field
    info.update(
        concurrencyMode="Parallel", contentType="CSV", apiVersion=float(job.api_version), jobType=job.job_type
    )
    if job.job_type == INGEST and job.state == OPEN:
        info["contentUrl"] = f"services/data/v{job.api_version}/jobs/ingest/{job.id}/batches"
    info.update(lineEnding=job.line_ending, columnDelimiter=job.column_delimiter)
    if full:
        info["numberRecordsProcessed"] = job.records_processed
        if job.job_type == INGEST:
            info["numberRecordsFailed"] = job.records_failed
        info["retries"] = 0
        info["totalProcessingTime"] = job.total_processing_time
        if job.job_type == INGEST:
            info["apiActiveProcessingTime"] = job.api_active_processing_time
            info["apexProcessingTime"] = 0
        else:
            info["isPkChunkingSupported"] = False
    if job.error_message:
        info["errorMessage"] = job.error_message
    return info


# ------------------------------------------------------------------------------------------------
# HTTP

_service_lock = threading.Lock()


def get_service(state: Any) -> Bulk2Service:
    """The Bulk2Service of an app's `state`, created on first use (which resumes jobs a restart cut off).

    The app's lifespan calls it at startup, so that such jobs resume before the first Bulk request,
    and calls `close()` on it at shutdown.
    """
    service = getattr(state, "bulk2", None)
    if service is None:
        with _service_lock:
            service = getattr(state, "bulk2", None)
            if service is None:
                service = Bulk2Service(_db_path(state), state.org)
                state.bulk2 = service
    return service


def service_for(request: Request) -> Bulk2Service:
    return get_service(request.app.state)


def _db_path(state: Any) -> Path:
    data_dir = getattr(state, "data_dir", None)
    if data_dir is None:
        # An app built without a data dir (a bare test app) keeps its jobs for its own lifetime only.
        data_dir = tempfile.mkdtemp(prefix="bulk2-")
        log.warning("app.state.data_dir is not set: Bulk jobs are kept in %s", data_dir)
    return Path(data_dir) / DB_FILE


def _user_id(request: Request) -> str:
    session = getattr(request.state, "session", None)
    user_id = getattr(session, "user_id", None) or getattr(request.state, "user_id", None)
    if user_id:
        return str(user_id)
    users = getattr(getattr(request.app.state.org, "config", None), "users", None)
    return users[0].user_id if users else DEFAULT_USER_ID


Handler = Callable[[Request], Awaitable[Response]]


def _endpoint(methods: tuple[str, ...]) -> Callable[[Handler], Handler]:
    """Counts the call as `bulk`, answers other methods with 405 and errors in Bulk's JSON shape."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            request.state.call_kind = "bulk"
            if request.method not in methods:
                allowed = ",".join(methods)
                return _error_response(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}",
                )
            try:
                return await handler(request)
            except BulkError as exc:
                return _error_response(exc.status, exc.error_code, exc.message)
            except ApiError as exc:
                return JSONResponse(exc.to_body(), status_code=exc.status)

        return endpoint

    return wrap


def _error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"errorCode": code, "message": message}], status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
        body = replace_surrogates(body) if may_hold_surrogates(raw) else body
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BulkError(400, "JSON_PARSER_ERROR", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BulkError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return body


def _version(request: Request) -> str:
    return str(request.path_params.get("version", "59.0"))


def _csv_response(text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(text, media_type=CSV_MEDIA_TYPE, headers=headers)


def _jobs_endpoint(job_type: str, create: Callable[[Bulk2Service, dict, str, str], Job]) -> Handler:
    """GET lists the jobs of `job_type`; POST creates one with `create`."""

    @_endpoint(("GET", "POST"))
    async def jobs(request: Request) -> Response:
        service = service_for(request)
        if request.method == "GET":
            found = await run_in_threadpool(service.jobs, job_type)
            return JSONResponse(
                {"done": True, "records": [job_info(j, False) for j in found], "nextRecordsUrl": None}
            )
        body = await _json_body(request)
        job = await run_in_threadpool(create, service, body, _version(request), _user_id(request))
        return JSONResponse(job_info(job, False))

    return jobs


def _job_endpoint(job_type: str) -> Handler:
    """GET gives a job's full info, DELETE deletes it, PATCH changes its state."""

    @_endpoint(("GET", "PATCH", "DELETE"))
    async def job(request: Request) -> Response:
        service = service_for(request)
        job_id = request.path_params["job_id"]
        if request.method == "GET":
            found = await run_in_threadpool(service.job, job_id, job_type)
            return JSONResponse(job_info(found, True))
        if request.method == "DELETE":
            await run_in_threadpool(service.delete, job_id, job_type)
            return Response(status_code=204)
        body = await _json_body(request)
        changed = await run_in_threadpool(service.change_state, job_id, job_type, body)
        return JSONResponse(job_info(changed, False))

    return job


@_endpoint(("PUT",))
async def _ingest_batches(request: Request) -> Response:
    service = service_for(request)
    data = await request.body()
    await run_in_threadpool(service.upload, request.path_params["job_id"], data)
    return Response(status_code=201)


@_endpoint(("GET",))
async def _ingest_results(request: Request) -> Response:
    kind = _RESULT_KINDS.get(request.path_params["kind"].lower())
    if kind is None:
        raise _not_found()
    service = service_for(request)
    text = await run_in_threadpool(service.ingest_results, request.path_params["job_id"], kind)
    return _csv_response(text)


@_endpoint(("GET",))
async def _query_results(request: Request) -> Response:
    service = service_for(request)
    params = request.query_params
    text, count, locator = await run_in_threadpool(
        service.query_page, request.path_params["job_id"], params.get("locator"), params.get("maxRecords")
    )
    return _csv_response(text, {"Sforce-NumberOfRecords": str(count), "Sforce-Locator": locator})


@_endpoint(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
async def _unknown(request: Request) -> Response:
    raise _not_found()


# Every method reaches the endpoints, which answer unsupported ones in Salesforce's 405 shape.
_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _both(path: str, endpoint: Handler) -> list[BaseRoute]:
    # Salesforce answers with and without the trailing slash; a redirect would lose PUT/PATCH bodies.
    return [Route(path, endpoint, methods=_ALL_METHODS), Route(path + "/", endpoint, methods=_ALL_METHODS)]


def routes() -> list[BaseRoute]:
    """The Bulk API 2.0 routes, to be mounted under /services/data/v{version}/jobs."""
    return [
        *_both("/ingest", _jobs_endpoint(INGEST, Bulk2Service.create_ingest)),
        *_both("/ingest/{job_id}", _job_endpoint(INGEST)),
        *_both("/ingest/{job_id}/batches", _ingest_batches),
        *_both("/ingest/{job_id}/{kind}", _ingest_results),
        *_both("/query", _jobs_endpoint(QUERY, Bulk2Service.create_query)),
        *_both("/query/{job_id}", _job_endpoint(QUERY)),
        *_both("/query/{job_id}/results", _query_results),
        Route("/{rest:path}", _unknown, methods=_ALL_METHODS),
    ]
