"""Fixtures for the emulator's HTTP tests: one running emulator per session, reset before each test."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.login import SalesforceLogin

from emulator.process import EmulatorProcess, start_emulator
from tests.emulator.oauth_org import key_and_certificate

API = "59.0"
SANDBOX_USER = {
    "username": "sb@example.com",
    "password": "sb-pass",
    "security_token": "SBTOKEN",
    "sandbox": "uat",
}
NO_TOKEN_USER = {"username": "notoken@example.com", "password": "np-pass", "security_token": ""}
CONFIG = """
users:
  - {{username: admin@example.com, password: emulator-password, security_token: EMULATORTOKEN}}
  - {{username: sb@example.com, password: sb-pass, security_token: SBTOKEN, sandbox: uat,
      user_id: 005000000000002AAA}}
  - {{username: notoken@example.com, password: np-pass, security_token: "", user_id: 005000000000003AAA}}
connected_apps:
  - {{consumer_key: emulator-consumer-key, consumer_secret: emulator-consumer-secret,
      certificate: "{cert}"}}
custom_fields:
  Lead:
    - {{name: Ext__c, type: external_id, length: 80}}
"""


@pytest.fixture(scope="session")
def jwt_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """(PEM private key, path of its self-signed certificate) for the connected app's JWT flow."""
    pem, cert = key_and_certificate("jwt-test")
    path = tmp_path_factory.mktemp("jwt") / "cert.pem"
    path.write_bytes(cert)
    return pem, path


@pytest.fixture(scope="session")
def config_file(tmp_path_factory: pytest.TempPathFactory, jwt_key: tuple[bytes, Path]) -> Path:
    path = tmp_path_factory.mktemp("config") / "org.yaml"
    path.write_text(CONFIG.format(cert=jwt_key[1]))
    return path


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory, config_file: Path) -> Iterator[EmulatorProcess]:
    with start_emulator(tmp_path_factory.mktemp("emulator") / "data", config_path=config_file) as emu:
        yield emu


@pytest.fixture
def emu(emulator: EmulatorProcess) -> EmulatorProcess:
    """The session's emulator with an empty org, default faults and allocation, and zeroed call counts."""
    emulator.admin("POST", "reset")
    emulator.admin("POST", "calls/reset")
    return emulator


def login(
    emu: EmulatorProcess,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    version: str = API,
    session: requests.Session | None = None,
) -> tuple[str, str]:
    """simple-salesforce's own SOAP login (the request it sends), pointed at the emulator."""
    info = emu.info
    return SalesforceLogin(
        username=username or info["username"],
        password=password if password is not None else info["password"],
        security_token=token if token is not None else info["security_token"],
        sf_version=version,
        session=session or emu.session(),
        scratch_url=info["login_url"],
    )


@pytest.fixture
def sf(emu: EmulatorProcess) -> Salesforce:
    """A simple-salesforce client logged in through the SOAP login, trusting the emulator's CA."""
    return emu.salesforce(API)


class Raw:
    """Raw HTTP to the emulator with a session, for status codes, headers and error bodies."""

    def __init__(self, emu: EmulatorProcess, session_id: str):
        self.emu = emu
        self.http = emu.session()
        self.session_id = session_id

    def url(self, path: str) -> str:
        return f"{self.emu.instance_url}/services/data/v{API}/{path.lstrip('/')}"

    def __call__(self, method: str, path: str, *, auth: bool = True, absolute: bool = False, **kwargs: Any):
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers.setdefault("Authorization", f"Bearer {self.session_id}")
        url = f"{self.emu.instance_url}{path}" if absolute else self.url(path)
        return self.http.request(method, url, headers=headers, timeout=60, **kwargs)


@pytest.fixture
def raw(emu: EmulatorProcess, sf: Salesforce) -> Raw:
    return Raw(emu, sf.session_id)


def calls(emu: EmulatorProcess) -> dict[str, int]:
    return emu.admin("GET", "calls")["by_kind"]
