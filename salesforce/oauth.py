"""OAuth 2.0 logins to Salesforce as data: token requests of the JWT bearer, client credentials and refresh
token flows, their answers, and what to fix when a login is refused. salesforce.login sends them."""

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jwt

from salesforce.connection import PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL, ConnectionSettings
from salesforce.credentials import (
    CLIENT_CREDENTIALS,
    CLIENT_SECRET_VAR,
    CONSUMER_KEY_VAR,
    FILE_SUFFIX,
    FLOW_VARS,
    JWT,
    PRIVATE_KEY_VAR,
    REFRESH_TOKEN,
    Credentials,
)
from salesforce.errors import ConfigurationError, SalesforceLoginError

TOKEN_PATH = "/services/oauth2/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce takes a JWT bearer assertion whose exp is at most three minutes ahead.
ASSERTION_SECONDS = 180
BAD_LOGIN_RESPONSE = "BAD_LOGIN_RESPONSE"  # an answer that is neither a token nor an OAuth error
FLOW_NAMES = {
    "password": "password login",
    JWT: "JWT bearer flow",
    CLIENT_CREDENTIALS: "client credentials flow",
    REFRESH_TOKEN: "refresh token flow",
}
# Salesforce's own login hosts, where the client credentials flow is refused: it needs the My Domain URL.
_SHARED_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


@dataclass(frozen=True)
class TokenRequest:
    """One POST to the token endpoint: its URL and form (which holds secrets, so no repr)."""

    url: str
    form: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class TokenAnswer:
    access_token: str = field(repr=False)
    instance_url: str  # https://host[:port] that REST and Bulk calls go to


class TokenEndpointUnavailable(Exception):
    """The token endpoint gave no verdict (5xx, 429, not an OAuth answer): trying again may help."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def token_url(settings: ConnectionSettings) -> str:
    return f"{settings.effective_login_url}{TOKEN_PATH}"


def jwt_audience(settings: ConnectionSettings) -> str:
    """The assertion's `aud`: Salesforce's sandbox login host for a sandbox, else the production one
    (also when logging in at a My Domain URL)."""
    host = urlsplit(settings.effective_login_url).hostname or ""
    sandbox = settings.sandbox or host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com")
    return SANDBOX_LOGIN_URL if sandbox else PRODUCTION_LOGIN_URL


def jwt_assertion(credentials: Credentials, settings: ConnectionSettings, now: float) -> str:
    """The JWT bearer assertion, signed RS256 with the connected app's key, valid ASSERTION_SECONDS."""
    claims = {
        "iss": credentials.consumer_key,
        "sub": settings.login_username(credentials.username),
        "aud": jwt_audience(settings),
        "exp": int(now) + ASSERTION_SECONDS,
    }
    return jwt.encode(claims, credentials.private_key, algorithm="RS256")


def token_request(credentials: Credentials, settings: ConnectionSettings, now: float) -> TokenRequest:
    """The token request of flow `credentials.auth` (`now`: epoch seconds, for the JWT's expiry)."""
    auth = credentials.auth
    if auth == JWT:
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": jwt_assertion(credentials, settings, now)}
    elif auth == CLIENT_CREDENTIALS:
        form = {
            "grant_type": "client_credentials",
            "client_id": credentials.consumer_key,
            "client_secret": credentials.client_secret,
        }
    elif auth == REFRESH_TOKEN:
        form = {
            "grant_type": "refresh_token",
            "client_id": credentials.consumer_key,
            "refresh_token": credentials.refresh_token,
        }
        if credentials.client_secret:
            form["client_secret"] = credentials.client_secret
    else:
        raise ValueError(f"not an OAuth flow: {auth!r}")
    return TokenRequest(token_url(settings), form)


def parse_token_answer(status: int, body: bytes, secrets: tuple[str, ...] = ()) -> TokenAnswer:
    """The token in a 200 answer; SalesforceLoginError for an OAuth error answer, TokenEndpointUnavailable
    when the answer is no verdict. `secrets` are scrubbed from any text kept from the answer."""
    if status >= 500 or status == 429:
        raise TokenEndpointUnavailable(f"HTTP_{status}", "the token endpoint is unavailable")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise TokenEndpointUnavailable(BAD_LOGIN_RESPONSE, f"HTTP {status} without an OAuth JSON answer")
    if status == 200:
        token, instance = data.get("access_token"), data.get("instance_url")
        if isinstance(token, str) and token and isinstance(instance, str) and instance.startswith("https://"):
            return TokenAnswer(token, instance.rstrip("/"))
        raise TokenEndpointUnavailable(BAD_LOGIN_RESPONSE, "the answer has no access_token and instance_url")
    error = data.get("error")
    if not isinstance(error, str) or not error:
        raise TokenEndpointUnavailable(BAD_LOGIN_RESPONSE, f"HTTP {status} without an OAuth error")
    description = str(data.get("error_description") or "no reason given")
    raise SalesforceLoginError(error[:80], scrub(description, secrets))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` without any of `secrets` (longest first), at most 500 characters."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text[:500]


def check_login_url(auth: str, login_url: str) -> None:
    """The client credentials flow is refused at Salesforce's shared login hosts: it needs My Domain."""
    host = urlsplit(login_url).hostname or ""
    if auth == CLIENT_CREDENTIALS and host in _SHARED_LOGIN_HOSTS:
        raise ConfigurationError(
            f"--auth client_credentials logs in at the org's My Domain URL, not {login_url}: give it with "
            "--salesforce_login_url, e.g. https://acme.my.salesforce.com (Setup > My Domain)"
        )


# (flow or "" for any, code, words in the message) -> what to fix. Salesforce's words: Salesforce Help
# "OAuth 2.0 Authorization Errors" and answers seen from the token endpoint.
_FIXES = (
    ("", "invalid_client_id", "", f"Check {CONSUMER_KEY_VAR}: it is the connected app's Consumer Key"),
    (
        "",
        "invalid_client",
        "",
        f"Check {CLIENT_SECRET_VAR}: it is the connected app's Consumer Secret (Manage Consumer Details)",
    ),
    (
        CLIENT_CREDENTIALS,
        "invalid_grant",
        "no client credentials user enabled",
        "Enable the Client Credentials Flow in the connected app's OAuth policies and choose its Run As user",
    ),
    (
        "",
        "invalid_request",
        "not supported on this domain",
        "Log in at the org's My Domain URL: --salesforce_login_url https://<your domain>.my.salesforce.com",
    ),
    (
        JWT,
        "invalid_grant",
        "audience",
        "Check --sandbox and --salesforce_login_url: the assertion's audience is "
        f"{PRODUCTION_LOGIN_URL}, or {SANDBOX_LOGIN_URL} for a sandbox",
    ),
    (
        JWT,
        "invalid_grant",
        "",
        f"Check {PRIVATE_KEY_VAR}{FILE_SUFFIX} (its certificate must be the one uploaded to the connected "
        f"app), {CONSUMER_KEY_VAR}, SALESFORCE_USERNAME, and this machine's clock (the assertion is valid "
        f"{ASSERTION_SECONDS // 60} minutes)",
    ),
    (
        "",
        "unsupported_grant_type",
        "",
        "Enable this OAuth flow in the connected app's policies, or choose another with --auth",
    ),
)


def login_fix(auth: str, code: str, message: str) -> str:
    """What to do about a refused login of flow `auth`, for people: the fix of an administrator-fixable
    cause, a fix for a known OAuth error, else the flow's variables to check."""
    block = SalesforceLoginError(code, message).block
    if block is not None:
        return block.fix[0].upper() + block.fix[1:]
    if code in ("404", "405"):
        # No login service at that URL: most often a path after the host (the API's paths are added).
        return (
            "Check --salesforce_login_url: give the org's base URL without a path, e.g. "
            "https://login.salesforce.com or https://<your domain>.my.salesforce.com"
        )
    text = (message or "").lower()
    for flow, wanted, words, fix in _FIXES:
        if flow in ("", auth) and code == wanted and words in text:
            return fix
    names = FLOW_VARS.get(auth, FLOW_VARS["password"])
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    return f"Check {listed} (and --sandbox / --salesforce_login_url)"
