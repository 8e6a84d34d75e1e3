"""Which login failures are retried with backoff and which fail at once (a retry cannot fix them)."""

import dataclasses
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import SalesforceLoginError, TransientError
from salesforce.login import UNKNOWN_HOST
from tests.salesforce.conftest import Sleeps

STUB_LOGIN_URL = "https://login.stub.test"
LOGIN_OK = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>
<serverUrl>https://na1.stub.test/services/Soap/u/59.0/00D000000000001</serverUrl>
<sessionId>00D000000000001!SESSION</sessionId>
</result></loginResponse></soapenv:Body></soapenv:Envelope>"""
SERVER_UNAVAILABLE_FAULT = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>
<faultcode>sf:SERVER_UNAVAILABLE</faultcode><faultstring>SERVER_UNAVAILABLE: down</faultstring>
<detail><sf:UnexpectedErrorFault><sf:exceptionCode>SERVER_UNAVAILABLE</sf:exceptionCode>
<sf:exceptionMessage>down for maintenance</sf:exceptionMessage></sf:UnexpectedErrorFault></detail>
</soapenv:Fault></soapenv:Body></soapenv:Envelope>"""

Step = BaseException | tuple[int, bytes]


class ScriptedLogin(BaseAdapter):
    """A transport for STUB_LOGIN_URL that plays `script`: an exception to raise or (status, body)."""

    def __init__(self, script: list[Step]):
        super().__init__()
        self.script = list(script)
        self.requests = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.requests += 1
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        response = requests.Response()
        response.status_code, response._content = step
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def stub_client(
    credentials: Credentials, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> Callable[[list[Step]], tuple[SalesforceClient, ScriptedLogin]]:
    def make(script: list[Step]) -> tuple[SalesforceClient, ScriptedLogin]:
        adapter = ScriptedLogin(script)
        make_session = ConnectionSettings.make_session

        def session_with_stub(self: ConnectionSettings) -> requests.Session:
            session = make_session(self)
            session.mount(STUB_LOGIN_URL, adapter)
            return session

        monkeypatch.setattr(ConnectionSettings, "make_session", session_with_stub)
        settings = ConnectionSettings(login_url=STUB_LOGIN_URL, max_retries=2, backoff_base_seconds=0.01)
        return SalesforceClient(credentials, settings, sleep=sleeps), adapter

    return make


TRANSIENT = {
    # A proxy's page: well-formed markup, no Salesforce fault code; and one that is not even XML.
    "503_html_page": (503, b"<html><body>Service Unavailable</body></html>"),
    "502_text_page": (502, b"Bad Gateway <hr>"),
    "server_unavailable_fault": (500, SERVER_UNAVAILABLE_FAULT),
    "connect_timeout": requests.ConnectTimeout("connect timed out"),
    "read_timeout": requests.ReadTimeout("read timed out"),
    "connection_reset": requests.ConnectionError("connection reset by peer"),
}


@pytest.mark.parametrize("failure", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_login_failures_are_retried_with_backoff(
    stub_client: Any, sleeps: Sleeps, failure: Step
) -> None:
    client, adapter = stub_client([failure, failure, (200, LOGIN_OK)])
    client.login()
    assert adapter.requests == 3
    assert client.retries == 2
    assert [0.005 <= sleeps[0] <= 0.01, 0.01 <= sleeps[1] <= 0.02] == [True, True]


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (TRANSIENT["503_html_page"], "BAD_LOGIN_RESPONSE"),
        (TRANSIENT["502_text_page"], "502"),
        (TRANSIENT["server_unavailable_fault"], "SERVER_UNAVAILABLE"),
        (TRANSIENT["connect_timeout"], "ConnectTimeout"),
        (TRANSIENT["read_timeout"], "ReadTimeout"),
        (TRANSIENT["connection_reset"], "ConnectionError"),
    ],
    ids=TRANSIENT.keys(),
)
def test_login_retries_run_out(stub_client: Any, sleeps: Sleeps, failure: Step, code: str) -> None:
    client, adapter = stub_client([failure] * 3)
    with pytest.raises(TransientError) as info:
        client.login()
    assert (info.value.error_code, info.value.attempts) == (code, 3)
    assert (adapter.requests, len(sleeps)) == (3, 2)


def test_a_refused_connection_is_retried(
    credentials: Credentials, settings: ConnectionSettings, sleeps: Sleeps
) -> None:
    with socket.socket() as s:  # a loopback port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = dataclasses.replace(settings, login_url=f"https://127.0.0.1:{port}", max_retries=2)
    client = SalesforceClient(credentials, closed, sleep=sleeps)
    with pytest.raises(TransientError) as info:
        client.login()
    assert (info.value.error_code, info.value.attempts, len(sleeps)) == ("ConnectionError", 3, 2)
    assert client.api_calls == 0  # no answer ever came


UNRESOLVABLE = "login.beamforce.invalid"


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Makes UNRESOLVABLE fail to resolve with the given EAI_* code, without asking any DNS server."""

    def fail_with(errno: int) -> None:
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host == UNRESOLVABLE:
                raise socket.gaierror(errno, "stub resolver")
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    return fail_with


def test_a_login_host_that_does_not_resolve_fails_at_once(
    credentials: Credentials, settings: ConnectionSettings, sleeps: Sleeps, resolver: Any
) -> None:
    resolver(socket.EAI_NONAME)
    unknown = dataclasses.replace(settings, login_url=f"https://{UNRESOLVABLE}")
    client = SalesforceClient(credentials, unknown, sleep=sleeps)
    with pytest.raises(TransientError) as info:
        client.login()
    assert (info.value.error_code, info.value.attempts) == (UNKNOWN_HOST, 1)
    assert info.value.message == f"the host {UNRESOLVABLE} does not resolve"
    assert sleeps == []


def test_a_resolver_that_cannot_answer_now_is_retried(
    credentials: Credentials, settings: ConnectionSettings, sleeps: Sleeps, resolver: Any
) -> None:
    resolver(socket.EAI_AGAIN)  # "Temporary failure in name resolution"
    flaky = dataclasses.replace(settings, login_url=f"https://{UNRESOLVABLE}", max_retries=2)
    client = SalesforceClient(credentials, flaky, sleep=sleeps)
    with pytest.raises(TransientError) as info:
        client.login()
    assert (info.value.error_code, info.value.attempts, len(sleeps)) == ("ConnectionError", 3, 2)


def _login_fault(code: str, faultstring: str, exception_message: str | None) -> bytes:
    message = (
        "" if exception_message is None else f"<sf:exceptionMessage>{exception_message}</sf:exceptionMessage>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{faultstring}</faultstring><detail><sf:LoginFault>"
        f"<sf:exceptionCode>{code}</sf:exceptionCode>{message}</sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            _login_fault("INVALID_LOGIN", "INVALID_LOGIN: Invalid username", "Invalid username"),
            "INVALID_LOGIN",
            "Invalid username",
        ),
        (  # no exceptionMessage: simple-salesforce then passes the whole body, whose faultstring we read
            _login_fault("LOGIN_MUST_USE_SECURITY_TOKEN", "LOGIN_MUST_USE_SECURITY_TOKEN: Use a token", None),
            "LOGIN_MUST_USE_SECURITY_TOKEN",
            "Use a token",
        ),
        (
            _login_fault(
                "INVALID_LOGIN", "INVALID_LOGIN: R&amp;D users are locked", "R&amp;D users are locked"
            ),
            "INVALID_LOGIN",
            "R&D users are locked",
        ),
    ],
    ids=["exception_message", "faultstring_only", "escaped"],
)
def test_a_refused_login_carries_the_fault_code_and_reason(
    stub_client: Any, body: bytes, code: str, message: str
) -> None:
    client, adapter = stub_client([(500, body)])
    with pytest.raises(SalesforceLoginError) as info:
        client.login()
    assert (info.value.code, info.value.message, adapter.requests) == (code, message, 1)
    assert str(info.value) == f"Salesforce login failed ({code}): {message}"
