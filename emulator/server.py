"""Runs the emulator: TLS uvicorn on a socket we bind, one JSON line on stdout when ready."""

import asyncio
import json
import logging
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from emulator.app import MAX_BODY_BYTES, create_app
from emulator.certs import ensure_certs
from emulator.config import OrgConfig, load_config

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    async def _wait_tasks_to_complete(self) -> None:
        # Closing an idle TLS keep-alive connection waits for the client's close_notify, which an idle
        # client never sends; abort those, so that stopping takes a moment rather than the whole
        # graceful-shutdown timeout. Connections with a request in flight still finish it.
        while self.server_state.connections and not self.force_exit:
            for conn in list(self.server_state.connections):
                cycle = getattr(conn, "cycle", None)
                transport = getattr(conn, "transport", None)
                if transport is not None and (cycle is None or cycle.response_complete):
                    transport.abort()
            await asyncio.sleep(0.05)
        await super()._wait_tasks_to_complete()


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
        http="httptools",
        loop="none",  # the loop is created below, with uvloop when available
        lifespan="on",
        timeout_keep_alive=60,
        timeout_graceful_shutdown=5,
    )
    server = _Server(uv_config)
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
