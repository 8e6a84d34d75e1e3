"""Runs the emulator as a subprocess for tests, benchmarks and run_local.sh, and talks to its admin API."""

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.login import SalesforceLogin

_REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class EmulatorError(RuntimeError):
    """The emulator did not start, or its admin API refused a request."""


class EmulatorProcess:
    """A running emulator; a context manager that stops it on exit."""

    def __init__(self, proc: subprocess.Popen, info: dict[str, Any], log_path: Path):
        self.proc = proc
        self.info = info
        self.log_path = log_path  # the emulator's stderr
        self._admin = self.session()

    @property
    def instance_url(self) -> str:
        return self.info["instance_url"]

    def session(self) -> requests.Session:
        """A requests.Session that trusts the emulator's CA (and ignores REQUESTS_CA_BUNDLE)."""
        return trusting_session(self.info)

    def salesforce(self, version: str = "59.0") -> Salesforce:
        """A simple-salesforce client logged in as the default user through its own SOAP login."""
        return connect(self.info, version)

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        """Calls the admin API (`path` relative to /_emulator/, or starting with it) and returns its JSON."""
        relative = path.lstrip("/").removeprefix("_emulator/")
        url = f"{self.info['admin_url']}/{relative}"
        response = self._admin.request(method, url, json=json, timeout=30)
        if response.status_code >= 400:
            raise EmulatorError(f"admin {method} {path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else None

    def stop(self) -> int:
        """Stops the emulator (SIGTERM, then SIGKILL after a grace period); returns its exit code."""
        self._admin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> "EmulatorProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def trusting_session(info: dict[str, Any]) -> requests.Session:
    """A requests.Session that trusts the emulator's CA (and ignores REQUESTS_CA_BUNDLE)."""
    session = requests.Session()
    session.trust_env = False  # otherwise REQUESTS_CA_BUNDLE from the environment overrides verify
    session.verify = info["ca_bundle"]
    return session


def connect(info: dict[str, Any], version: str = "59.0") -> Salesforce:
    """simple-salesforce, unchanged, logged in through its own SOAP login at the emulator's login URL."""
    session = trusting_session(info)
    session_id, instance = SalesforceLogin(
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        sf_version=version,
        session=session,
        scratch_url=info["login_url"],
    )
    return Salesforce(
        session_id=session_id, instance_url=f"https://{instance}", session=session, version=version
    )


def start_emulator(
    data_dir: str | Path,
    config_path: str | Path | None = None,
    extra_args: Sequence[str] = (),
    root: str | Path = _REPO_ROOT,
) -> EmulatorProcess:
    """Starts `python -m emulator serve --port 0 --data-dir DIR` and waits for its JSON line. `root`: the
    checkout whose emulator runs (this one by default; benchmarks compare another)."""
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "emulator", "serve", "--port", "0", "--data-dir", str(data)]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    cmd += list(extra_args)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    log_path = data / "emulator.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env, cwd=str(root))
    try:
        line = _read_line(proc, START_TIMEOUT)
        info = json.loads(line)
    except Exception as exc:
        proc.kill()
        proc.wait()
        tail = log_path.read_text(errors="replace")[-4000:]
        raise EmulatorError(f"the emulator did not start: {exc}\n--- its log ({log_path}):\n{tail}") from exc
    return EmulatorProcess(proc, info, log_path)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no ready line within {timeout:.0f}s")
            if selector.select(left):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    raise EOFError(f"exited with code {proc.wait()} before it was ready")
                buffer += chunk
    return buffer.split(b"\n", 1)[0].decode()
