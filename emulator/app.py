"""The emulator's Starlette app and the one gate every API call passes: version, session, limits, faults."""

import asyncio
import contextlib
import logging
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator import admin, auth, bulk2, composite, rest
from emulator.config import ConfigError, Faults, OrgConfig
from emulator.errors import ApiError
from emulator.org import Org
from emulator.responses import JSON_MEDIA_TYPE, JSONResponse, json_bytes
from emulator.sessions import ApiUsage, SessionStore, StateDb
from emulator.versions import NOT_FOUND, version_error

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 50 * 1024 * 1024  # REST and SOAP; Salesforce refuses SOAP messages over 50 MB
MAX_BULK_BODY_BYTES = 150 * 1024 * 1024  # Bulk API 2.0 upload limit (after base64) per the guide
_API_PATH = re.compile(r"/services/data/v([^/]*)(/.*)?")

SESSION_INVALID = ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
DAILY_LIMIT = ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
CONCURRENT_LIMIT = ApiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded")
LOCK_FAULT = "UNABLE_TO_LOCK_ROW"
FAULT_ERRORS = {
    "SERVER_UNAVAILABLE": ApiError(503, "SERVER_UNAVAILABLE", "Server Unavailable"),
    LOCK_FAULT: ApiError(400, LOCK_FAULT, "unable to obtain exclusive access to this record", []),
    "UNKNOWN_EXCEPTION": ApiError(
        500,
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1418462047-96537 (-1270410355)",
    ),
}


def unknown_exception() -> ApiError:
    return ApiError(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please contact support.")


class CallCounter:
    """API calls by kind since the last reset, so tests and benchmarks can count calls exactly."""

    def __init__(self) -> None:
        self.by_kind: Counter[str] = Counter()

    def count(self, kind: str) -> None:
        self.by_kind[kind] += 1

    def snapshot(self) -> dict:
        return {"total": sum(self.by_kind.values()), "by_kind": dict(sorted(self.by_kind.items()))}

    def reset(self) -> None:
        self.by_kind.clear()


class FaultInjector:
    """Latency, transient errors and held calls; the random draws happen in arrival order, so a seed repeats.

    `hold` keeps every API call waiting, in flight, until the faults are set without it.
    """

    def __init__(self, faults: Faults):
        self._released = asyncio.Event()
        self.set(faults)

    def set(self, faults: Faults) -> None:
        for name in ("latency_ms", "jitter_ms", "error_rate"):
            value = getattr(faults, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"faults.{name}: must be a non-negative number, got {value!r}")
        unknown = sorted(set(faults.error_kinds) - set(FAULT_ERRORS))
        if unknown:
            raise ConfigError(f"faults.error_kinds: unknown {unknown}; allowed: {sorted(FAULT_ERRORS)}")
        if not 0.0 <= faults.error_rate <= 1.0:
            raise ConfigError(f"faults.error_rate: must be between 0 and 1, got {faults.error_rate}")
        if faults.error_rate and not faults.error_kinds:
            raise ConfigError("faults.error_kinds: name at least one error kind when error_rate > 0")
        if not isinstance(faults.hold, bool):
            raise ConfigError(f"faults.hold: must be true or false, got {faults.hold!r}")
        self.faults = faults
        self.rng = random.Random(faults.seed)
        if faults.hold:
            self._released.clear()
        else:
            self._released.set()  # lets every held call go on

    async def inject(self) -> str | None:
        f = self.faults
        delay_ms = f.latency_ms + (self.rng.uniform(0.0, f.jitter_ms) if f.jitter_ms > 0 else 0.0)
        error = None
        if f.error_rate > 0 and self.rng.random() < f.error_rate:
            error = f.error_kinds[self.rng.randrange(len(f.error_kinds))]
        if f.hold:
            await self._released.wait()
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        return error


def call_kind(method: str, rest_path: str) -> str:
    """The kind an API call is counted as, from its path below /services/data/vXX.X."""
    parts = [p for p in rest_path.split("/") if p]
    head = parts[0] if parts else ""
    if not parts:
        return "resources"
    if head == "limits":
        return "limits"
    if head == "jobs":
        return "bulk"
    if head in ("query", "queryAll"):
        return "query"
    if head == "composite":
        return "collections" if len(parts) > 1 and parts[1] == "sobjects" else "composite"
    if head != "sobjects":
        return "other"
    if len(parts) <= 2 and method in ("GET", "HEAD") or len(parts) == 3 and parts[2] == "describe":
        return "describe"
    if len(parts) == 2:
        return "create" if method == "POST" else "other"
    if len(parts) == 4:
        return "upsert" if method in ("PATCH", "POST") else "get"
    return {"GET": "get", "HEAD": "get", "PATCH": "update", "DELETE": "delete"}.get(method, "other")


class InFlight:
    """The API calls being served now, for the concurrent cap; tests wait for a count instead of racing."""

    def __init__(self) -> None:
        self.count = 0
        self._watchers: list[tuple[int, asyncio.Future[None]]] = []

    def enter(self) -> None:
        self.count += 1
        for wanted, watcher in self._watchers:
            if self.count >= wanted and not watcher.done():
                watcher.set_result(None)

    def leave(self) -> None:
        self.count -= 1

    async def wait_for(self, count: int, timeout: float) -> bool:
        """True once at least `count` calls are in flight; False if that takes longer than `timeout` s."""
        if self.count >= count:
            return True
        entry = (count, asyncio.get_running_loop().create_future())
        self._watchers.append(entry)
        try:
            await asyncio.wait_for(entry[1], timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._watchers.remove(entry)


class _BodyTooLarge(Exception):
    pass


async def send_error(send: Send, error: ApiError, extra_headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json_bytes(error.to_body())
    headers = [
        (b"content-type", JSON_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": error.status, "headers": headers + list(extra_headers)}
    )
    await send({"type": "http.response.body", "body": body})


class Gate:
    """ASGI middleware: every request passes here; API calls get their checks, counting and faults."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        path: str = scope["path"]
        limit = MAX_BULK_BODY_BYTES if "/jobs/" in path else state.max_body_bytes
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                raise _BodyTooLarge
            receive = _limited(receive, limit)
            match = _API_PATH.fullmatch(path)
            if match is None:
                await self.app(_normalized(scope), receive, tracked_send)
            else:
                await self._api(scope, receive, tracked_send, match.group(1), match.group(2) or "")
        except _BodyTooLarge:
            if not started:
                await send_error(
                    send,
                    ApiError(
                        413,
                        "EXCEEDED_MAX_SIZE_REQUEST",
                        f"The size of the request body exceeded the max size of {limit} bytes",
                    ),
                )
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], path)
            if not started:
                await send_error(send, unknown_exception())

    async def _api(self, scope: Scope, receive: Receive, send: Send, version: str, rest_path: str) -> None:
        state = scope["app"].state
        error = version_error(version, rest_path)
        if error is not None:
            await send_error(send, error)
            return
        session = state.sessions.validate(_bearer(scope))
        if session is None:
            await send_error(send, SESSION_INVALID)
            return
        usage: ApiUsage = state.usage
        in_flight: InFlight = state.in_flight
        if in_flight.count >= state.config.concurrent_requests:
            await send_error(send, CONCURRENT_LIMIT, _limit_header(usage))
            return
        if not usage.try_take():
            await send_error(send, DAILY_LIMIT, _limit_header(usage))
            return
        limit_header = _limit_header(usage)
        kind = call_kind(scope["method"], rest_path)
        scope_state = scope.setdefault("state", {})
        scope_state.update(call_kind=kind, session=session, fault=None)
        in_flight.enter()
        try:
            fault = await state.faults.inject()
            if fault is not None and not (fault == LOCK_FAULT and kind == "collections"):
                await send_error(send, FAULT_ERRORS[fault], limit_header)
                return
            # sObject Collections report a lock per record in a 200 body, as Salesforce does.
            scope_state["fault"] = fault

            async def send_with_usage(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), *limit_header]}
                await send(message)

            await self.app(_normalized(scope), receive, send_with_usage)
        finally:
            in_flight.leave()
            state.calls.count(scope_state.get("call_kind") or kind)


def _limit_header(usage: ApiUsage) -> list[tuple[bytes, bytes]]:
    return [(b"sforce-limit-info", f"api-usage={usage.used}/{usage.max}".encode())]


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _bearer(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            # Salesforce accepts the legacy "OAuth <token>" scheme as well as "Bearer".
            return token.strip() if scheme.lower() in ("bearer", "oauth") else ""
    return ""


def _normalized(scope: Scope) -> Scope:
    # simple-salesforce adds trailing slashes to some resources (query/, sobjects/Lead/); Salesforce
    # tolerates them. Bulk routes are left as their owner declares them.
    path = scope["path"]
    if len(path) > 1 and path.endswith("/") and "/jobs/" not in path:
        return {**scope, "path": path.rstrip("/") or "/"}
    return scope


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise _BodyTooLarge
        return message

    return wrapped


# ------------------------------------------------------------------------------------------ the app


_METHOD_ORDER = ("HEAD", "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        # Starlette builds Allow from a set; a fixed order keeps the message stable between runs.
        methods = set((exc.headers or {}).get("Allow", "").replace(" ", "").split(","))
        allowed = ",".join(m for m in _METHOD_ORDER if m in methods)
        error = ApiError(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"
        )
        return JSONResponse(error.to_body(), 405, headers={"Allow": allowed})
    if exc.status_code == 404:
        return JSONResponse(NOT_FOUND.to_body(), 404)
    return JSONResponse([{"message": str(exc.detail), "errorCode": "UNKNOWN_EXCEPTION"}], exc.status_code)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.to_body(), exc.status)


def create_app(config: OrgConfig, data_dir: str | Path, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The emulator app for `config`, keeping its org and server state under `data_dir`."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    faults = FaultInjector(config.faults)  # validates the configured faults before anything starts
    state_db = StateDb(data / "server.sqlite3")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Created now rather than at the first Bulk request: jobs that a stop cut off resume at once.
        jobs = bulk2.get_service(app.state)
        flusher = asyncio.create_task(_flush_usage(app.state.usage))
        try:
            yield
        finally:
            flusher.cancel()
            jobs.close()  # the workers stop after their current chunk; the rest resumes at the next start
            app.state.usage.flush()
            state_db.close()

    routes: list[BaseRoute] = [
        *auth.routes(),
        *admin.routes(),
        Route("/services/data", rest.versions, methods=["GET"]),
        Route("/services/data/v{version}", rest.resources, methods=["GET"]),
        Mount("/services/data/v{version}/jobs", routes=bulk2.routes()),
        Mount("/services/data/v{version}", routes=[*rest.routes(), *composite.routes()]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Gate)],
        exception_handlers={HTTPException: http_error, ApiError: api_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.config = config
    app.state.data_dir = data
    app.state.max_body_bytes = max_body_bytes
    app.state.org = Org(data / "org.sqlite3", config)
    app.state.calls = CallCounter()
    app.state.faults = faults
    app.state.in_flight = InFlight()
    app.state.sessions = SessionStore(state_db, config.org_id, config.session_lifetime_seconds)
    app.state.usage = ApiUsage(state_db, config.daily_api_requests)
    app.state.cursors = rest.QueryCursors()
    return app


async def _flush_usage(usage: ApiUsage) -> None:
    while True:
        await asyncio.sleep(1.0)
        try:
            usage.flush()
        except Exception:
            log.exception("could not save the API usage")
