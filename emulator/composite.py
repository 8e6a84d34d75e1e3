"""sObject Collections (/composite/sobjects) and Composite (/composite): many operations, one API call."""

import itertools
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.errors import ApiError, MultipleChoicesError, RecordError
from emulator.org import DEFAULT_VERSION, Org
from emulator.responses import JSONResponse
from emulator.rest import allow_save, in_org, org_of, read_json, version_of
from emulator.versions import version_error

MAX_COLLECTION = 200
MAX_CHUNKS = 10  # runs of consecutive records of one object type in one collections request
MAX_SUBREQUESTS = 25
MAX_QUERY_SUBREQUESTS = 5  # Query, QueryAll (and Query More) subrequests among them
LOCK_FAULT = "UNABLE_TO_LOCK_ROW"
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}
HALTED = "The transaction was rolled back since another operation in the same transaction failed."
_REFERENCE = re.compile(r"@\{([^}]+)\}")
_REF_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_SUB_URL = re.compile(r"/services/data/v([^/]*)(/[^?]*)")


def routes() -> list[Route]:
    return [
        Route("/composite/sobjects", collections, methods=["POST", "PATCH", "DELETE"]),
        Route("/composite/sobjects/{sobject}/{field}", collections_upsert, methods=["PATCH"]),
        Route("/composite", composite, methods=["POST"]),
    ]


# -------------------------------------------------------------------------------- sObject Collections


@dataclass
class _Outcome:
    record_id: str | None
    errors: list[dict]
    created: bool | None = None  # upserts only: an UpsertResult also says whether it created

    def body(self) -> dict:
        out = {"id": self.record_id, "success": not self.errors, "errors": self.errors}
        if self.created is not None:
            out["created"] = self.created
        return out


_Operation = Callable[[Org, Any], _Outcome]


class _Rollback(Exception):
    pass


def record_errors(exc: ApiError) -> list[dict]:
    """An error in the collections shape (`statusCode`)."""
    if isinstance(exc, RecordError):
        return [dict(e) for e in exc.errors]
    return [{"statusCode": exc.error_code, "message": exc.message, "fields": list(exc.fields or [])}]


async def collections(request: Request) -> Response:
    operation, keep_ids = _OPERATIONS[request.method]
    operation = _saving(operation, request.method, allow_save(request), version_of(request))
    return await _collection(request, operation, keep_ids)


async def collections_upsert(request: Request) -> Response:
    """PATCH /composite/sobjects/{sobject}/{field} (API 46.0+): upserts by an external id, in order."""
    org, sobject, field = org_of(request), request.path_params["sobject"], request.path_params["field"]
    operation = await in_org(_upsert_operation, org, sobject, field)
    operation = _saving(operation, "PATCH", allow_save(request), version_of(request))
    return await _collection(request, operation, keep_ids=False)


def _saving(operation: _Operation, method: str, allow: bool, version: str) -> _Operation:
    """`operation` told what the request says about duplicate rules; a delete has nothing to compare."""
    if method == "DELETE":
        return operation
    return partial(operation, allow_save=allow, version=version)


def _upsert_operation(org: Org, sobject: str, field: str) -> _Operation:
    obj = org.object(sobject)  # an unknown object is 404, as for one record
    meta = obj.field(field)
    if meta is None or not (meta.external_id or meta.id_lookup) or meta.type == "id":
        # "Only external ids are supported. Don't use record ids." (REST guide); the answer for an
        # unusable field is the one upsert of a single record gives.
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return partial(_upsert_one, sobject=obj.name, field=meta.name)


async def _collection(request: Request, operation: _Operation, keep_ids: bool) -> Response:
    body = None if request.method == "DELETE" else await read_json(request)
    org = org_of(request)
    items, all_or_none = _collection_items(org, request.method, body, dict(request.query_params))
    if request.state.fault == LOCK_FAULT:
        lock = {
            "statusCode": LOCK_FAULT,
            "message": "unable to obtain exclusive access to this record",
            "fields": [],
        }
        return JSONResponse([_Outcome(None, [dict(lock)]).body() for _ in items])
    outcomes = await in_org(_run_collection, org, operation, items, all_or_none, keep_ids)
    return JSONResponse([o.body() for o in outcomes])


def _collection_items(org: Org, method: str, body: Any, params: dict[str, str]) -> tuple[list[Any], bool]:
    """The records (or, for DELETE, the ids) of a collections request and its allOrNone flag."""
    if method == "DELETE":
        ids = [i for i in params.get("ids", "").split(",") if i.strip()]
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        items: list[Any] = ids
        all_or_none = params.get("allOrNone", "false").lower() == "true"
    else:
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object with a 'records' array")
        items = records
        all_or_none = body.get("allOrNone") is True
    if len(items) > MAX_COLLECTION:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call",
        )
    if method != "DELETE" and _chunk_count(org, items) > MAX_CHUNKS:
        # Salesforce documents the limit ("A single request can process up to 10 chunks"), not the
        # answer. The message is the platform's own for this limit (Apex and SOAP DML); the code is the
        # closest StatusCode Salesforce has ("too many object types in one call"). Nothing is saved.
        raise ApiError(
            400,
            "EXCEEDED_MAX_TYPES_LIMIT",
            f"Cannot have more than {MAX_CHUNKS} chunks in a single operation. "
            "Please rearrange the data to reduce chunking.",
        )
    return items, all_or_none


def _run_collection(
    org: Org, operation: _Operation, items: list[Any], all_or_none: bool, keep_ids: bool
) -> list[_Outcome]:
    if not all_or_none:
        # One commit for the request, as Salesforce commits a request at its end (a failed record
        # writes nothing, so it needs no savepoint of its own); 200 commits would cost more than the work.
        with org.transaction():
            return [operation(org, item) for item in items]
    outcomes: list[_Outcome] = []
    try:
        with org.transaction():
            outcomes = [operation(org, item) for item in items]
            if any(o.errors for o in outcomes):
                raise _Rollback
    except _Rollback:
        # Nothing was saved: every record that did not fail itself reports the rollback.
        return [
            o
            if o.errors
            else _Outcome(
                o.record_id if keep_ids else None, [dict(ROLLED_BACK)], None if o.created is None else False
            )
            for o in outcomes
        ]
    return outcomes


def _chunk_count(org: Org, items: list[Any]) -> int:
    """How many chunks Salesforce processes `items` in: {a1, a2, c1, a3} is three ({a1, a2}, {c1}, {a3})."""
    return sum(1 for _ in itertools.groupby(_chunk_type(org, item) for item in items))


def _chunk_type(org: Org, item: Any) -> str:
    # The object a record is for: its attributes.type or, for an update without one, its id's prefix.
    if not isinstance(item, dict):
        return ""
    attributes = item.get("attributes")
    name = attributes.get("type") if isinstance(attributes, dict) else None
    record_id = next((v for k, v in item.items() if k.lower() == "id"), None)
    try:
        if isinstance(name, str) and name:
            return org.canonical_sobject(name)
        return org.sobject_of_id(record_id) if isinstance(record_id, str) else ""
    except ApiError:
        return str(name or record_id or "")  # refused per record later; an unknown name is a type of its own


def _split(item: Any) -> tuple[str | None, dict]:
    if not isinstance(item, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
    attributes = item.get("attributes")
    sobject = attributes.get("type") if isinstance(attributes, dict) else None
    if isinstance(sobject, int | float) and not isinstance(sobject, bool):
        sobject = str(sobject)  # read as text, as Salesforce's JSON reader does: an unknown type
    elif sobject is not None and not isinstance(sobject, str):
        raise ApiError(400, "JSON_PARSER_ERROR", "attributes.type must be the name of an object")
    return sobject, {k: v for k, v in item.items() if k != "attributes"}


def _create_one(org: Org, item: Any, allow_save: bool = False, version: str = DEFAULT_VERSION) -> _Outcome:
    try:
        sobject, fields = _split(item)
        if not sobject:
            raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        return _Outcome(org.create(sobject, fields, allow_save=allow_save, version=version), [])
    except ApiError as exc:
        return _Outcome(None, record_errors(exc))


def _update_one(org: Org, item: Any, allow_save: bool = False, version: str = DEFAULT_VERSION) -> _Outcome:
    try:
        sobject, fields = _split(item)
        id_key = next((k for k in fields if k.lower() == "id"), None)
        record_id = fields.pop(id_key) if id_key else None
        if not isinstance(record_id, str) or not record_id:
            raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", [])
        # A SaveResult names the record by its 18-character id, whichever form the request used.
        sobject = sobject or org.sobject_of_id(record_id)
        return _Outcome(org.update(sobject, record_id, fields, allow_save=allow_save, version=version), [])
    except ApiError as exc:
        return _Outcome(None, record_errors(exc))


def _upsert_one(
    org: Org,
    item: Any,
    sobject: str,
    field: str,
    allow_save: bool = False,
    version: str = DEFAULT_VERSION,
) -> _Outcome:
    try:
        item_type, fields = _split(item)
        if item_type and item_type.lower() != sobject.lower():
            # "The list can contain objects only of the type indicated in the request URI." The answer's
            # wording is not documented; INVALID_TYPE is Salesforce's code for a record of the wrong type.
            raise ApiError(400, "INVALID_TYPE", f"This request only accepts records of type {sobject}.", [])
        key_name = next((k for k in fields if k.lower() == field.lower()), None)
        key = fields.get(key_name) if key_name else None
        if key is None or key == "":
            raise ApiError(400, "MISSING_ARGUMENT", f"{field} not specified", [])
        record_id, created = org.upsert(sobject, field, str(key), fields, version, allow_save=allow_save)
        return _Outcome(record_id, [], created)
    except MultipleChoicesError as exc:
        # Salesforce's StatusCode for an upsert key that matches several records (as in Bulk results).
        found = ", ".join(u.rsplit("/", 1)[-1] for u in exc.urls)
        message = f"{field}: more than one record found for external id field: [{found}]"
        return _Outcome(
            None, [{"statusCode": "DUPLICATE_EXTERNAL_ID", "message": message, "fields": [field]}], False
        )
    except ApiError as exc:
        return _Outcome(None, record_errors(exc), False)


def _delete_one(org: Org, record_id: Any) -> _Outcome:
    try:
        return _Outcome(org.delete(org.sobject_of_id(record_id), record_id), [])
    except ApiError as exc:
        # A DeleteResult names the record it tried to delete, even when that failed.
        return _Outcome(record_id, record_errors(exc))


# A collections method: what it does to one item, and whether a rolled-back result keeps the item's id.
_OPERATIONS: dict[str, tuple[_Operation, bool]] = {
    "POST": (_create_one, False),
    "PATCH": (_update_one, False),
    "DELETE": (_delete_one, True),
}


# --------------------------------------------------------------------------------------- Composite


@dataclass
class _SubResult:
    reference_id: str | None
    status: int
    body: Any
    headers: dict
    # An sObject Collections subrequest answers 200 with per-record errors; any of them fails it for the
    # composite's allOrNone as an error status does.
    failed: bool = False

    def __post_init__(self) -> None:
        self.failed = self.failed or self.status >= 300

    def as_json(self) -> dict:
        return {
            "body": self.body,
            "httpHeaders": self.headers,
            "httpStatusCode": self.status,
            "referenceId": self.reference_id,
        }


async def composite(request: Request) -> Response:
    body = await read_json(request)
    subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subrequests, list) or not subrequests:
        raise ApiError(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty array of subrequests")
    if len(subrequests) > MAX_SUBREQUESTS:
        return _limit_exceeded(f"The request can’t contain more than {MAX_SUBREQUESTS} operations.")
    for sub in subrequests:
        if not isinstance(sub, dict) or not isinstance(sub.get("referenceId"), str) or not sub.get("url"):
            raise ApiError(400, "JSON_PARSER_ERROR", "Each subrequest needs method, url and referenceId")
    if sum(1 for sub in subrequests if _is_query(sub)) > MAX_QUERY_SUBREQUESTS:
        # Answered as the 25-subrequest limit is: documented limits of one request, nothing is run.
        return _limit_exceeded(
            f"The request can’t contain more than {MAX_QUERY_SUBREQUESTS} query operations."
        )
    all_or_none = body.get("allOrNone") is True
    # The request's Sforce-Duplicate-Rule-Header holds for every subrequest.
    results = await in_org(
        _run_composite, org_of(request), version_of(request), subrequests, all_or_none, allow_save(request)
    )
    return JSONResponse({"compositeResponse": [r.as_json() for r in results]})


def _limit_exceeded(message: str) -> Response:
    # What Salesforce answers (HTTP 200): a single subresponse carrying the error.
    error = {"errorCode": "LIMIT_EXCEEDED", "message": message}
    return JSONResponse({"compositeResponse": [_SubResult(None, 400, [error], {}).as_json()]})


def _is_query(sub: dict) -> bool:
    if str(sub.get("method", "GET")).upper() != "GET":
        return False
    match = _SUB_URL.fullmatch(urllib.parse.urlsplit(str(sub["url"])).path)
    head = match.group(2).strip("/").split("/")[0] if match else ""
    return head in ("query", "queryAll")


def _run_composite(
    org: Org, version: str, subrequests: list[dict], all_or_none: bool, allow: bool = False
) -> list[_SubResult]:
    done: dict[str, Any] = {}
    results: list[_SubResult] = []
    if not all_or_none:
        for sub in subrequests:
            result = _run_sub(org, sub, done, False, allow)
            done[sub["referenceId"]] = result.body if result.status < 300 else None
            results.append(result)
        return results
    try:
        with org.transaction():
            for sub in subrequests:
                result = _run_sub(org, sub, done, True, allow)
                results.append(result)
                if result.failed:
                    raise _Rollback
                done[sub["referenceId"]] = result.body
    except _Rollback:
        # Everything is rolled back: the failed subrequest keeps its error, every other one is halted.
        failed = len(results) - 1
        halted = [{"errorCode": "PROCESSING_HALTED", "message": HALTED}]
        return [
            results[i] if i == failed else _SubResult(sub["referenceId"], 400, halted, {})
            for i, sub in enumerate(subrequests)
        ]
    return results


def _run_sub(org: Org, sub: dict, done: dict[str, Any], all_or_none: bool, allow: bool) -> _SubResult:
    ref = sub["referenceId"]
    try:
        url = _resolve(sub["url"], done)
        body = _resolve(sub.get("body"), done)
        method = str(sub.get("method", "GET")).upper()
        version, parts, params = _parse_url(str(url))
        if parts[:2] == ["composite", "sobjects"]:
            return _collection_sub(org, ref, method, version, parts, params, body, all_or_none, allow)
        status, out, headers = _dispatch(org, method, version, parts, params, body, allow)
        return _SubResult(ref, status, out, headers)
    except MultipleChoicesError as exc:
        return _SubResult(ref, 300, exc.to_body(), {})
    except ApiError as exc:
        return _SubResult(ref, exc.status, exc.to_body(), {})


def _resolve(value: Any, done: dict[str, Any]) -> Any:
    """Replaces @{ref.path} expressions with values from earlier subresponses."""
    if isinstance(value, dict):
        return {k: _resolve(v, done) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, done) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole:
        return _lookup(whole.group(1), done)
    return _REFERENCE.sub(lambda m: str(_lookup(m.group(1), done)), value)


def _lookup(expression: str, done: dict[str, Any]) -> Any:
    name, _, _rest = expression.partition(".")
    name = name.split("[")[0]
    missing = ApiError(
        400,
        "PROCESSING_HALTED",
        f"Invalid reference specified. No value for {expression} found in {name}. "
        f"Provided referenceId ('{name}') was not found in any previous subrequest "
        "or that subrequest failed.",
    )
    value = done.get(name)
    if value is None:
        raise missing
    for match in _REF_STEP.finditer(expression[len(name) :]):
        key, index = match.groups()
        try:
            value = value[key] if key is not None else value[int(index)]
        except (KeyError, IndexError, TypeError):
            raise missing from None
    return value


def _parse_url(url: str) -> tuple[str, list[str], dict[str, str]]:
    """(version, path segments below it, query parameters) of a subrequest's url."""
    parsed = urllib.parse.urlsplit(url)
    match = _SUB_URL.fullmatch(parsed.path.rstrip("/") or "/")
    if match is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    version, path = match.groups()
    error = version_error(version, path)  # as for a request of its own: retired 410, unknown 404
    if error is not None:
        raise error
    parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
    return version, parts, dict(urllib.parse.parse_qsl(parsed.query))


def _collection_sub(
    org: Org,
    ref: str,
    method: str,
    version: str,
    parts: list[str],
    params: dict[str, str],
    body: Any,
    all_or_none: bool,
    allow: bool,
) -> _SubResult:
    """An sObject Collections subrequest: its body is the list of results the resource itself answers.

    "If the Composite request has allOrNone set to true, then the all-or-none behavior also applies to
    each of the sObject Collections subrequests, overriding the value of allOrNone in the subrequests"
    ("allOrNone Parameters in Composite and Collections Requests"); otherwise the subrequest's own flag.
    """
    if len(parts) == 2 and method in _OPERATIONS:
        operation, keep_ids = _OPERATIONS[method]
    elif len(parts) == 4 and method == "PATCH":
        operation, keep_ids = _upsert_operation(org, parts[2], parts[3]), False
    else:
        path = "/" + "/".join(parts)
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed for {path}")
    operation = _saving(operation, method, allow, version)
    items, own_all_or_none = _collection_items(org, method, body, params)
    outcomes = _run_collection(org, operation, items, all_or_none or own_all_or_none, keep_ids)
    return _SubResult(ref, 200, [o.body() for o in outcomes], {}, any(o.errors for o in outcomes))


def _dispatch(
    org: Org, method: str, version: str, parts: list[str], params: dict[str, str], body: Any, allow: bool
) -> tuple[int, Any, dict]:
    head = parts[0] if parts else ""
    if head in ("query", "queryAll") and len(parts) == 1 and method == "GET":
        result = org.query(params.get("q", ""), head == "queryAll", version)
        if isinstance(result, int):
            return 200, {"totalSize": result, "done": True, "records": []}, {}
        return 200, {"totalSize": len(result), "done": True, "records": result}, {}
    if head != "sobjects" or not 1 <= len(parts) <= 4:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if len(parts) == 1 and method == "GET":
        return 200, org.describe_global(version), {}
    sobject = parts[1] if len(parts) > 1 else ""
    if len(parts) == 2 and method == "POST":
        record_id = org.create(sobject, _record_body(body), allow_save=allow, version=version)
        location = f"/services/data/v{version}/sobjects/{org.canonical_sobject(sobject)}/{record_id}"
        return 201, {"id": record_id, "success": True, "errors": []}, {"Location": location}
    if len(parts) == 2 and method == "GET":
        return 200, org.metadata(sobject, version), {}
    if len(parts) == 3 and parts[2] == "describe" and method == "GET":
        return 200, org.describe(sobject, version), {}
    if len(parts) == 3 and method == "GET":
        fields = [f for f in params.get("fields", "").split(",") if f.strip()] or None
        return 200, org.get(sobject, parts[2], fields, version), {}
    if len(parts) == 3 and method == "PATCH":
        org.update(sobject, parts[2], _record_body(body), allow_save=allow, version=version)
        return 204, None, {}
    if len(parts) == 3 and method == "DELETE":
        org.delete(sobject, parts[2])
        return 204, None, {}
    if len(parts) == 4 and method == "PATCH":
        update_only = params.get("updateOnly", "false").lower() == "true"
        record_id, created = org.upsert(
            sobject, parts[2], parts[3], _record_body(body), version, update_only, allow_save=allow
        )
        return (
            (201 if created else 200),
            {"id": record_id, "success": True, "errors": [], "created": created},
            {},
        )
    path = "/" + "/".join(parts)
    raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed for {path}")


def _record_body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The subrequest body must be a JSON object")
    return body
