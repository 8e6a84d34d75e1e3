"""SOAP partner login and the OAuth 2.0 token endpoint, through simple-salesforce's own login helpers."""

import base64
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession
from simple_salesforce.login import soap_login, token_login

from emulator.auth import INVALID_LOGIN, MUST_USE_TOKEN
from emulator.sessions import SessionStore, StateDb
from tests.emulator.conftest import API, NO_TOKEN_USER, SANDBOX_USER, login

SOAP_HEADERS = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}


def test_soap_login_gives_a_working_session(emu):
    session_id, instance = login(emu)
    assert session_id.startswith("00D000000000001!")
    assert f"https://{instance}" == emu.instance_url
    sf = Salesforce(session_id=session_id, instance_url=f"https://{instance}", session=emu.session())
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0
    assert emu.admin("GET", "calls")["by_kind"] == {"login": 1, "query": 1}


def test_soap_login_response_has_unprefixed_result_fields(emu):
    body = _soap_body(emu.info["username"], emu.info["password"] + emu.info["security_token"])
    response = emu.session().post(
        f"{emu.info['login_url']}/services/Soap/u/{API}", body, headers=SOAP_HEADERS
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    text = response.text
    assert f"<serverUrl>{emu.instance_url}/services/Soap/u/{API}/00D000000000001</serverUrl>" in text
    assert "<sandbox>false</sandbox>" in text
    assert "<userName>admin@example.com</userName>" in text
    assert "<sessionSecondsValid>7200</sessionSecondsValid>" in text


def test_sandbox_user_logs_in_with_the_sandbox_suffix(emu):
    login_name = f"{SANDBOX_USER['username']}.{SANDBOX_USER['sandbox']}"
    body = _soap_body(login_name, SANDBOX_USER["password"] + SANDBOX_USER["security_token"])
    response = emu.session().post(
        f"{emu.info['login_url']}/services/Soap/u/{API}", body, headers=SOAP_HEADERS
    )
    assert response.status_code == 200
    assert "<sandbox>true</sandbox>" in response.text
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        login(emu, SANDBOX_USER["username"], SANDBOX_USER["password"], SANDBOX_USER["security_token"])
    assert err.value.code == "INVALID_LOGIN"


def test_user_without_a_token_logs_in_with_the_password_alone(emu):
    session_id, _ = login(emu, NO_TOKEN_USER["username"], NO_TOKEN_USER["password"], "")
    assert session_id.startswith("00D000000000001!")


@pytest.mark.parametrize(
    ("password", "token", "code", "message"),
    [
        ("wrong", None, "INVALID_LOGIN", INVALID_LOGIN),
        (None, "WRONGTOKEN", "INVALID_LOGIN", INVALID_LOGIN),
        (None, "", "LOGIN_MUST_USE_SECURITY_TOKEN", MUST_USE_TOKEN),
    ],
)
def test_bad_credentials_get_the_salesforce_fault(emu, password, token, code, message):
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        login(emu, password=password, token=token)
    assert (err.value.code, err.value.auth_message) == (code, message)


def test_unknown_user_gets_invalid_login_as_http_500_fault(emu):
    body = _soap_body("nobody@example.com", "x")
    response = emu.session().post(
        f"{emu.info['login_url']}/services/Soap/u/{API}", body, headers=SOAP_HEADERS
    )
    assert response.status_code == 500
    assert "<faultcode>sf:INVALID_LOGIN</faultcode>" in response.text
    assert f"<faultstring>INVALID_LOGIN: {INVALID_LOGIN}</faultstring>" in response.text


@pytest.mark.parametrize(
    ("version", "code", "message"),
    [
        (
            "65.0",
            "INVALID_OPERATION",
            "The SOAP Login operation is not available in the API version "
            "specified (65.0). Refer to the documentation for supported versions.",
        ),
        (
            "66.0",
            "INVALID_OPERATION",
            "The SOAP Login operation is not available in the API version "
            "specified (66.0). Refer to the documentation for supported versions.",
        ),
        ("30.0", "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL"),
    ],
)
def test_soap_login_refused_by_version(emu, version, code, message):
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        login(emu, version=version)
    assert (err.value.code, err.value.auth_message) == (code, message)


def test_soap_login_through_soap_login_helper_with_escaped_characters(emu):
    # simple-salesforce html-escapes the username and password; the XML parser must unescape them.
    body = _soap_body("admin@example.com", "emulator-password" + "EMULATORTOKEN")
    session_id, instance = soap_login(
        f"{emu.info['login_url']}/services/Soap/u/{API}", body, SOAP_HEADERS, None, emu.session()
    )
    assert f"https://{instance}" == emu.instance_url
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        soap_login(
            f"{emu.info['login_url']}/services/Soap/u/{API}",
            _soap_body("admin@example.com", "a&amp;b&lt;c"),
            SOAP_HEADERS,
            None,
            emu.session(),
        )
    assert err.value.code == "INVALID_LOGIN"


def test_expired_session_answers_401_invalid_session_id(emu, sf, raw):
    assert emu.admin("POST", "sessions/expire")["expired"] >= 1
    response = raw("GET", "limits")
    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    with pytest.raises(SalesforceExpiredSession):
        sf.limits()
    session_id, _ = login(emu)  # a fresh login works again
    raw.session_id = session_id
    assert raw("GET", "limits").status_code == 200


# ------------------------------------------------------------------------------------------ OAuth


def _token_url(emu) -> str:
    return f"{emu.info['login_url']}/services/oauth2/token"


def _basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def test_client_credentials_with_basic_auth(emu):
    info = emu.info
    token, instance = token_login(
        _token_url(emu),
        {"grant_type": "client_credentials"},
        "emu",
        info["consumer_key"],
        _basic(info["consumer_key"], info["consumer_secret"]),
        None,
        emu.session(),
    )
    assert f"https://{instance}" == emu.instance_url
    sf = Salesforce(session_id=token, instance_url=emu.instance_url, session=emu.session())
    assert sf.limits()["DailyApiRequests"]["Max"] == 100000
    assert emu.admin("GET", "calls")["by_kind"] == {"oauth": 1, "limits": 1}


def test_client_credentials_with_form_fields(emu):
    info = emu.info
    form = {
        "grant_type": "client_credentials",
        "client_id": info["consumer_key"],
        "client_secret": info["consumer_secret"],
    }
    response = emu.session().post(_token_url(emu), data=form)
    assert response.status_code == 200
    assert sorted(response.json()) == [
        "access_token",
        "id",
        "instance_url",
        "issued_at",
        "scope",
        "signature",
        "token_type",
    ]
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("form", "headers", "error", "description"),
    [
        (
            {"grant_type": "client_credentials"},
            _basic("emulator-consumer-key", "bad"),
            "invalid_client",
            "invalid client credentials",
        ),
        (
            {"grant_type": "client_credentials"},
            _basic("nope", "bad"),
            "invalid_client_id",
            "client identifier invalid",
        ),
        ({"grant_type": "authorization_code"}, {}, "unsupported_grant_type", "grant type not supported"),
        (
            {
                "grant_type": "password",
                "client_id": "emulator-consumer-key",
                "client_secret": "emulator-consumer-secret",
                "username": "admin@example.com",
                "password": "emulator-password",
            },
            {},
            "invalid_grant",
            "authentication failure",
        ),
        (
            {
                "grant_type": "refresh_token",
                "client_id": "emulator-consumer-key",
                "refresh_token": "5Aepnope",
            },
            {},
            "invalid_grant",
            "expired access/refresh token",
        ),
    ],
)
def test_oauth_errors_have_salesforce_bodies(emu, form, headers, error, description):
    response = emu.session().post(_token_url(emu), data=form, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        token_login(_token_url(emu), form, "emu", "k", headers, None, emu.session())
    assert (err.value.code, err.value.auth_message) == (error, description)


def test_password_grant_issues_a_refresh_token_that_works(emu):
    info = emu.info
    form = {
        "grant_type": "password",
        "client_id": info["consumer_key"],
        "client_secret": info["consumer_secret"],
        "username": info["username"],
        "password": info["password"] + info["security_token"],
    }
    first = emu.session().post(_token_url(emu), data=form).json()
    refresh = {
        "grant_type": "refresh_token",
        "client_id": info["consumer_key"],
        "refresh_token": first["refresh_token"],
    }
    token, instance = token_login(
        _token_url(emu), refresh, "emu", info["consumer_key"], None, None, emu.session()
    )
    assert token != first["access_token"]
    sf = Salesforce(session_id=token, instance_url=f"https://{instance}", session=emu.session())
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


def _assertion(emu, key: bytes, **overrides) -> str:
    claims = {
        "iss": emu.info["consumer_key"],
        "sub": emu.info["username"],
        "aud": "https://login.salesforce.com",
        "exp": f"{time.time() + 180:.0f}",
    }  # a string, as simple-salesforce sends it
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256")


def test_jwt_bearer_grant(emu, jwt_key):
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": _assertion(emu, jwt_key[0]),
    }
    token, instance = token_login(
        _token_url(emu), form, "emu", emu.info["consumer_key"], None, None, emu.session()
    )
    sf = Salesforce(session_id=token, instance_url=f"https://{instance}", session=emu.session())
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0
    own_url = _assertion(emu, jwt_key[0], aud=emu.info["login_url"])
    response = emu.session().post(_token_url(emu), data={**form, "assertion": own_url})
    assert response.status_code == 200


def test_jwt_bearer_errors(emu, jwt_key):
    key = jwt_key[0]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cases = [
        (_assertion(emu, key, exp=int(time.time()) - 60), "invalid_grant", "expired authorization code"),
        (_assertion(emu, key, aud="https://example.com"), "invalid_grant", "audience is invalid"),
        (_assertion(emu, stranger), "invalid_grant", "invalid assertion"),
        (_assertion(emu, key, iss="unknown-key"), "invalid_client_id", "client identifier invalid"),
        ("not-a-jwt", "invalid_grant", "invalid assertion"),
    ]
    for assertion, error, description in cases:
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        response = emu.session().post(_token_url(emu), data=form)
        assert (response.status_code, response.json()) == (
            400,
            {"error": error, "error_description": description},
        )


def _soap_body(username: str, password: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope
        xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header>
        <urn:CallOptions>
            <urn:client>simple-salesforce</urn:client>
            <urn:defaultNamespace>sf</urn:defaultNamespace>
        </urn:CallOptions>
    </env:Header>
    <env:Body>
        <n1:login xmlns:n1="urn:partner.soap.sforce.com">
            <n1:username>{username}</n1:username>
            <n1:password>{password}</n1:password>
        </n1:login>
    </env:Body>
</env:Envelope>"""


def test_sessions_expire_after_their_lifetime(tmp_path):
    # The store's clock is injected: the lifetime is checked without waiting for it.
    now = [1_000_000.0]
    db = StateDb(tmp_path / "state.sqlite3")
    store = SessionStore(db, "00D000000000001AAA", 7200, clock=lambda: now[0])
    session = store.create("admin@example.com", "005000000000001AAA")
    now[0] += 7199
    assert store.validate(session.token) == session
    now[0] += 1
    assert store.validate(session.token) is None
    fresh = store.create("admin@example.com", "005000000000001AAA")
    reopened = SessionStore(db, "00D000000000001AAA", 7200, clock=lambda: now[0])
    assert reopened.validate(fresh.token) == fresh
    assert reopened.validate(session.token) is None
    db.close()
