"""The emulator's own admin API under /_emulator/ (not Salesforce): reset, records, calls, limits, faults.

No authentication; never counted as API calls. Errors come in Salesforce's REST shape
(`[{"message", "errorCode"}]`).

- `GET health` -> `{"status": "ok"}`.
- `POST reset` -> `{"reset": true}`: deletes every record and every Bulk API 2.0 job, forgets query
  cursors, puts the API allocation and the faults back to the config. Sessions, call counts and the
  read-only Organization row (built from the config) survive.
- `GET records/{sobject}` -> `{"totalSize": N, "records": [...]}`: every stored field of the live records.
  As in Salesforce, text is stored as UTF-8: a lone surrogate (JSON `"\\ud800"`) in a body becomes U+FFFD.
- `POST records/{sobject}` seeds records as a data load would (`Org.seed`), for tests: fields that
  clients cannot write (`IsConverted`, `CreatedDate`, `LastModifiedDate`, ...) may be set and required
  fields may be left out; names, types, lengths and picklist values are still checked; duplicate rules
  are not run. A Lead seeded with `IsConverted: true` and no `ConvertedContactId` is converted as
  convertLead does: a Contact and (without `ConvertedAccountId`) an Account are seeded from it. A JSON object
  seeds one record -> 201 `{"id": "<18-char id>"}`; a JSON list of objects seeds them all or none
  -> 201 `{"ids": [...]}` in list order. Bad JSON -> 400 `JSON_PARSER_ERROR`; an unknown object ->
  404 `NOT_FOUND`; a refused record -> 400 with its error code (`STRING_TOO_LONG`, `INVALID_FIELD`, ...).
- `GET calls` -> `{"total": N, "by_kind": {...}}`; `POST calls/reset` zeroes them.
- `POST sessions/expire` -> `{"expired": N}`.
- `GET|POST limits` (`{"remaining": N}`), `GET|POST faults` (see `emulator.config.Faults`). With
  `{"hold": true}` API calls wait, in flight, until the faults are set again without it (or reset).
- `POST in_flight/wait` (`{"count": N}`) -> `{"in_flight": n, "reached": true}` once at least N API
  calls are in flight (`false` after 20 s): with `hold`, tests fill the concurrent cap without racing.
- `POST bulk/wait` -> `{"idle": true}` once every Bulk API 2.0 job submitted so far has been processed
  (`false` after 30 s), so that tests need not poll.
"""

import dataclasses
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator import bulk2
from emulator.config import ConfigError, Faults
from emulator.errors import ApiError
from emulator.org import Org
from emulator.rest import in_org, read_json

log = logging.getLogger(__name__)
PREFIX = "/_emulator"
BULK_WAIT_SECONDS = 30.0
IN_FLIGHT_WAIT_SECONDS = 20.0  # below the admin client's 30 s timeout, so that it gets the answer


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/health", health, methods=["GET"]),
        Route(f"{PREFIX}/reset", reset, methods=["POST"]),
        Route(f"{PREFIX}/records/{{sobject}}", records, methods=["GET", "POST"]),
        Route(f"{PREFIX}/calls", calls, methods=["GET"]),
        Route(f"{PREFIX}/calls/reset", reset_calls, methods=["POST"]),
        Route(f"{PREFIX}/sessions/expire", expire_sessions, methods=["POST"]),
        Route(f"{PREFIX}/limits", set_limits, methods=["GET", "POST"]),
        Route(f"{PREFIX}/faults", set_faults, methods=["GET", "POST"]),
        Route(f"{PREFIX}/bulk/wait", wait_for_bulk, methods=["POST"]),
        Route(f"{PREFIX}/in_flight/wait", wait_for_in_flight, methods=["POST"]),
    ]


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def reset(request: Request) -> Response:
    """Deletes every record and Bulk job, forgets query cursors; the allocation and faults go back to config.

    Sessions survive (a test's logged-in client stays usable); calls are reset by `calls/reset`.
    """
    state = request.app.state
    # Jobs first: a job still running would otherwise write records into the emptied org.
    await in_org(bulk2.get_service(state).reset)
    await in_org(state.org.reset)
    state.cursors.clear()
    state.usage.reset()
    state.faults.set(state.config.faults)
    log.info("org reset")
    return JSONResponse({"reset": True})


async def records(request: Request) -> Response:
    org, sobject = request.app.state.org, request.path_params["sobject"]
    if request.method == "POST":
        return await _seed(request, org, sobject)
    found = await in_org(org.records, sobject)
    return JSONResponse({"totalSize": len(found), "records": found})


async def _seed(request: Request, org: Org, sobject: str) -> Response:
    body = await read_json(request)
    org.canonical_sobject(sobject)  # an unknown object is 404 even for an empty list
    if isinstance(body, dict):
        return JSONResponse({"id": await in_org(org.seed, sobject, body)}, 201)
    if isinstance(body, list) and all(isinstance(item, dict) for item in body):
        return JSONResponse({"ids": await in_org(_seed_all, org, sobject, body)}, 201)
    raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object or a list of JSON objects")


def _seed_all(org: Org, sobject: str, bodies: list[dict]) -> list[str]:
    with org.transaction():  # all or none: a refused record leaves no half-seeded list behind
        return [org.seed(sobject, body) for body in bodies]


async def calls(request: Request) -> Response:
    return JSONResponse(request.app.state.calls.snapshot())


async def reset_calls(request: Request) -> Response:
    request.app.state.calls.reset()
    return JSONResponse(request.app.state.calls.snapshot())


async def expire_sessions(request: Request) -> Response:
    return JSONResponse({"expired": request.app.state.sessions.expire_all()})


async def set_limits(request: Request) -> Response:
    usage = request.app.state.usage
    if request.method == "POST":
        body = await _object(request)
        remaining = body.get("remaining")
        if not isinstance(remaining, int) or isinstance(remaining, bool) or remaining < 0:
            raise ApiError(400, "INVALID_INPUT", "'remaining' must be a non-negative integer")
        usage.set_remaining(remaining)
    return JSONResponse({"max": usage.max, "used": usage.used, "remaining": usage.remaining})


async def set_faults(request: Request) -> Response:
    """POST replaces the faults: keys left out take their defaults (off)."""
    injector = request.app.state.faults
    if request.method == "POST":
        body = await _object(request)
        known = {f.name for f in dataclasses.fields(Faults)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ApiError(400, "INVALID_INPUT", f"unknown key(s) {unknown}; allowed: {sorted(known)}")
        if "error_kinds" in body:
            body["error_kinds"] = tuple(body["error_kinds"] or ())
        try:
            injector.set(Faults(**body))
        except (ConfigError, TypeError) as exc:
            raise ApiError(400, "INVALID_INPUT", str(exc)) from None
        log.info("faults set to %s", injector.faults)
    return JSONResponse(dataclasses.asdict(injector.faults))


async def wait_for_bulk(request: Request) -> Response:
    # The lifespan creates the service at startup; without one, no job can be running.
    service = getattr(request.app.state, "bulk2", None)
    idle = service is None or await in_org(service.runner.wait_idle, BULK_WAIT_SECONDS)
    return JSONResponse({"idle": idle})


async def wait_for_in_flight(request: Request) -> Response:
    count = (await _object(request)).get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ApiError(400, "INVALID_INPUT", "'count' must be a non-negative integer")
    in_flight = request.app.state.in_flight
    reached = await in_flight.wait_for(count, IN_FLIGHT_WAIT_SECONDS)
    return JSONResponse({"in_flight": in_flight.count, "reached": reached})


async def _object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    return body
