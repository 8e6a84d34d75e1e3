"""One emulator for the client tests, wiped before each test, and clients whose sleeps are recorded."""

from collections.abc import Iterator
from typing import Any

import pytest

from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials


class FakeClock:
    """A monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps(list):
    """Records the delays a client asked for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from emulator.process import start_emulator

    with start_emulator(tmp_path_factory.mktemp("sf-client-emulator")) as emu:
        yield emu


@pytest.fixture
def org(emulator: Any) -> Any:
    """The emulator with no records, no faults, a full API allocation and zeroed call counts."""
    emulator.admin("POST", "/_emulator/reset")
    emulator.admin("POST", "/_emulator/faults", json={"error_rate": 0.0, "latency_ms": 0, "jitter_ms": 0})
    emulator.admin("POST", "/_emulator/limits", json={"remaining": 100_000})
    emulator.admin("POST", "/_emulator/calls/reset")
    return emulator


@pytest.fixture
def credentials(emulator: Any) -> Credentials:
    info = emulator.info
    return Credentials(info["username"], info["password"], info["security_token"])


@pytest.fixture
def settings(emulator: Any) -> ConnectionSettings:
    info = emulator.info
    return ConnectionSettings(
        login_url=info["login_url"], ca_bundle=info["ca_bundle"], backoff_base_seconds=0.01
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(
    org: Any, credentials: Credentials, settings: ConnectionSettings, clock: FakeClock, sleeps: Sleeps
):
    return SalesforceClient(credentials, settings, clock=clock, sleep=sleeps)


def calls(emu: Any) -> dict:
    """The emulator's API call counts since the last reset: {"total": n, "by_kind": {...}}."""
    return emu.admin("GET", "/_emulator/calls")


def reset_calls(emu: Any) -> None:
    emu.admin("POST", "/_emulator/calls/reset")


def lead_records(emu: Any) -> list[dict]:
    return emu.admin("GET", "/_emulator/records/Lead")["records"]
