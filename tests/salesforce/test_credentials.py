"""Credentials from the environment, connection settings checks, and the SOAP login request we build."""

from typing import Any

import pytest
import requests
from simple_salesforce.login import SalesforceLogin

from pipeline.main import main
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import ConfigurationError, SalesforceLoginError
from salesforce.login import soap_body, soap_url

FULL_ENV = {
    "SALESFORCE_USERNAME": "api@acme.com",
    "SALESFORCE_PASSWORD": "s3cret<&>'\"",
    "SALESFORCE_SECURITY_TOKEN": "TOKEN123",
}


def test_from_env_reads_the_three_variables() -> None:
    creds = Credentials.from_env(FULL_ENV)
    assert creds == Credentials("api@acme.com", "s3cret<&>'\"", "TOKEN123")


@pytest.mark.parametrize(
    ("missing", "override"),
    [
        ("SALESFORCE_USERNAME", {"SALESFORCE_USERNAME": None}),
        ("SALESFORCE_USERNAME", {"SALESFORCE_USERNAME": "   "}),
        ("SALESFORCE_PASSWORD", {"SALESFORCE_PASSWORD": None}),
        ("SALESFORCE_PASSWORD", {"SALESFORCE_PASSWORD": ""}),
        ("SALESFORCE_SECURITY_TOKEN", {"SALESFORCE_SECURITY_TOKEN": None}),
    ],
)
def test_from_env_names_the_missing_variable(missing: str, override: dict) -> None:
    env = {k: v for k, v in {**FULL_ENV, **override}.items() if v is not None}
    with pytest.raises(ConfigurationError, match=missing):
        Credentials.from_env(env)


def test_an_empty_token_is_allowed_when_set() -> None:
    assert Credentials.from_env({**FULL_ENV, "SALESFORCE_SECURITY_TOKEN": ""}).security_token == ""


def test_repr_and_str_never_show_secrets() -> None:
    creds = Credentials.from_env(FULL_ENV)
    for text in (repr(creds), str(creds)):
        assert "api@acme.com" in text
        assert "s3cret" not in text
        assert "TOKEN123" not in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"login_url": "http://login.salesforce.com"}, "https://"),
        ({"api_version": "v59.0"}, "without a 'v'"),
        ({"api_version": "59"}, "api_version"),
        ({"api_version": "65.0"}, "SOAP login"),
        ({"sandbox": "uat.x"}, "sandbox"),
        ({"sandbox": ""}, "sandbox"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
        ({"describe_ttl_seconds": 0}, "describe_ttl_seconds"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff_base_seconds": -0.1}, "backoff_base_seconds"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_bad_settings_say_what_to_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ConnectionSettings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "url", "username"),
    [
        ({}, "https://login.salesforce.com/services/Soap/u/59.0", "api@acme.com"),
        ({"sandbox": "uat"}, "https://test.salesforce.com/services/Soap/u/59.0", "api@acme.com.uat"),
        (
            {"sandbox": "uat", "login_url": "https://acme--uat.sandbox.my.salesforce.com/"},
            "https://acme--uat.sandbox.my.salesforce.com/services/Soap/u/59.0",
            "api@acme.com.uat",
        ),
        (
            {"login_url": "https://127.0.0.1:8443", "api_version": "62.0"},
            "https://127.0.0.1:8443/services/Soap/u/62.0",
            "api@acme.com",
        ),
    ],
)
def test_login_url_and_sandbox_username(kwargs: dict, url: str, username: str) -> None:
    settings = ConnectionSettings(**kwargs)
    assert soap_url(settings) == url
    assert settings.login_username("api@acme.com") == username


class _Recorder(requests.Session):
    """Captures the login POST instead of sending it."""

    def post(self, url, data=None, **kwargs):  # type: ignore[override]
        self.sent = (url, data, kwargs.get("headers"))
        raise RuntimeError("recorded")


def test_soap_body_is_the_one_simple_salesforce_builds() -> None:
    creds = Credentials.from_env({**FULL_ENV, "SALESFORCE_USERNAME": "o'brien&co@acme.com"})
    recorder = _Recorder()
    with pytest.raises(RuntimeError, match="recorded"):
        SalesforceLogin(
            username=creds.username,
            password=creds.password,
            security_token=creds.security_token,
            session=recorder,
        )
    _, theirs, _ = recorder.sent
    ours = soap_body(creds, ConnectionSettings())
    assert ours == theirs
    assert "o&#x27;brien&amp;co@acme.com" in ours
    assert "s3cret&lt;&amp;&gt;&#x27;&quot;TOKEN123" in ours


def test_session_trusts_only_the_given_ca(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a certificate")
    session = ConnectionSettings(ca_bundle=str(ca)).make_session()
    assert session.verify == str(ca)
    assert session.trust_env is False
    default = ConnectionSettings().make_session()
    assert default.verify is True
    assert default.trust_env is True


# The emulator's fault, word for word as Salesforce's: faultstring "INVALID_LOGIN: <this>".
INVALID_LOGIN = "Invalid username, password, security token; or user locked out."


def test_a_refused_login_says_what_salesforce_said(
    org: Any, credentials: Credentials, settings: ConnectionSettings
) -> None:
    wrong = Credentials(credentials.username, "not-the-password", credentials.security_token)
    with pytest.raises(SalesforceLoginError) as info:
        SalesforceClient(wrong, settings, sleep=lambda s: None).login()
    assert (info.value.code, info.value.message) == ("INVALID_LOGIN", INVALID_LOGIN)
    assert str(info.value) == f"Salesforce login failed (INVALID_LOGIN): {INVALID_LOGIN}"


def test_main_exits_2_with_salesforce_reason_for_wrong_credentials(
    org: Any, emulator: Any, credentials: Credentials, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # the default dead-letter location is under the current directory
    (tmp_path / "events.jsonl").write_text("{}\n")
    monkeypatch.setenv("SALESFORCE_USERNAME", credentials.username)
    monkeypatch.setenv("SALESFORCE_PASSWORD", "not-the-password")
    monkeypatch.setenv("SALESFORCE_SECURITY_TOKEN", credentials.security_token)
    login_url = emulator.info["login_url"]
    argv = ["--input", "events.jsonl", "--salesforce_login_url", login_url]
    assert main([*argv, "--salesforce_ca_bundle", emulator.info["ca_bundle"]]) == 2
    assert capsys.readouterr().err == (
        f"beamforce: configuration error: Salesforce login at {login_url.rstrip('/')} as "
        f"{credentials.username} was refused: INVALID_LOGIN: {INVALID_LOGIN.rstrip('.')}. Check "
        "SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN (and --sandbox / "
        "--salesforce_login_url)\n"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "events.jsonl"]  # nothing written
