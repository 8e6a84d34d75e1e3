"""Logins an administrator blocks: expired passwords, lockouts, IP ranges, unapproved apps, revoked tokens."""

import base64
import time

import jwt
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

from emulator.auth import (
    EXPIRED_PASSWORD_MESSAGE,
    INVALID_LOGIN,
    LOCKOUT_MESSAGE,
    RESTRICTED_DOMAIN_MESSAGE,
)
from emulator.sessions import StateDb, UserState, UserStates
from tests.emulator.conftest import login

ADMIN = "admin@example.com"
KEY, SECRET = "emulator-consumer-key", "emulator-consumer-secret"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def admin_user(emu):
    """The emulator, whose users are put back as configured after the test."""
    yield emu
    emu.admin("POST", "users/reset")


def _set(emu, **state) -> dict:
    return emu.admin("POST", f"users/{ADMIN}", json=state)


@pytest.mark.parametrize(
    ("state", "password", "code", "message"),
    [
        (
            {"password_expired": True},
            None,
            "INVALID_OPERATION_WITH_EXPIRED_PASSWORD",
            EXPIRED_PASSWORD_MESSAGE,
        ),
        ({"locked": True}, None, "PASSWORD_LOCKOUT", LOCKOUT_MESSAGE),
        ({"locked": True}, "wrong", "PASSWORD_LOCKOUT", LOCKOUT_MESSAGE),
        ({"ip_restricted": True}, None, "LOGIN_DURING_RESTRICTED_DOMAIN", RESTRICTED_DOMAIN_MESSAGE),
        ({"ip_restricted": True}, "wrong", "INVALID_LOGIN", INVALID_LOGIN),
        ({"password_expired": True}, "wrong", "INVALID_LOGIN", INVALID_LOGIN),
    ],
    ids=["expired", "locked", "locked_wrong_password", "ip", "ip_wrong_password", "expired_wrong_password"],
)
def test_soap_login_refusals(admin_user, state, password, code, message):
    _set(admin_user, **state)
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        login(admin_user, password=password)
    assert (err.value.code, err.value.auth_message) == (code, message)


def test_a_new_password_replaces_the_configured_one_and_refusals_are_counted(admin_user):
    _set(admin_user, password_expired=True)
    with pytest.raises(SalesforceAuthenticationFailed):
        login(admin_user)
    state = _set(admin_user, password_expired=False, password="new-Pa55word")
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        login(admin_user)  # the configured password
    assert err.value.code == "INVALID_LOGIN"
    session_id, _ = login(admin_user, password="new-Pa55word")
    assert session_id.startswith("00D000000000001!")
    assert state.pop("refresh_tokens") >= 0  # earlier tests' tokens live on
    assert state == {
        "username": ADMIN,
        "password_expired": False,
        "locked": False,
        "ip_restricted": False,
        "password_changed": True,
        "unapproved_apps": [],
        "refused_logins": {"INVALID_OPERATION_WITH_EXPIRED_PASSWORD": 1},
    }
    assert admin_user.admin("DELETE", f"users/{ADMIN}")["password_changed"] is False
    assert login(admin_user)[0].startswith("00D000000000001!")


def _token(emu, form: dict, headers: dict | None = None):
    return emu.session().post(f"{emu.info['login_url']}/services/oauth2/token", data=form, headers=headers)


def _assertion(emu, key: bytes) -> str:
    claims = {"iss": KEY, "sub": ADMIN, "aud": "https://login.salesforce.com", "exp": int(time.time()) + 180}
    return jwt.encode(claims, key, algorithm="RS256")


CLIENT_CREDENTIALS = {"grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET}


@pytest.mark.parametrize(
    ("state", "grant", "error", "description"),
    [
        ({"locked": True}, "client_credentials", "invalid_grant", "user is locked"),
        (
            {"ip_restricted": True},
            "client_credentials",
            "invalid_grant",
            "ip restricted or invalid login hours",
        ),
        ({"ip_restricted": True}, "jwt", "invalid_grant", "ip restricted or invalid login hours"),
        ({"unapproved_apps": [KEY]}, "jwt", "invalid_grant", "user hasn't approved this consumer"),
        (
            {"unapproved_apps": [KEY]},
            "client_credentials",
            "invalid_app_access",
            "user is not admin approved to access this app",
        ),
        ({"unapproved_apps": ["another-app"]}, "jwt", None, None),
        ({"password_expired": True}, "jwt", None, None),
    ],
)
def test_oauth_refusals(admin_user, jwt_key, state, grant, error, description):
    _set(admin_user, **state)
    form = (
        {"grant_type": JWT_GRANT, "assertion": _assertion(admin_user, jwt_key[0])}
        if grant == "jwt"
        else CLIENT_CREDENTIALS
    )
    response = _token(admin_user, form)
    if error is None:
        assert response.status_code == 200
        return
    assert (response.status_code, response.json()) == (
        400,
        {"error": error, "error_description": description},
    )
    assert admin_user.admin("GET", f"users/{ADMIN}")["refused_logins"] == {f"{error}: {description}": 1}


def test_a_revoked_refresh_token_is_refused_and_a_revoked_access_token_expires(admin_user):
    tokens = admin_user.admin("GET", f"users/{ADMIN}")["refresh_tokens"]
    issued = _token(
        admin_user,
        {
            "grant_type": "password",
            "client_id": KEY,
            "client_secret": SECRET,
            "username": ADMIN,
            "password": admin_user.info["password"] + admin_user.info["security_token"],
        },
    ).json()
    refresh = {"grant_type": "refresh_token", "client_id": KEY, "refresh_token": issued["refresh_token"]}
    assert _token(admin_user, refresh).status_code == 200
    assert admin_user.admin("GET", f"users/{ADMIN}")["refresh_tokens"] == tokens + 1
    sf = Salesforce(
        session_id=issued["access_token"], instance_url=admin_user.instance_url, session=admin_user.session()
    )
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0

    revoke_url = f"{admin_user.info['login_url']}/services/oauth2/revoke"
    for token in (issued["refresh_token"], issued["access_token"], "never-issued"):
        assert admin_user.session().post(revoke_url, data={"token": token}).status_code == 200

    response = _token(admin_user, refresh)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "expired access/refresh token"},
    )
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Lead")
    assert admin_user.admin("GET", f"users/{ADMIN}")["refresh_tokens"] == tokens


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"locked": "yes"}, "'locked' must be true or false"),
        ({"frozen": True}, "unknown key(s) ['frozen']"),
        ({"password": ""}, "'password' must be a non-empty string"),
        ({"unapproved_apps": "app"}, "'unapproved_apps' must be a list of consumer keys"),
        (["locked"], "Expected a JSON object"),
    ],
)
def test_bad_user_states_are_refused(admin_user, body, message):
    response = admin_user.session().post(f"{admin_user.info['admin_url']}/users/{ADMIN}", json=body)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_INPUT"
    assert message in response.json()[0]["message"]


def test_an_unknown_user_is_not_found(admin_user):
    response = admin_user.session().get(f"{admin_user.info['admin_url']}/users/nobody@example.com")
    assert (response.status_code, response.json()[0]["errorCode"]) == (404, "NOT_FOUND")


def test_user_states_survive_a_restart(tmp_path):
    db = StateDb(tmp_path / "server.sqlite3")
    UserStates(db).put("Admin@Example.com", UserState(password="p2", locked=True, unapproved_apps=("k",)))
    again = UserStates(db)
    assert again.get("admin@example.com") == UserState(password="p2", locked=True, unapproved_apps=("k",))
    again.put("admin@example.com", UserState())
    assert UserStates(db).get("admin@example.com") == UserState()
    db.close()


def test_basic_auth_header_still_identifies_the_app_of_a_blocked_user(admin_user):
    _set(admin_user, unapproved_apps=[KEY])
    basic = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    response = _token(admin_user, {"grant_type": "client_credentials"}, {"Authorization": basic})
    assert response.json()["error"] == "invalid_app_access"
