"""Runs the emulator: TLS uvicorn on a socket we bind, one JSON line on stdout when ready."""

import asyncio
import json
import logging
import signal
import socket
import sys
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from emulator.app import MAX_BODY_BYTES, create_app
from emulator.certs import ensure_certs
from emulator.config import OrgConfig, load_config

log = logging.getLogger(__name__)


class _HttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, except that stopping aborts idle connections instead of closing them.

    Closing a TLS connection sends close_notify and then waits for the client's, up to asyncio's
    30 s ssl_shutdown_timeout; an idle keep-alive client is not reading, so it never answers, and every
    stop would last the whole timeout_graceful_shutdown (uvicorn discussion #2327). uvicorn has no
    supported way out: timeout_graceful_shutdown under a second would also cut requests still running
    (and logs an error each time), timeout_keep_alive closes idle connections the same waiting way,
    should_exit/force_exit only choose when shutdown starts or skip the lifespan shutdown, and
    create_server's ssl_shutdown_timeout is not exposed. So `shutdown()`, which uvicorn calls on every
    connection when it stops, keeps uvicorn's own test for "no request in flight" but aborts such a
    connection. It relies on the protocol's `cycle` and `transport` attributes; should they ever go,
    it falls back to uvicorn's close, and stopping takes timeout_graceful_shutdown again (a test checks).
    """

    def shutdown(self) -> None:
        cycle = getattr(self, "cycle", None)
        transport = getattr(self, "transport", None)
        if transport is not None and (cycle is None or getattr(cycle, "response_complete", False)):
            transport.abort()  # a request in flight still finishes: uvicorn then closes after it
            return
        super().shutdown()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; binding ourselves makes port 0 work: the kernel's choice is then known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def ready_line(config: OrgConfig, host: str, port: int, ca_bundle: Path) -> dict:
    # The certificate names 127.0.0.1 and localhost, so a wildcard bind is announced as loopback.
    public = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"https://[{public}]:{port}" if ":" in public else f"https://{public}:{port}"
    user = config.users[0]
    app = config.connected_apps[0] if config.connected_apps else None
    return {
        "login_url": base,
        "instance_url": base,
        "ca_bundle": str(ca_bundle.resolve()),
        "username": user.login_name,
        "password": user.password,
        "security_token": user.security_token,
        "admin_url": f"{base}/_emulator",
        "consumer_key": app.consumer_key if app else None,
        "consumer_secret": app.consumer_secret if app else None,
        "port": port,
    }


def serve(
    host: str,
    port: int,
    data_dir: str | Path,
    config_path: str | None,
    max_body_bytes: int = MAX_BODY_BYTES,
    log_level: str = "warning",
) -> None:
    """Serves until SIGTERM or SIGINT; raises ConfigError for a bad config before listening."""
    data = Path(data_dir).resolve()
    config = load_config(config_path)
    certs = ensure_certs(data)
    app = create_app(config, data, max_body_bytes=max_body_bytes)
    sock = bind(host, port)
    uv_config = uvicorn.Config(
        app,
        ssl_certfile=str(certs.server_cert),
        ssl_keyfile=str(certs.server_key),
        log_config=None,  # log through the root logger (stderr); stdout carries only the ready line
        log_level=log_level,
        access_log=False,
        http=_HttpToolsProtocol,
        loop="none",  # the loop is created below, with uvloop when available
        lifespan="on",
        timeout_keep_alive=60,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(uv_config)
    line = ready_line(config, host, sock.getsockname()[1], certs.ca_cert)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task  # startup failed: re-raise its error
                raise SystemExit(1)
            await asyncio.sleep(0.01)
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        log.info("emulator ready on %s (data in %s)", line["instance_url"], data)
        await task

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    # uvicorn handles SIGTERM/SIGINT while serving and re-raises the signal when done; with these
    # handlers underneath, that re-raise ends the process normally (exit 0) instead of by the signal.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
