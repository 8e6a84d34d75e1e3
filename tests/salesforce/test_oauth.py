"""OAuth 2.0 logins as data: token requests, their answers, credentials per flow, and the fixes we name."""

import json
import re
import sys

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.versions import MAX_VERSION
from pipeline.auth_options import api_version
from salesforce.connection import MAX_API_VERSION, ConnectionSettings, default_api_version
from salesforce.credentials import (
    CREDENTIAL_VARS,
    Credentials,
    CredentialsSource,
    fetch_secret,
    parse_env_text,
    parse_secret_reference,
)
from salesforce.errors import ConfigurationError, SalesforceLoginError, login_block
from salesforce.oauth import (
    BAD_LOGIN_RESPONSE,
    JWT_BEARER_GRANT,
    TokenAnswer,
    TokenEndpointUnavailable,
    check_login_url,
    jwt_audience,
    login_fix,
    parse_token_answer,
    token_request,
)

NOW = 1_800_000_000.0
NOT_ADMIN_APPROVED = "user is not admin approved to access this app"
JWT_BASE = {"SALESFORCE_CONSUMER_KEY": "k", "SALESFORCE_USERNAME": "u"}


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


# -------------------------------------------------------------------------------------- requests


def test_jwt_bearer_request_is_an_rs256_assertion_valid_three_minutes(rsa_pem):
    creds = Credentials("api@acme.com", auth="jwt", consumer_key="KEY", private_key=rsa_pem)
    settings = ConnectionSettings(login_url="https://acme.my.salesforce.com", sandbox="uat", auth="jwt")
    request = token_request(creds, settings, NOW)
    assert request.url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert sorted(request.form) == ["assertion", "grant_type"]
    assert request.form["grant_type"] == JWT_BEARER_GRANT
    public = serialization.load_pem_private_key(rsa_pem.encode(), None).public_key()
    claims = jwt.decode(
        request.form["assertion"],
        public,
        algorithms=["RS256"],
        audience="https://test.salesforce.com",
        options={"verify_exp": False},
    )
    assert claims == {
        "iss": "KEY",
        "sub": "api@acme.com.uat",
        "aud": "https://test.salesforce.com",
        "exp": 1_800_000_180,
    }
    assert jwt.get_unverified_header(request.form["assertion"])["alg"] == "RS256"


@pytest.mark.parametrize(
    ("creds", "form"),
    [
        (
            Credentials(auth="client_credentials", consumer_key="K", client_secret="S"),
            {"grant_type": "client_credentials", "client_id": "K", "client_secret": "S"},
        ),
        (
            Credentials(auth="refresh_token", consumer_key="K", refresh_token="R"),
            {"grant_type": "refresh_token", "client_id": "K", "refresh_token": "R"},
        ),
        (
            Credentials(auth="refresh_token", consumer_key="K", refresh_token="R", client_secret="S"),
            {"grant_type": "refresh_token", "client_id": "K", "refresh_token": "R", "client_secret": "S"},
        ),
    ],
    ids=["client_credentials", "refresh_token", "refresh_token_with_secret"],
)
def test_token_request_forms(creds, form):
    request = token_request(creds, ConnectionSettings(login_url="https://acme.my.salesforce.com"), NOW)
    assert (request.url, request.form) == ("https://acme.my.salesforce.com/services/oauth2/token", form)
    assert repr(request) == "TokenRequest(url='https://acme.my.salesforce.com/services/oauth2/token')"


@pytest.mark.parametrize(
    ("login_url", "sandbox", "audience"),
    [
        ("https://login.salesforce.com", None, "https://login.salesforce.com"),
        ("https://login.salesforce.com", "uat", "https://test.salesforce.com"),
        ("https://test.salesforce.com", None, "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", None, "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", None, "https://test.salesforce.com"),
        ("https://127.0.0.1:8443", None, "https://login.salesforce.com"),
    ],
)
def test_jwt_audience(login_url, sandbox, audience):
    assert jwt_audience(ConnectionSettings(login_url=login_url, sandbox=sandbox)) == audience


# --------------------------------------------------------------------------------------- answers


def _json(data) -> bytes:
    return json.dumps(data).encode()


def test_a_token_answer_gives_the_session():
    body = _json({"access_token": "00D!tok", "instance_url": "https://acme.my.salesforce.com/", "id": "x"})
    assert parse_token_answer(200, body) == TokenAnswer("00D!tok", "https://acme.my.salesforce.com")


@pytest.mark.parametrize(
    ("status", "body", "code", "message", "reason"),
    [
        (400, {"error": "invalid_grant", "error_description": "authentication failure"}, "invalid_grant",
         "authentication failure", None),
        (400, {"error": "invalid_grant", "error_description": "expired access/refresh token"},
         "invalid_grant", "expired access/refresh token", "token_revoked"),
        (400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"},
         "invalid_grant", "user hasn't approved this consumer", "app_not_approved"),
        (400, {"error": "invalid_app_access", "error_description": NOT_ADMIN_APPROVED},
         "invalid_app_access", NOT_ADMIN_APPROVED, "app_not_approved"),
        (400, {"error": "invalid_grant", "error_description": "ip restricted or invalid login hours"},
         "invalid_grant", "ip restricted or invalid login hours", "ip_restricted"),
        (400, {"error": "invalid_grant", "error_description": "user is locked"}, "invalid_grant",
         "user is locked", "user_locked"),
        (401, {"error": "invalid_client", "error_description": "invalid client credentials"},
         "invalid_client", "invalid client credentials", None),
        (400, {"error": "invalid_grant"}, "invalid_grant", "no reason given", None),
        (400, {"error": "invalid_grant", "error_description": "bad secret Sup3rS3cret!"}, "invalid_grant",
         "bad secret ***", None),
    ],
)  # fmt: skip
def test_an_oauth_error_is_a_refused_login(status, body, code, message, reason):
    with pytest.raises(SalesforceLoginError) as info:
        parse_token_answer(status, _json(body), ("Sup3rS3cret!",))
    error = info.value
    assert (error.code, error.message, error.block and error.block.reason) == (code, message, reason)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, b"<html>oops</html>", "HTTP_500"),
        (503, _json({"error": "x"}), "HTTP_503"),
        (429, b"", "HTTP_429"),
        (200, b"<html>proxy login page</html>", BAD_LOGIN_RESPONSE),
        (200, _json({"access_token": "t"}), BAD_LOGIN_RESPONSE),
        (200, _json({"access_token": "t", "instance_url": "http://plain"}), BAD_LOGIN_RESPONSE),
        (404, b"Not Found", BAD_LOGIN_RESPONSE),
        (403, _json({"message": "forbidden"}), BAD_LOGIN_RESPONSE),
        (200, _json(["a list"]), BAD_LOGIN_RESPONSE),
    ],
)
def test_an_answer_without_a_verdict_is_transient(status, body, code):
    with pytest.raises(TokenEndpointUnavailable) as info:
        parse_token_answer(status, body)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (
            "INVALID_OPERATION_WITH_EXPIRED_PASSWORD",
            "The users password has expired, ...",
            "password_expired",
        ),
        ("PASSWORD_LOCKOUT", "The user has exceeded the allowed number of login attempts.", "user_locked"),
        ("LOGIN_DURING_RESTRICTED_DOMAIN", "The user is not allowed to log in from this IP", "ip_restricted"),
        ("invalid_grant", "IP restricted or invalid login hours", "ip_restricted"),
        ("invalid_grant", "expired access/refresh token", "token_revoked"),
        ("invalid_grant", "user hasn't approved this consumer", "app_not_approved"),
        ("invalid_app_access", "user is not admin approved to access this app", "app_not_approved"),
        ("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.", None),
        ("LOGIN_MUST_USE_SECURITY_TOKEN", "Are you at a new location?", None),
        ("invalid_grant", "authentication failure", None),
        ("invalid_client_id", "client identifier invalid", None),
        ("invalid_grant", "no client credentials user enabled", None),
    ],
)
def test_which_refusals_an_administrator_fixes(code, message, reason):
    block = login_block(code, message)
    assert (block and block.reason) == reason


PASSWORD_CHECK = (
    "Check SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN (and --sandbox / "
    "--salesforce_login_url)"
)


@pytest.mark.parametrize(
    ("auth", "code", "message", "fix"),
    [
        ("password", "INVALID_LOGIN", "Invalid username, password, security token; or user locked out.",
         PASSWORD_CHECK),
        ("password", "INVALID_OPERATION_WITH_EXPIRED_PASSWORD", "expired",
         "Set a new password for the user (Setup > Users > Reset Password, or log in once as the user) and "
         "update SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN where the job reads them; an integration "
         "user's profile can have 'Password never expires'"),
        ("jwt", "invalid_grant", "user hasn't approved this consumer",
         "Pre-authorize the user: Setup > App Manager > the connected app > Manage > Edit Policies, "
         "Permitted Users 'Admin approved users are pre-authorized', then add the user's profile or a "
         "permission set to the app"),
        ("jwt", "invalid_grant", "audience is invalid",
         "Check --sandbox and --salesforce_login_url: the assertion's audience is "
         "https://login.salesforce.com, or https://test.salesforce.com for a sandbox"),
        ("jwt", "invalid_grant", "invalid assertion",
         "Check SALESFORCE_PRIVATE_KEY_FILE (its certificate must be the one uploaded to the connected app), "
         "SALESFORCE_CONSUMER_KEY, SALESFORCE_USERNAME, and this machine's clock (the assertion is valid 3 "
         "minutes)"),
        ("client_credentials", "invalid_client", "invalid client credentials",
         "Check SALESFORCE_CLIENT_SECRET: it is the connected app's Consumer Secret (Manage Consumer "
         "Details)"),
        ("refresh_token", "invalid_client_id", "client identifier invalid",
         "Check SALESFORCE_CONSUMER_KEY: it is the connected app's Consumer Key"),
        ("client_credentials", "invalid_grant", "no client credentials user enabled",
         "Enable the Client Credentials Flow in the connected app's OAuth policies and choose its Run As "
         "user"),
        ("client_credentials", "invalid_request", "request not supported on this domain",
         "Log in at the org's My Domain URL: --salesforce_login_url https://<your domain>.my.salesforce.com"),
        ("refresh_token", "invalid_grant", "expired access/refresh token",
         "Authorize the connected app again and put the new refresh token in SALESFORCE_REFRESH_TOKEN (or "
         "the file or secret the job reads it from)"),
        ("refresh_token", "unsupported_grant_type", "grant type not supported",
         "Enable this OAuth flow in the connected app's policies, or choose another with --auth"),
        ("refresh_token", "invalid_grant", "authentication failure",
         "Check SALESFORCE_CONSUMER_KEY, SALESFORCE_REFRESH_TOKEN and SALESFORCE_CLIENT_SECRET (and "
         "--sandbox / --salesforce_login_url)"),
        # Found by a hostile review: a login URL with a path was answered 404, and the fix named the
        # credentials.
        ("password", "404", "Not Found",
         "Check --salesforce_login_url: give the org's base URL without a path, e.g. "
         "https://login.salesforce.com or https://<your domain>.my.salesforce.com"),
    ],
)  # fmt: skip
def test_the_fix_a_refused_login_names(auth, code, message, fix):
    assert login_fix(auth, code, message) == fix


@pytest.mark.parametrize(
    ("auth", "login_url", "refused"),
    [
        ("client_credentials", "https://login.salesforce.com", True),
        ("client_credentials", "https://test.salesforce.com/", True),
        ("client_credentials", "https://acme.my.salesforce.com", False),
        ("jwt", "https://login.salesforce.com", False),
        ("password", "https://login.salesforce.com", False),
    ],
)
def test_client_credentials_need_my_domain(auth, login_url, refused):
    if refused:
        with pytest.raises(ConfigurationError, match="My Domain URL"):
            check_login_url(auth, login_url)
    else:
        check_login_url(auth, login_url)


# ----------------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("auth", "environ", "message"),
    [
        ("jwt", {"SALESFORCE_USERNAME": "u"}, "SALESFORCE_CONSUMER_KEY is not set"),
        ("jwt", {"SALESFORCE_CONSUMER_KEY": "k"}, "SALESFORCE_USERNAME is not set"),
        ("jwt", JWT_BASE, "SALESFORCE_PRIVATE_KEY_FILE is not set"),
        # The variable the key came from is the one named (a hostile review found _FILE named for both).
        ("jwt", {**JWT_BASE, "SALESFORCE_PRIVATE_KEY": "nope"},
         "SALESFORCE_PRIVATE_KEY does not hold an unencrypted PEM RSA private key"),
        ("jwt", {**JWT_BASE, "SALESFORCE_PRIVATE_KEY_FILE": "/nonexistent/key.pem"},
         "SALESFORCE_PRIVATE_KEY_FILE '/nonexistent/key.pem' cannot be read: No such file or directory"),
        ("client_credentials", {"SALESFORCE_CONSUMER_KEY": "k"}, "SALESFORCE_CLIENT_SECRET is not set"),
        ("client_credentials", {"SALESFORCE_CLIENT_SECRET": "s"}, "SALESFORCE_CONSUMER_KEY is not set"),
        ("refresh_token", {"SALESFORCE_CONSUMER_KEY": "k"}, "SALESFORCE_REFRESH_TOKEN is not set"),
        ("refresh_token", {"SALESFORCE_CONSUMER_KEY": "k", "SALESFORCE_REFRESH_TOKEN": "r",
                           "SALESFORCE_REFRESH_TOKEN_FILE": "/x"}, "both SALESFORCE_REFRESH_TOKEN and "
         "SALESFORCE_REFRESH_TOKEN_FILE are set: keep one"),
        ("kerberos", {}, "auth must be one of password, jwt, client_credentials, refresh_token"),
    ],
)  # fmt: skip
def test_each_flow_names_the_variable_it_misses(auth, environ, message):
    with pytest.raises(ConfigurationError) as info:
        Credentials.from_env(environ, auth)
    assert str(info.value).startswith(message), str(info.value)


def test_each_flow_reads_its_secrets_from_variables_or_files(tmp_path, rsa_pem):
    key = tmp_path / "key.pem"
    key.write_text(rsa_pem)
    (tmp_path / "secret").write_text("s3cret\n")
    (tmp_path / "refresh").write_text("5Aep-refresh\n")
    base = {"SALESFORCE_CONSUMER_KEY": " KEY ", "SALESFORCE_USERNAME": "api@acme.com"}
    assert Credentials.from_env({**base, "SALESFORCE_PRIVATE_KEY_FILE": str(key)}, "jwt") == Credentials(
        "api@acme.com", auth="jwt", consumer_key="KEY", private_key=rsa_pem.rstrip("\n")
    )
    assert Credentials.from_env(
        {**base, "SALESFORCE_CLIENT_SECRET_FILE": str(tmp_path / "secret")}, "client_credentials"
    ) == Credentials("api@acme.com", auth="client_credentials", consumer_key="KEY", client_secret="s3cret")
    assert Credentials.from_env(
        {"SALESFORCE_CONSUMER_KEY": "KEY", "SALESFORCE_REFRESH_TOKEN_FILE": str(tmp_path / "refresh")},
        "refresh_token",
    ) == Credentials(auth="refresh_token", consumer_key="KEY", refresh_token="5Aep-refresh")
    assert Credentials.from_env(
        {**base, "SALESFORCE_PASSWORD_FILE": str(tmp_path / "secret"), "SALESFORCE_SECURITY_TOKEN": "T"}
    ) == Credentials("api@acme.com", "s3cret", "T")


def test_the_repr_shows_the_flow_and_username_only(rsa_pem):
    creds = Credentials(
        "api@acme.com",
        "pw-CANARY",
        "tok-CANARY",
        "refresh_token",
        "key-CANARY",
        "sec-CANARY",
        rsa_pem,
        "rt-CANARY",
    )
    assert repr(creds) == "Credentials(username='api@acme.com', auth='refresh_token')"
    assert creds.secrets()[0] == rsa_pem and "rt-CANARY" in creds.secrets()


def test_every_variable_is_exported_to_local_workers():
    assert set(CREDENTIAL_VARS) >= {
        "SALESFORCE_USERNAME",
        "SALESFORCE_PASSWORD",
        "SALESFORCE_SECURITY_TOKEN",
        "SALESFORCE_CONSUMER_KEY",
        "SALESFORCE_CLIENT_SECRET",
        "SALESFORCE_PRIVATE_KEY_FILE",
        "SALESFORCE_REFRESH_TOKEN",
        "SALESFORCE_REFRESH_TOKEN_FILE",
    }


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("A=1\n# c\n\nexport B = '2'\n", {"A": "1", "B": "2"}),
        ('{"SALESFORCE_PRIVATE_KEY": "-----BEGIN\\nabc\\n-----END", "X": "y"}',
         {"SALESFORCE_PRIVATE_KEY": "-----BEGIN\nabc\n-----END", "X": "y"}),
    ],
)  # fmt: skip
def test_credentials_text_is_name_value_lines_or_json(text, values):
    assert parse_env_text(text, "secret") == values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"A": 1}', "secret: expected a JSON object of names to strings"),
        ("{not json: s3cret", "secret: expected a JSON object of names to strings"),
        ("A=1\ns3cret\n", "secret, line 2: expected NAME=VALUE"),
    ],
)
def test_bad_credentials_text_never_shows_its_values(text, message):
    with pytest.raises(ConfigurationError, match=message) as info:
        parse_env_text(text, "secret")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("reference", "parsed"),
    [
        ("projects/acme-prod/secrets/salesforce/versions/3", ("acme-prod", "salesforce", "3")),
        ("projects/123456789/secrets/sf_login-2/versions/latest", ("123456789", "sf_login-2", "latest")),
        ("projects/acme-prod/secrets/salesforce", None),
        ("projects/acme-prod/secrets/salesforce/versions/", None),
        ("projects/Acme/secrets/salesforce/versions/1", None),
        ("projects/acme-prod/secrets/sales force/versions/1", None),
        ("gcp://acme-prod/salesforce", None),
        ("", None),
    ],
)
def test_secret_manager_references(reference, parsed):
    if parsed is None:
        with pytest.raises(ConfigurationError) as info:
            parse_secret_reference(reference)
        assert str(info.value) == (
            f"--salesforce_secret {reference!r} is not a Secret Manager version: give "
            "projects/PROJECT/secrets/SECRET/versions/VERSION (a number, or latest)"
        )
        with pytest.raises(ConfigurationError):
            CredentialsSource(secret=reference)
    else:
        assert parse_secret_reference(reference) == parsed


def test_a_secret_reference_without_the_extra_says_which_extra(monkeypatch):
    # As on a machine where the extra is not installed: the import fails.
    monkeypatch.setitem(sys.modules, "google.cloud.secretmanager", None)
    source = CredentialsSource(auth="jwt", secret="projects/acme-prod/secrets/salesforce/versions/latest")
    message = (
        "--salesforce_secret needs Google's Secret Manager client, which is not installed: install the "
        "'secretmanager' extra (pip install 'beamforce[secretmanager]') where the job is launched and on its "
        "workers"
    )
    with pytest.raises(ConfigurationError) as info:
        fetch_secret(source.secret)
    assert str(info.value) == message
    with pytest.raises(ConfigurationError) as info:
        source.resolve({})
    assert str(info.value) == message


def test_the_auth_options_are_known_flags():
    # pipeline.main imports pipeline.auth_options before it checks the flags: AuthOptions is then known.
    import pipeline.main  # noqa: F401
    from pipeline.options import unknown_flags

    argv = ["--auth", "jwt", "--salesforce_secret", "projects/p-1234/secrets/s/versions/1", "--autth", "x"]
    assert unknown_flags(argv) == ["--autth"]


# ---------------------------------------------------------------------------------- API versions


def test_the_newest_version_is_the_local_salesforces_newest():
    assert MAX_API_VERSION == float(MAX_VERSION)


@pytest.mark.parametrize(
    ("auth", "given", "version"),
    [
        ("password", None, "64.0"),
        ("jwt", None, "66.0"),
        ("client_credentials", None, "66.0"),
        ("refresh_token", None, "66.0"),
        ("password", "59.0", "59.0"),
        ("jwt", "65.0", "65.0"),
        ("password", "65.0", "--salesforce_api_version '65.0' is not supported (the password login goes "
         "up to 64.0; --auth jwt, client_credentials or refresh_token up to 66.0): give a version from 31.0 "
         "to 64.0"),
        ("password", "67.0", "--salesforce_api_version '67.0' is not supported: give a version from 31.0 "
         "to 64.0"),
        ("jwt", "67.0", "--salesforce_api_version '67.0' is not supported: give a version from 31.0 to 66.0"),
        ("jwt", "30.0", "--salesforce_api_version '30.0' is not supported: give a version from 31.0 to 66.0"),
        ("jwt", "v66.0", "--salesforce_api_version 'v66.0' is not supported"),
    ],
)  # fmt: skip
def test_api_version_by_flow(auth, given, version):
    if version.startswith("--"):
        with pytest.raises(ConfigurationError, match=re.escape(version)):
            api_version(auth, given)
    else:
        assert api_version(auth, given) == version
        assert ConnectionSettings(api_version=version, auth=auth).api_version == version
    assert default_api_version(auth) == ("64.0" if auth == "password" else "66.0")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_version": "65.0"}, "SOAP login"),
        ({"api_version": "67.0", "auth": "jwt"}, "newer than this project supports"),
        ({"auth": "saml"}, "auth must be one of"),
    ],
)
def test_connection_settings_check_the_version_for_the_flow(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        ConnectionSettings(**kwargs)
