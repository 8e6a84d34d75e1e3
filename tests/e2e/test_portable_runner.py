"""The portable path (Beam's job API, the one Flink and Spark take for Python), run locally: the pipeline
submitted with --runner PortableRunner to Beam's local job service, with a LOOPBACK worker (this process)
and with an EXTERNAL worker pool (another process started from this virtualenv), writes the same records
and brings back the same counts as the default runner.

Each submission has a timeout: a worker that fails to start leaves a portable job hanging."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.main import run
from tests.e2e.conftest import connection_flags, environ, records

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EVENTS = str(ROOT / "examples" / "events" / "sample-mix.jsonl.gz")
START_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on port {port} within {START_SECONDS:.0f} s")


def _start(args: list[str], env: dict[str, str], log: Path, what: str) -> Iterator[int]:
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args, str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        _wait_for_port(port, proc, what)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _venv_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This virtualenv first on PATH: the worker pool starts its workers with the first `python` it finds."""
    env = dict(os.environ, **(extra or {}))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def job_service(tmp_path_factory) -> Iterator[int]:
    log = tmp_path_factory.mktemp("job_service") / "job_service.log"
    args = ["apache_beam.runners.portability.local_job_service_main", "--port"]
    yield from _start(args, _venv_env(), log, "Beam's local job service")


@pytest.fixture(scope="module")
def worker_pool(tmp_path_factory, emulator) -> Iterator[int]:
    # The pool's workers read the credentials from their own environment, as workers on a cluster do.
    log = tmp_path_factory.mktemp("worker_pool") / "worker_pool.log"
    args = ["apache_beam.runners.worker.worker_pool_main", "--service_port"]
    yield from _start(args, _venv_env(environ(emulator)), log, "Beam's worker pool")


def _run(emu, tmp_path: Path, *runner_flags: str):
    out = tmp_path / "out"
    out.mkdir()
    argv = [
        "--input",
        EVENTS,
        *connection_flags(emu),
        "--dead_letter_output",
        str(out / "dead_letters"),
        "--summary_output",
        str(out / "summary.json"),
        *runner_flags,
    ]
    summary = run(argv, environ(emu))
    # Written by a worker from the stages' tallies; the same as what the runner's metrics gave here.
    assert json.loads((out / "summary.json").read_text()) == json.loads(summary.to_json())
    return summary, sorted(records(emu, "Lead"), key=str), sorted(records(emu, "Account"), key=str)


def _counts(summary) -> dict:
    counts = summary.to_dict()
    counts.pop("api_calls", None)  # a run's logins and describes depend on how many workers start
    counts.pop("throttled_seconds", None)
    counts.pop("dead_letter_output", None)  # each run writes its own files
    return counts


@pytest.fixture(scope="module")
def expected(emulator, tmp_path_factory):
    """The default runner's result on the same events, the reference for the portable runs."""
    emulator.admin("POST", "/_emulator/reset")
    summary, leads, accounts = _run(emulator, tmp_path_factory.mktemp("reference"))
    assert summary.balanced and leads and accounts
    return _counts(summary), leads, accounts


@pytest.mark.timeout(240)
def test_loopback_through_the_local_job_service_writes_what_the_default_runner_writes(
    expected, org, job_service, tmp_path
):
    summary, leads, accounts = _run(
        org,
        tmp_path,
        "--runner",
        "PortableRunner",
        f"--job_endpoint=localhost:{job_service}",
        "--environment_type=LOOPBACK",
    )
    assert (_counts(summary), leads, accounts) == expected


@pytest.mark.timeout(300)
def test_an_external_worker_pool_writes_what_the_default_runner_writes(
    expected, org, job_service, worker_pool, tmp_path
):
    summary, leads, accounts = _run(
        org,
        tmp_path,
        "--runner",
        "PortableRunner",
        f"--job_endpoint=localhost:{job_service}",
        "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{worker_pool}",
    )
    assert (_counts(summary), leads, accounts) == expected
