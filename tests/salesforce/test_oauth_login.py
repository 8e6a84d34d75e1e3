"""Every login flow against the local Salesforce: a session that works and renews, and each refusal."""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings, default_api_version
from salesforce.credentials import Credentials
from salesforce.errors import SalesforceLoginError
from tests.emulator.oauth_org import (
    CONSUMER_KEY,
    FLOWS,
    flow_environ,
    issue_refresh_token,
    oauth_emulator,
    revoke,
    set_user,
)

IP_RESTRICTED = "ip restricted or invalid login hours"


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with oauth_emulator(tmp_path_factory.mktemp("oauth-login")) as emu:
        yield emu


@pytest.fixture
def org(emu):
    emu.admin("POST", "reset")
    emu.admin("POST", "calls/reset")
    yield emu
    emu.admin("POST", "users/reset")


def _client(emu, auth: str, **overrides: str) -> SalesforceClient:
    environ = {
        **flow_environ(emu, auth, issue_refresh_token(emu) if auth == "refresh_token" else ""),
        **overrides,
    }
    settings = ConnectionSettings(
        login_url=emu.info["login_url"],
        ca_bundle=emu.info["ca_bundle"],
        auth=auth,
        api_version=default_api_version(auth),
        backoff_base_seconds=0.01,
    )
    return SalesforceClient(Credentials.from_env(environ, auth), settings, sleep=lambda s: None)


@pytest.mark.parametrize("auth", FLOWS)
def test_each_flow_logs_in_calls_the_api_and_renews_its_session(org, auth):
    client = _client(org, auth)
    org.admin("POST", "calls/reset")  # the refresh token's own issue is not the client's
    client.login()
    assert client.refresh_api_usage().max == 100_000
    org.admin("POST", "sessions/expire")
    assert client.refresh_api_usage().max == 100_000  # a 401, a new login, the call again
    assert client.session_renewals == 1
    login_kind = "login" if auth == "password" else "oauth"
    assert org.admin("GET", "calls")["by_kind"] == {login_kind: 2, "limits": 2}


@pytest.mark.parametrize(
    ("auth", "state", "code", "message", "reason"),
    [
        ("password", {"password_expired": True}, "INVALID_OPERATION_WITH_EXPIRED_PASSWORD",
         "The users password has expired, you must call SetPassword before attempting any other API "
         "operations", "password_expired"),
        ("password", {"locked": True}, "PASSWORD_LOCKOUT",
         "The user has exceeded the allowed number of login attempts. The user must contact the "
         "administrator to regain login access.", "user_locked"),
        ("password", {"ip_restricted": True}, "LOGIN_DURING_RESTRICTED_DOMAIN",
         "The user is not allowed to log in from this IP address.", "ip_restricted"),
        ("jwt", {"locked": True}, "invalid_grant", "user is locked", "user_locked"),
        ("jwt", {"ip_restricted": True}, "invalid_grant", IP_RESTRICTED, "ip_restricted"),
        ("jwt", {"unapproved_apps": [CONSUMER_KEY]}, "invalid_grant", "user hasn't approved this consumer",
         "app_not_approved"),
        ("client_credentials", {"unapproved_apps": [CONSUMER_KEY]}, "invalid_app_access",
         "user is not admin approved to access this app", "app_not_approved"),
        ("refresh_token", {"ip_restricted": True}, "invalid_grant", IP_RESTRICTED, "ip_restricted"),
        ("jwt", {"password_expired": True}, None, None, None),  # no password in the JWT bearer flow
    ],
)  # fmt: skip
def test_refusals_an_administrator_fixes(org, auth, state, code, message, reason):
    client = _client(org, auth)
    set_user(org, **state)
    if code is None:
        client.login()
        return
    with pytest.raises(SalesforceLoginError) as info:
        client.login()
    error = info.value
    assert (error.code, error.message, error.block.reason) == (code, message, reason)


def test_a_revoked_refresh_token_is_refused(org):
    token = issue_refresh_token(org)
    environ = flow_environ(org, "refresh_token", token)
    settings = ConnectionSettings(
        login_url=org.info["login_url"],
        ca_bundle=org.info["ca_bundle"],
        auth="refresh_token",
        api_version="66.0",
    )
    client = SalesforceClient(Credentials.from_env(environ, "refresh_token"), settings)
    client.login()
    revoke(org, token)
    with pytest.raises(SalesforceLoginError) as info:
        client.login()
    assert (info.value.code, info.value.message, info.value.block.reason) == (
        "invalid_grant",
        "expired access/refresh token",
        "token_revoked",
    )


def test_wrong_secrets_are_refused_without_a_block(org, tmp_path: Path):
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cases = [
        ("client_credentials", {"SALESFORCE_CLIENT_SECRET": "not-it"}, "invalid_client",
         "invalid client credentials"),
        ("client_credentials", {"SALESFORCE_CONSUMER_KEY": "nope"}, "invalid_client_id",
         "client identifier invalid"),
        ("jwt", {"SALESFORCE_PRIVATE_KEY_FILE": str(stranger)}, "invalid_grant", "invalid assertion"),
        ("refresh_token", {"SALESFORCE_REFRESH_TOKEN": "5Aepnot-issued"}, "invalid_grant",
         "expired access/refresh token"),
    ]  # fmt: skip
    for auth, overrides, code, message in cases:
        with pytest.raises(SalesforceLoginError) as info:
            _client(org, auth, **overrides).login()
        assert (info.value.code, info.value.message) == (code, message)
        # A refresh token that was never issued reads as a revoked one: Salesforce does not tell them apart.
        assert (info.value.block is not None) == (auth == "refresh_token")
