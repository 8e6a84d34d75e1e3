"""Acceptance: logins, sessions, API limits and restarts, as a client of Salesforce sees them."""

import re
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)

from emulator.process import start_emulator
from tests.emulator.conftest import API, NO_TOKEN_USER, SANDBOX_USER, Raw, login

INVALID_SESSION = b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]'
LIMIT_EXCEEDED = b'[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]'
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def _usage(response: requests.Response) -> tuple[int, int]:
    match = _USAGE.fullmatch(response.headers["Sforce-Limit-Info"])
    assert match is not None, response.headers["Sforce-Limit-Info"]
    return int(match.group(1)), int(match.group(2))


# ------------------------------------------------------------------------------------------ logins


def test_soap_login_gives_a_session_that_the_rest_api_accepts(emu):
    session_id, instance = login(emu)
    sf = Salesforce(
        session_id=session_id, instance_url=f"https://{instance}", session=emu.session(), version=API
    )

    assert session_id.startswith("00D") and "!" in session_id
    assert f"https://{instance}" == emu.instance_url
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        (
            {"password": "wrong"},
            "INVALID_LOGIN",
            "Invalid username, password, security token; or user locked out.",
        ),
        (
            {"username": "nobody@example.com"},
            "INVALID_LOGIN",
            "Invalid username, password, security token; or user locked out.",
        ),
        (
            {"token": "WRONGTOKEN"},
            "INVALID_LOGIN",
            "Invalid username, password, security token; or user locked out.",
        ),
        (
            {"version": "65.0"},
            "INVALID_OPERATION",
            "The SOAP Login operation is not available in the API version specified (65.0). "
            "Refer to the documentation for supported versions.",
        ),
    ],
)
def test_refused_logins_raise_authentication_failed(emu, kwargs: dict, code: str, message: str):
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        login(emu, **kwargs)

    assert (caught.value.code, caught.value.auth_message) == (code, message)


def test_a_password_without_the_token_must_use_the_security_token(emu):
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        login(emu, token="")

    assert caught.value.code == "LOGIN_MUST_USE_SECURITY_TOKEN"


def test_version_64_is_the_last_that_accepts_soap_login(emu):
    session_id, _ = login(emu, version="64.0")

    assert session_id


def test_a_user_without_a_token_logs_in_with_the_password_alone(emu):
    session_id, _ = login(
        emu, username=NO_TOKEN_USER["username"], password=NO_TOKEN_USER["password"], token=""
    )

    assert session_id


def test_a_sandbox_user_logs_in_with_the_sandbox_suffix_only(emu):
    user = SANDBOX_USER
    suffixed = f"{user['username']}.{user['sandbox']}"

    session_id, _ = login(emu, username=suffixed, password=user["password"], token=user["security_token"])
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        login(emu, username=user["username"], password=user["password"], token=user["security_token"])

    assert session_id
    assert caught.value.code == "INVALID_LOGIN"


def test_bad_login_is_http_500_with_the_soap_fault(emu):
    body = (
        '<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/'
        'envelope/"><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>admin@example.com'
        "</n1:username><n1:password>bad</n1:password></n1:login></env:Body></env:Envelope>"
    )

    response = emu.session().post(
        f"{emu.info['login_url']}/services/Soap/u/{API}",
        data=body,
        headers={"Content-Type": "text/xml", "SOAPAction": "login"},
    )

    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/xml")
    assert "<faultcode>sf:INVALID_LOGIN</faultcode>" in response.text
    assert (
        "<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out."
        "</faultstring>" in response.text
    )


# ---------------------------------------------------------------------------------------- sessions


def test_an_unknown_session_is_401_with_the_exact_body(raw: Raw):
    response = raw("GET", "sobjects/", headers={"Authorization": "Bearer 00D000000000001!nope"})

    assert response.status_code == 401
    assert response.content == INVALID_SESSION
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"


def test_no_authorization_header_is_401_invalid_session(raw: Raw):
    response = raw("GET", "limits/", auth=False)

    assert (response.status_code, response.content) == (401, INVALID_SESSION)


def test_expired_sessions_are_401_and_a_direct_session_client_raises(emu, sf: Salesforce, raw: Raw):
    emu.admin("POST", "sessions/expire")

    response = raw("GET", "sobjects/")

    assert (response.status_code, response.content) == (401, INVALID_SESSION)
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query("SELECT Id FROM Lead")
    assert caught.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


# ------------------------------------------------------------------------------------------ limits


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "sobjects/", {}),
        ("GET", "sobjects/Lead/describe", {}),
        ("GET", "query/", {"params": {"q": "SELECT Id FROM Lead"}}),
        ("POST", "sobjects/Lead/", {"json": {"LastName": "x"}}),  # a 400 counts too
        ("GET", "limits/", {}),
        ("POST", "composite/sobjects", {"json": {"records": []}}),
        ("GET", "jobs/ingest", {}),
    ],
)
def test_every_api_response_carries_sforce_limit_info(raw: Raw, method: str, path: str, kwargs: dict):
    before, _ = _usage(raw("GET", "limits/"))

    response = raw(method, path, **kwargs)

    assert _usage(response) == (before + 1, 100000)


def test_limits_agree_with_the_header(sf: Salesforce, raw: Raw):
    response = raw("GET", "limits/")
    used, total = _usage(response)

    daily = response.json()["DailyApiRequests"]

    assert daily == {"Max": total, "Remaining": total - used}
    assert sf.limits()["DailyApiRequests"] == {"Max": total, "Remaining": total - used - 1}
    assert (sf.api_usage["api-usage"].used, sf.api_usage["api-usage"].total) == (used + 1, total)


def test_past_the_daily_allocation_every_call_is_403(emu, sf: Salesforce, raw: Raw):
    emu.admin("POST", "limits", {"remaining": 1})

    last = raw("GET", "sobjects/")
    refused = raw("GET", "sobjects/")

    assert last.status_code == 200
    assert _usage(last) == (100000, 100000)
    assert refused.status_code == 403
    assert refused.content == LIMIT_EXCEEDED
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.Lead.create({"LastName": "x", "Company": "y"})
    assert caught.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]


def test_the_versions_resource_needs_no_session_and_lists_versions(emu):
    response = emu.session().get(f"{emu.instance_url}/services/data/")

    assert response.status_code == 200
    versions = response.json()
    assert versions[-1] == {"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"}
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions


# ----------------------------------------------------------------------------------------- restart


def test_records_sessions_and_the_ca_survive_a_restart(tmp_path: Path, config_file: Path):
    data = tmp_path / "data"
    with start_emulator(data, config_path=config_file) as first:
        ca = Path(first.info["ca_bundle"]).read_bytes()
        session_id, instance = login(first)
        sf = Salesforce(session_id=session_id, instance_url=first.instance_url, session=first.session())
        record_id = sf.Lead.create({"LastName": "Kept", "Company": "C"})["id"]

    with start_emulator(data, config_path=config_file) as second:
        assert Path(second.info["ca_bundle"]).read_bytes() == ca
        sf = Salesforce(session_id=session_id, instance_url=second.instance_url, session=second.session())
        assert sf.Lead.get(record_id)["LastName"] == "Kept"
        new_id = sf.Lead.create({"LastName": "New", "Company": "C"})["id"]
        assert new_id != record_id
