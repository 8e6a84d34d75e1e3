"""Logging in as Salesforce does: the SOAP partner login() and the OAuth 2.0 token endpoint.

What an administrator does to a user between logins is set through the admin API (not Salesforce):

- `GET /_emulator/users/{username}` -> the user's state and the logins refused per error code.
- `POST /_emulator/users/{username}` with any of `password` (a new password), `password_expired`,
  `locked`, `ip_restricted` (booleans) and `unapproved_apps` (consumer keys the user is not admin
  approved for) -> the new state; keys left out keep their value. `DELETE` puts the user back as
  configured; `POST /_emulator/users/reset` does so for every user.

Salesforce's own `POST /services/oauth2/revoke` (form `token=`) revokes a refresh or access token.
"""

import base64
import dataclasses
import hashlib
import hmac
import logging
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs
from xml.parsers import expat
from xml.sax.saxutils import escape

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.config import ORG_NAME, ConnectedApp, OrgConfig, User
from emulator.responses import JSONResponse
from emulator.sessions import USER_FLAGS, UserState, UserStates

log = logging.getLogger(__name__)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
MIN_SOAP_VERSION = 31.0  # 21.0-30.0 are retired
SOAP_LOGIN_RETIRED_FROM = 65.0  # login() is not available in API 65.0 and later
MAX_LOGIN_BODY = 1 << 20
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SALESFORCE_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")

INVALID_LOGIN = "Invalid username, password, security token; or user locked out."
MUST_USE_TOKEN = (
    "Invalid username, password, security token; or user locked out. Are you at a new location? "
    "When accessing Salesforce--either via a desktop client or the API--from outside of your "
    "company’s trusted networks, you must add a security token to your password to log in. To get "
    "your new security token, log in to Salesforce. From your personal settings, enter Reset My "
    "Security Token in the Quick Find box, then select Reset My Security Token."
)
# KB 000212767 ("Best Practices For Handling Failed Logins"): the fault of a login with an expired password.
EXPIRED_PASSWORD = "INVALID_OPERATION_WITH_EXPIRED_PASSWORD"
EXPIRED_PASSWORD_MESSAGE = (
    "The users password has expired, you must call SetPassword before attempting any other API operations"
)
# The partner API's ExceptionCode values and their descriptions (SOAP API guide, "ExceptionCode").
PASSWORD_LOCKOUT = "PASSWORD_LOCKOUT"
LOCKOUT_MESSAGE = (
    "The user has exceeded the allowed number of login attempts. The user must contact the administrator "
    "to regain login access."
)
RESTRICTED_DOMAIN = "LOGIN_DURING_RESTRICTED_DOMAIN"
RESTRICTED_DOMAIN_MESSAGE = "The user is not allowed to log in from this IP address."
# OAuth's error_description texts (Salesforce Help "OAuth 2.0 Authorization Errors" and answers seen
# from Salesforce; "user is locked" is third-party).
OAUTH_IP_RESTRICTED = "ip restricted or invalid login hours"
OAUTH_LOCKED = "user is locked"
OAUTH_NOT_APPROVED_JWT = "user hasn't approved this consumer"
OAUTH_NOT_ADMIN_APPROVED = "user is not admin approved to access this app"
_VERSION = re.compile(r"\d{1,3}\.\d")


class _BadXml(Exception):
    """The SOAP request is not well-formed (or declares a DTD, which we never expand)."""


def routes() -> list[Route]:
    return [
        Route("/services/Soap/u/{version}", soap_login, methods=["POST"]),
        Route("/services/oauth2/token", oauth_token, methods=["POST"]),
        Route("/services/oauth2/revoke", oauth_revoke, methods=["POST"]),
        Route("/_emulator/users/reset", reset_users, methods=["POST"]),
        Route("/_emulator/users/{username}", user_state, methods=["GET", "POST", "DELETE"]),
    ]


def user_states(request: Request) -> UserStates:
    """The app's user states, created on first use from the server's state database."""
    state = request.app.state
    states = getattr(state, "user_states", None)
    if states is None:
        states = state.user_states = UserStates(state.sessions.db)
    return states


def _with_password_set(user: User, state: UserState) -> User:
    """The user with the password an administrator set, if any."""
    return user if state.password is None else dataclasses.replace(user, password=state.password)


# ---------------------------------------------------------------------------------------------- SOAP


async def soap_login(request: Request) -> Response:
    request.app.state.calls.count("login")
    version = request.path_params["version"]
    if not _VERSION.fullmatch(version) or float(version) < MIN_SOAP_VERSION:
        return soap_fault(
            "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL", "UnexpectedErrorFault"
        )
    if float(version) >= SOAP_LOGIN_RETIRED_FROM:
        return soap_fault(
            "INVALID_OPERATION",
            f"The SOAP Login operation is not available in the API version specified ({version}). "
            "Refer to the documentation for supported versions.",
            "UnexpectedErrorFault",
        )
    body = await request.body()
    if len(body) > MAX_LOGIN_BODY:
        return soap_client_fault("The request body is too large", status=413)
    try:
        username, password = parse_login(body)
    except _BadXml as exc:
        return soap_client_fault(str(exc))
    config: OrgConfig = request.app.state.config
    user = find_user(config, username)
    states = user_states(request)
    state = states.get(user.login_name) if user is not None else UserState()
    if user is not None:
        user = _with_password_set(user, state)
        refusal = _soap_refusal(user, state, password)
        if refusal is not None:
            states.refused(user.login_name, refusal[0])
            return soap_fault(*refusal, "LoginFault")
    if user is None or password != user.password + user.security_token:
        if user is not None and user.security_token and password == user.password:
            return soap_fault("LOGIN_MUST_USE_SECURITY_TOKEN", MUST_USE_TOKEN, "LoginFault")
        return soap_fault("INVALID_LOGIN", INVALID_LOGIN, "LoginFault")
    session = request.app.state.sessions.create(user.login_name, user.user_id)
    log.info("SOAP login for %s", user.login_name)
    return Response(
        login_response(config, user, session.token, base_url(request), version),
        media_type="text/xml; charset=utf-8",
    )


def _soap_refusal(user: User, state: UserState, password: str) -> tuple[str, str] | None:
    """(code, message) of a login refused for the user's state rather than for its credentials."""
    if state.locked:  # whatever the password: a locked user cannot log in
        return PASSWORD_LOCKOUT, LOCKOUT_MESSAGE
    if password != user.password + user.security_token:
        return None  # INVALID_LOGIN, as for anyone
    if state.ip_restricted:
        return RESTRICTED_DOMAIN, RESTRICTED_DOMAIN_MESSAGE
    if state.password_expired:
        return EXPIRED_PASSWORD, EXPIRED_PASSWORD_MESSAGE
    return None


def parse_login(body: bytes) -> tuple[str, str]:
    """(username, password) of a partner login() request; the XML parser does all unescaping."""
    _refuse_dtd(body)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise _BadXml(f"Unable to parse the SOAP request: {exc}") from exc
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise _BadXml("Expected a SOAP 1.1 Envelope")
    soap_body = root.find(f"{{{SOAP_ENV}}}Body")
    operation = soap_body[0] if soap_body is not None and len(soap_body) else None
    if operation is None or operation.tag != f"{{{PARTNER}}}login":
        name = operation.tag if operation is not None else "(none)"
        raise _BadXml(f"No operation available for request {name}")
    username = operation.findtext(f"{{{PARTNER}}}username") or ""
    password = operation.findtext(f"{{{PARTNER}}}password") or ""
    return username, password


def _refuse_dtd(body: bytes) -> None:
    # Entities are how XML bombs and external-entity reads work; a SOAP request never needs a DTD.
    def refuse(*_args) -> None:
        raise _BadXml("DOCTYPE is not allowed in a SOAP request")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise _BadXml(f"Unable to parse the SOAP request: {exc}") from exc


def find_user(config: OrgConfig, login_name: str) -> User | None:
    # Salesforce usernames are case-insensitive.
    wanted = login_name.strip().lower()
    return next((u for u in config.users if u.login_name.lower() == wanted), None)


def base_url(request: Request) -> str:
    return f"https://{request.headers.get('host') or request.url.netloc}"


def login_response(config: OrgConfig, user: User, session_id: str, base: str, version: str) -> bytes:
    org15 = config.org_id[:15]
    # Elements are un-prefixed (default namespace): simple-salesforce looks up `sessionId` by its
    # literal qualified name.
    fields = {
        "accessibilityMode": "false",
        "chatterExternal": "false",
        "currencySymbol": "$",
        "orgAttachmentFileSizeLimit": "5242880",
        "orgDefaultCurrencyIsoCode": "USD",
        "orgDefaultCurrencyLocale": "en_US",
        "orgDisallowHtmlAttachments": "false",
        "orgHasPersonAccounts": "false",
        "organizationId": config.org_id,
        "organizationMultiCurrency": "false",
        "organizationName": ORG_NAME,
        "profileId": "00e000000000001AAA",
        "roleId": None,
        "sessionSecondsValid": str(config.session_lifetime_seconds),
        "userDefaultCurrencyIsoCode": None,
        "userEmail": user.username,
        "userFullName": "Emulator User",
        "userId": user.user_id,
        "userLanguage": "en_US",
        "userLocale": "en_US",
        "userName": user.login_name,
        "userTimeZone": "America/Los_Angeles",
        "userType": "Standard",
        "userUiSkin": "Theme3",
    }
    info = "".join(
        f'<{k} xsi:nil="true"/>' if v is None else f"<{k}>{escape(v)}</{k}>" for k, v in fields.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns="{PARTNER}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{escape(base)}/services/Soap/m/{version}/{org15}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired>"
        f"<sandbox>{'true' if user.sandbox or config.is_sandbox else 'false'}</sandbox>"
        f"<serverUrl>{escape(base)}/services/Soap/u/{version}/{org15}</serverUrl>"
        f"<sessionId>{escape(session_id)}</sessionId>"
        f"<userId>{user.user_id}</userId>"
        f"<userInfo>{info}</userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    ).encode()


def soap_fault(code: str, message: str, fault_type: str) -> Response:
    """Salesforce's partner-API fault: HTTP 500, `sf:exceptionCode` and `sf:exceptionMessage`."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode>"
        f"<faultstring>{escape(code)}: {escape(message)}</faultstring>"
        f'<detail><sf:{fault_type} xsi:type="sf:{fault_type}">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        f"</sf:{fault_type}></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status_code=500, media_type="text/xml; charset=utf-8")


def soap_client_fault(message: str, status: int = 500) -> Response:
    """A request the SOAP stack cannot read: a `soapenv:Client` fault without an exception code."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>soapenv:Client</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


# --------------------------------------------------------------------------------------------- OAuth


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status


async def oauth_token(request: Request) -> Response:
    request.app.state.calls.count("oauth")
    body = await request.body()
    try:
        if len(body) > MAX_LOGIN_BODY:
            raise OAuthError("invalid_request", "request body too large", 413)
        try:
            form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except (UnicodeDecodeError, ValueError) as exc:
            raise OAuthError("invalid_request", "malformed form body") from exc
        user, app, refresh = _grant(request, form)
        _check_user(request, user, app, form.get("grant_type", ""))
    except OAuthError as exc:
        return JSONResponse({"error": exc.error, "error_description": exc.description}, exc.status)
    session = request.app.state.sessions.create(user.login_name, user.user_id)
    config: OrgConfig = request.app.state.config
    issued_at = str(int(time.time() * 1000))
    identity = f"{base_url(request)}/id/{config.org_id}/{user.user_id}"
    signature = hmac.new(app.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256)
    token = {
        "access_token": session.token,
        "instance_url": base_url(request),
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(signature.digest()).decode(),
        "scope": "api refresh_token" if refresh else "api",
    }
    if refresh:
        token["refresh_token"] = refresh
    log.info("OAuth %s token for %s", form.get("grant_type"), user.login_name)
    return JSONResponse(token)


def _grant(request: Request, form: dict[str, str]) -> tuple[User, ConnectedApp, str | None]:
    """(user, app, new refresh token or None) for a token request, or OAuthError as Salesforce says it."""
    config: OrgConfig = request.app.state.config
    grant = form.get("grant_type", "")
    if grant == "client_credentials":
        app = _client(config, request, form, secret_required=True)
        user = find_user(config, app.run_as) if app.run_as else config.users[0]
        if user is None:
            raise OAuthError("invalid_grant", "no client credentials user enabled")
        return user, app, None
    if grant == "password":
        app = _client(config, request, form, secret_required=True)
        user = find_user(config, form.get("username", ""))
        if user is not None:
            user = _with_password_set(user, user_states(request).get(user.login_name))
        if user is None or form.get("password", "") != user.password + user.security_token:
            raise OAuthError("invalid_grant", "authentication failure")
        sessions = request.app.state.sessions
        return user, app, sessions.create_refresh_token(user.login_name, app.consumer_key)
    if grant == "refresh_token":
        app = _client(config, request, form, secret_required=False)
        owner = request.app.state.sessions.refresh_token_owner(
            form.get("refresh_token", ""), app.consumer_key
        )
        user = find_user(config, owner) if owner else None
        if user is None:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        return user, app, None
    if grant == JWT_BEARER:
        return _jwt_grant(request, config, form.get("assertion", ""))
    raise OAuthError("unsupported_grant_type", "grant type not supported")


def _check_user(request: Request, user: User, app: ConnectedApp, grant: str) -> None:
    """Refuses a token for a user an administrator locked, fenced by IP range or did not approve."""
    states = user_states(request)
    state = states.get(user.login_name)
    refusal = None
    if state.locked:
        refusal = OAuthError("invalid_grant", OAUTH_LOCKED)
    elif state.ip_restricted:
        refusal = OAuthError("invalid_grant", OAUTH_IP_RESTRICTED)
    elif app.consumer_key in state.unapproved_apps:
        # The JWT bearer flow names the missing pre-authorization as the user's own approval.
        refusal = (
            OAuthError("invalid_grant", OAUTH_NOT_APPROVED_JWT)
            if grant == JWT_BEARER
            else OAuthError("invalid_app_access", OAUTH_NOT_ADMIN_APPROVED)
        )
    if refusal is not None:
        states.refused(user.login_name, f"{refusal.error}: {refusal.description}")
        raise refusal


async def oauth_revoke(request: Request) -> Response:
    """Revokes the refresh or access token in the form's `token` (RFC 7009: 200 even when unknown)."""
    request.app.state.calls.count("oauth")
    body = await request.body()
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if request.app.state.sessions.revoke(form.get("token", "")):
        log.info("OAuth token revoked")
    return Response(status_code=200)


async def reset_users(request: Request) -> Response:
    user_states(request).clear()
    return JSONResponse({"reset": True})


async def user_state(request: Request) -> Response:
    config: OrgConfig = request.app.state.config
    user = find_user(config, request.path_params["username"])
    if user is None:
        return JSONResponse([{"message": "no such user", "errorCode": "NOT_FOUND"}], 404)
    states = user_states(request)
    state = states.get(user.login_name)
    if request.method == "DELETE":
        state = UserState()
    elif request.method == "POST":
        try:
            state = _changed(state, await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse([{"message": str(exc), "errorCode": "INVALID_INPUT"}], 400)
    states.put(user.login_name, state)
    sessions = request.app.state.sessions
    return JSONResponse(
        {
            "username": user.login_name,
            **{flag: getattr(state, flag) for flag in USER_FLAGS},
            "password_changed": state.password is not None,
            "unapproved_apps": list(state.unapproved_apps),
            "refresh_tokens": sessions.refresh_tokens_of(user.login_name),
            "refused_logins": states.refusals(user.login_name),
        }
    )


def _changed(state: UserState, body: object) -> UserState:
    if not isinstance(body, dict):
        raise ValueError("Expected a JSON object")
    allowed = {*USER_FLAGS, "password", "unapproved_apps"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    for flag in USER_FLAGS:
        if flag in body and not isinstance(body[flag], bool):
            raise ValueError(f"'{flag}' must be true or false")
    if "password" in body and not (isinstance(body["password"], str) and body["password"]):
        raise ValueError("'password' must be a non-empty string")
    apps = body.get("unapproved_apps", state.unapproved_apps)
    if not isinstance(apps, list | tuple) or not all(isinstance(a, str) for a in apps):
        raise ValueError("'unapproved_apps' must be a list of consumer keys")
    changes = {k: v for k, v in body.items() if k != "unapproved_apps"}
    return dataclasses.replace(state, **changes, unapproved_apps=tuple(apps))


def _client(config: OrgConfig, request: Request, form: dict[str, str], secret_required: bool) -> ConnectedApp:
    key, secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            key, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "invalid client credentials") from exc
    app = next((a for a in config.connected_apps if a.consumer_key == key), None)
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if (secret_required or secret is not None) and not hmac.compare_digest(
        (secret or "").encode(), app.consumer_secret.encode()
    ):
        raise OAuthError("invalid_client", "invalid client credentials")
    return app


def _jwt_grant(request: Request, config: OrgConfig, assertion: str) -> tuple[User, ConnectedApp, None]:
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise OAuthError("invalid_grant", "invalid assertion") from exc
    app = next((a for a in config.connected_apps if a.consumer_key == claims.get("iss")), None)
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if not app.certificate:
        raise OAuthError("invalid_grant", "invalid assertion")
    audiences = [base_url(request), *SALESFORCE_AUDIENCES]
    try:
        claims = jwt.decode(
            assertion,
            _public_key(app.certificate),
            algorithms=["RS256"],
            audience=audiences,
            issuer=app.consumer_key,
            options={"require": ["iss", "sub", "aud", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise OAuthError("invalid_grant", "expired authorization code") from exc
    except jwt.InvalidAudienceError as exc:
        raise OAuthError("invalid_grant", "audience is invalid") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        raise OAuthError("invalid_grant", "invalid assertion") from exc
    user = find_user(config, str(claims["sub"]))
    if user is None:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    return user, app, None


def _public_key(certificate: str):
    """The verifying key of a connected app: a PEM certificate or public key, inline or in a file."""
    pem = certificate.encode() if "-----BEGIN" in certificate else Path(certificate).read_bytes()
    if b"CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem).public_key()
    return serialization.load_pem_public_key(pem)
