"""The emulator's own admin API under /_emulator/ (not Salesforce): reset, records, calls, limits, faults."""

import dataclasses
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.config import ConfigError, Faults
from emulator.errors import ApiError
from emulator.rest import in_org, read_json

log = logging.getLogger(__name__)
PREFIX = "/_emulator"


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/health", health, methods=["GET"]),
        Route(f"{PREFIX}/reset", reset, methods=["POST"]),
        Route(f"{PREFIX}/records/{{sobject}}", records, methods=["GET"]),
        Route(f"{PREFIX}/calls", calls, methods=["GET"]),
        Route(f"{PREFIX}/calls/reset", reset_calls, methods=["POST"]),
        Route(f"{PREFIX}/sessions/expire", expire_sessions, methods=["POST"]),
        Route(f"{PREFIX}/limits", set_limits, methods=["GET", "POST"]),
        Route(f"{PREFIX}/faults", set_faults, methods=["GET", "POST"]),
    ]


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def reset(request: Request) -> Response:
    """Deletes every record and forgets query cursors; the API allocation and faults go back to config.

    Sessions survive (a test's logged-in client stays usable); calls are reset by `calls/reset`.
    """
    state = request.app.state
    await in_org(state.org.reset)
    state.cursors.clear()
    state.usage.reset()
    state.faults.set(state.config.faults)
    log.info("org reset")
    return JSONResponse({"reset": True})


async def records(request: Request) -> Response:
    found = await in_org(request.app.state.org.records, request.path_params["sobject"])
    return JSONResponse({"totalSize": len(found), "records": found})


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


async def _object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    return body
