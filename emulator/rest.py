"""REST API resources: versions, resources, limits, query with paging, and sObject describe/CRUD/upsert."""

import itertools
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator import duplicates, ids
from emulator.errors import ApiError, MultipleChoicesError
from emulator.org import Org
from emulator.responses import JSONResponse
from emulator.surrogates import may_hold_surrogates, replace_surrogates
from emulator.validation import exact_integer
from emulator.versions import version_list

T = TypeVar("T")

DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
_BATCH_SIZE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def routes() -> list[Route]:
    """Routes below /services/data/v{version} (trailing slashes are stripped before routing)."""
    return [
        Route("/limits", limits, methods=["GET"]),
        Route("/query", query, methods=["GET"]),
        Route("/queryAll", query, methods=["GET"]),
        Route("/query/{locator}", query_more, methods=["GET"]),
        Route("/queryAll/{locator}", query_more, methods=["GET"]),
        Route("/sobjects", describe_global, methods=["GET"]),
        Route("/sobjects/{sobject}", sobject_root, methods=["GET", "POST"]),
        Route("/sobjects/{sobject}/describe", describe, methods=["GET"]),
        Route("/sobjects/{sobject}/{record_id}", record, methods=["GET", "PATCH", "DELETE"]),
        Route("/sobjects/{sobject}/{field}", create_by_null_id, methods=["POST"]),
        Route("/sobjects/{sobject}/{field}/{value}", by_external_id, methods=["GET", "PATCH"]),
    ]


# -------------------------------------------------------------------------------------------- helpers


async def in_org(fn: Callable[..., T], *args: Any) -> T:
    """Runs an Org call off the event loop: Bulk jobs may hold the org's lock for a while."""
    return await run_in_threadpool(fn, *args)


async def read_json(request: Request) -> Any:
    """The request's JSON body, or ApiError JSON_PARSER_ERROR in the style of Salesforce's parser."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(
            400, "JSON_PARSER_ERROR", "No content to map due to end-of-input at [line:1, column:0]"
        )
    try:
        # Salesforce reads bodies as UTF-8 only (json.loads would also guess UTF-16/32 from a BOM).
        body = json.loads(raw.decode("utf-8"), parse_int=exact_integer)
        # Stored as Salesforce stores text (UTF-8): a lone surrogate escape would fail every response.
        return replace_surrogates(body) if may_hold_surrogates(raw) else body
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, "JSON_PARSER_ERROR", f"Invalid UTF-8 start byte at [line:1, column:{exc.start + 1}]"
        ) from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "JSON_PARSER_ERROR", f"{exc.msg} at [line:{exc.lineno}, column:{exc.colno}]"
        ) from None
    except RecursionError:
        raise ApiError(
            400, "JSON_PARSER_ERROR", "Maximum nesting depth exceeded at [line:1, column:1]"
        ) from None


async def read_record(request: Request) -> dict:
    body = await read_json(request)
    if not isinstance(body, dict):
        token = "START_ARRAY" if isinstance(body, list) else "VALUE"
        raise ApiError(
            400, "JSON_PARSER_ERROR", f"Cannot deserialize SObject out of {token} token at [line:1, column:1]"
        )
    return body


def org_of(request: Request) -> Org:
    return request.app.state.org


def version_of(request: Request) -> str:
    return request.path_params["version"]


def allow_save(request: Request) -> bool:
    """Whether the request asks to save despite duplicate rules that only alert (header names ignore case)."""
    return duplicates.allows_save(request.headers.get(duplicates.HEADER))


def saving(request: Request) -> dict[str, Any]:
    """The keyword arguments of Org's create, update and upsert that come from the request."""
    return {"allow_save": allow_save(request), "version": version_of(request)}


# ------------------------------------------------------------------------------ versions, resources


async def versions(request: Request) -> Response:
    # Not an API call against the allocation (no session needed), but counted by kind.
    request.app.state.calls.count("versions")
    return JSONResponse(version_list())


async def resources(request: Request) -> Response:
    base = f"/services/data/v{version_of(request)}"
    names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs", "search", "recent", "tooling")
    return JSONResponse({name: f"{base}/{name}" for name in names})


async def limits(request: Request) -> Response:
    usage = request.app.state.usage
    body = {
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        "DailyApiRequests": {"Max": usage.max, "Remaining": usage.remaining},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024},
        "FileStorageMB": {"Max": 1024, "Remaining": 1024},
    }
    return JSONResponse(body)


# ------------------------------------------------------------------------------------------- query


class QueryCursors:
    """Server-side query locators for nextRecordsUrl; idle ones expire like Salesforce's (15 min)."""

    def __init__(
        self, max_open: int = 200, idle_seconds: float = 900.0, clock: Callable[[], float] = time.monotonic
    ):
        self.max_open = max_open
        self.idle = idle_seconds
        self.clock = clock
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._open: OrderedDict[str, tuple[list[dict], int, float]] = OrderedDict()

    def open(self, records: list[dict], batch: int) -> str:
        locator = ids.make_id("01g", next(self._seq))
        with self._lock:
            self._open[locator] = (records, batch, self.clock())
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)
        return locator

    def get(self, locator: str) -> tuple[list[dict], int] | None:
        with self._lock:
            entry = self._open.get(locator)
            if entry is None or self.clock() - entry[2] > self.idle:
                self._open.pop(locator, None)
                return None
            self._open[locator] = (entry[0], entry[1], self.clock())
            self._open.move_to_end(locator)
            return entry[0], entry[1]

    def clear(self) -> None:
        with self._lock:
            self._open.clear()


def batch_size(request: Request) -> int:
    match = _BATCH_SIZE.search(request.headers.get("sforce-query-options", ""))
    if match is None:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(MAX_BATCH, int(match.group(1))))


def query_page(
    request: Request, records: list[dict], start: int, batch: int, locator: str | None
) -> Response:
    end = min(start + batch, len(records))
    body: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records)}
    if end < len(records):
        if locator is None:
            locator = request.app.state.cursors.open(records, batch)
        body["nextRecordsUrl"] = f"/services/data/v{version_of(request)}/query/{locator}-{end}"
    body["records"] = records[start:end]
    return JSONResponse(body)


async def query(request: Request) -> Response:
    soql = request.query_params.get("q")
    if not soql:
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    include_deleted = request.url.path.rstrip("/").endswith("queryAll")
    result = await in_org(org_of(request).query, soql, include_deleted, version_of(request))
    if isinstance(result, int):
        return JSONResponse({"totalSize": result, "done": True, "records": []})
    return query_page(request, result, 0, batch_size(request), None)


async def query_more(request: Request) -> Response:
    locator, _, offset = request.path_params["locator"].rpartition("-")
    cursor = request.app.state.cursors.get(locator) if offset.isdigit() else None
    if cursor is None:
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    records, batch = cursor
    if int(offset) > len(records):
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    if "sforce-query-options" in request.headers:
        batch = batch_size(request)
    return query_page(request, records, int(offset), batch, locator)


# ---------------------------------------------------------------------------------------- sObjects


async def describe_global(request: Request) -> Response:
    return JSONResponse(await in_org(org_of(request).describe_global, version_of(request)))


async def describe(request: Request) -> Response:
    org = org_of(request)
    return JSONResponse(await in_org(org.describe, request.path_params["sobject"], version_of(request)))


async def sobject_root(request: Request) -> Response:
    org, sobject = org_of(request), request.path_params["sobject"]
    if request.method in ("GET", "HEAD"):  # Starlette routes HEAD to GET handlers
        return JSONResponse(await in_org(org.metadata, sobject, version_of(request)))
    body = await read_record(request)
    record_id = await in_org(partial(org.create, sobject, body, **saving(request)))
    return JSONResponse({"id": record_id, "success": True, "errors": []}, 201)


async def record(request: Request) -> Response:
    org, sobject, record_id = (
        org_of(request),
        request.path_params["sobject"],
        request.path_params["record_id"],
    )
    if request.method in ("GET", "HEAD"):  # HEAD is a GET without the body, never a DELETE
        fields = request.query_params.get("fields")
        names = [f for f in fields.split(",") if f.strip()] if fields else None
        return JSONResponse(await in_org(org.get, sobject, record_id, names, version_of(request)))
    if request.method == "PATCH":
        body = await read_record(request)
        await in_org(partial(org.update, sobject, record_id, body, **saving(request)))
    elif request.method == "DELETE":
        await in_org(org.delete, sobject, record_id)
    return Response(status_code=204)


async def create_by_null_id(request: Request) -> Response:
    """POST /sobjects/{sobject}/Id: "In API version 37.0 and later, you can use this resource to create a
    record by POSTing to /vXX.X/sobjects/SObjectName/Id" (an upsert on Id with a null value)."""
    org, sobject, field = org_of(request), request.path_params["sobject"], request.path_params["field"]
    if field.lower() != "id":
        # Any other record id refuses POST as sObject Rows does; app.http_error words the 405.
        raise HTTPException(405, headers={"Allow": "HEAD, GET, PATCH, DELETE"})
    body = await read_record(request)
    record_id = await in_org(partial(org.create, sobject, body, **saving(request)))
    return JSONResponse({"id": record_id, "success": True, "errors": [], "created": True}, 201)


async def by_external_id(request: Request) -> Response:
    org, sobject = org_of(request), request.path_params["sobject"]
    field, value = request.path_params["field"], request.path_params["value"]
    if request.method == "PATCH":
        body = await read_record(request)
        update_only = request.query_params.get("updateOnly", "false").lower() == "true"
        try:
            record_id, created = await in_org(
                partial(
                    org.upsert,
                    sobject,
                    field,
                    value,
                    body,
                    version_of(request),
                    update_only,
                    allow_save=allow_save(request),
                )
            )
        except MultipleChoicesError as exc:
            return JSONResponse(exc.to_body(), 300)
        return JSONResponse(
            {"id": record_id, "success": True, "errors": [], "created": created}, 201 if created else 200
        )
    return await _get_by_external_id(request, org, sobject, field, value)


async def _get_by_external_id(request: Request, org: Org, sobject: str, field: str, value: str) -> Response:
    version = version_of(request)
    meta = await in_org(org.describe, sobject, version)
    known = {f["name"].lower(): f for f in meta["fields"]}
    target = known.get(field.lower())
    if not _IDENTIFIER.fullmatch(field) or target is None or not (target["externalId"] or target["idLookup"]):
        raise ApiError(
            404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}"
        )
    literal = value.replace("\\", "\\\\").replace("'", "\\'")
    matches = await in_org(
        org.query, f"SELECT Id FROM {meta['name']} WHERE {target['name']} = '{literal}'", False, version
    )
    assert isinstance(matches, list)
    if not matches:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if len(matches) > 1:
        return JSONResponse([m["attributes"]["url"] for m in matches], 300)
    return JSONResponse(await in_org(org.get, meta["name"], matches[0]["Id"], None, version))
