"""Logging in to Salesforce with the chosen flow (SOAP password login, or an OAuth 2.0 flow through
salesforce.oauth) against a configurable login URL, giving a simple-salesforce client on the session."""

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape, unescape
from urllib.parse import urlsplit
from xml.parsers.expat import ExpatError

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import DEFAULT_CLIENT_ID_PREFIX, soap_login
from simple_salesforce.util import getUniqueElementValueFromXmlString

from salesforce.connection import ConnectionSettings
from salesforce.credentials import PASSWORD, Credentials
from salesforce.errors import ConfigurationError, SalesforceLoginError, is_retryable
from salesforce.oauth import (
    BAD_LOGIN_RESPONSE,
    TokenEndpointUnavailable,
    parse_token_answer,
    scrub,
    token_request,
)

log = logging.getLogger(__name__)

UNTRUSTED_CERTIFICATE = "the server's TLS certificate is not trusted (give the CA bundle that signed it)"
UNKNOWN_HOST = "NameResolutionError"  # the code of a login whose host name does not resolve
_SOAP_HEADERS = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}

# The body simple_salesforce.login.SalesforceLogin builds for a username/password/token login; it
# only lets us choose the login host through `scratch_url`, which Salesforce() does not expose.
_SOAP_BODY = """<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope
        xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header>
        <urn:CallOptions>
            <urn:client>{client_id}</urn:client>
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


class LoginTransientError(Exception):
    """The login could not reach the login service: `retry` says whether trying again may help.

    Retryable: 5xx, SERVER_UNAVAILABLE, connection refused or reset, timeouts. Not retryable: an
    untrusted certificate or a host name that does not exist, which fail the same way every time.
    """

    def __init__(self, code: str, message: str, retry: bool = True):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry = retry


@dataclass(frozen=True)
class LoginResult:
    session_id: str
    instance_url: str  # https://host[:port] that REST and Bulk calls go to


def soap_url(settings: ConnectionSettings) -> str:
    return f"{settings.effective_login_url}/services/Soap/u/{settings.api_version}"


def soap_body(credentials: Credentials, settings: ConnectionSettings) -> str:
    """The login envelope: XML-escaped username (with the sandbox suffix) and password + token."""
    return _SOAP_BODY.format(
        client_id=DEFAULT_CLIENT_ID_PREFIX,
        username=escape(settings.login_username(credentials.username)),
        password=escape(credentials.password + credentials.security_token),
    )


def _scrub(text: str, credentials: Credentials) -> str:
    # A login service may echo the request; no secret leaves this module.
    secrets = credentials.secrets()
    return scrub(text, (*secrets, *(escape(secret) for secret in secrets)))


def session_login(
    credentials: Credentials,
    settings: ConnectionSettings,
    session: requests.Session,
    clock: Callable[[], float] = time.time,
) -> LoginResult:
    """One login with the credentials' flow. Raises SalesforceLoginError when refused (its `block` says
    when an administrator can fix the cause), LoginTransientError when the login service could not be
    reached or did not answer (its `retry` says whether to try again)."""
    if credentials.auth != settings.auth:
        raise ConfigurationError(
            f"the credentials are for --auth {credentials.auth}, the connection for --auth {settings.auth}"
        )
    if credentials.auth == PASSWORD:
        return _soap_login(credentials, settings, session)
    return _oauth_login(credentials, settings, session, clock())


# salesforce.client logs in (and renews sessions) through this name, for every flow.
soap_session_login = session_login


@contextlib.contextmanager
def _reaching(settings: ConnectionSettings) -> Iterator[None]:
    """Turns a failure to reach the login service into LoginTransientError."""
    try:
        yield
    except requests.exceptions.SSLError:
        # An untrusted certificate stays untrusted: retrying only delays the message.
        raise LoginTransientError("SSLError", UNTRUSTED_CERTIFICATE, retry=False) from None
    except requests.ConnectionError as exc:
        failure = name_resolution_failure(exc)
        if failure is not None and failure.errno != socket.EAI_AGAIN:
            host = urlsplit(settings.effective_login_url).hostname
            raise LoginTransientError(
                UNKNOWN_HOST, f"the host {host} does not resolve", retry=False
            ) from None
        # EAI_AGAIN is the resolver failing to answer, which a retry may fix; so may a refused connection.
        raise LoginTransientError(type(exc).__name__, "login request failed") from None
    except requests.RequestException as exc:
        # The exception text carries the URL; its class name is enough to tell what happened.
        raise LoginTransientError(type(exc).__name__, "login request failed") from None


def _oauth_login(
    credentials: Credentials, settings: ConnectionSettings, session: requests.Session, now: float
) -> LoginResult:
    request = token_request(credentials, settings, now)
    with _reaching(settings):
        response = session.post(request.url, data=request.form, headers={"Accept": "application/json"})
    try:
        answer = parse_token_answer(response.status_code, response.content, credentials.secrets())
    except TokenEndpointUnavailable as exc:
        raise LoginTransientError(exc.code, exc.message) from None
    return LoginResult(session_id=answer.access_token, instance_url=answer.instance_url)


def _soap_login(
    credentials: Credentials, settings: ConnectionSettings, session: requests.Session
) -> LoginResult:
    """One SOAP login() call (see session_login for what it raises)."""
    try:
        with _reaching(settings):
            session_id, sf_instance = soap_login(
                soap_url(settings), soap_body(credentials, settings), dict(_SOAP_HEADERS), None, session
            )
    except SalesforceAuthenticationFailed as exc:
        if exc.code is None:
            # Well-formed markup without sf:exceptionCode (a proxy's or load balancer's error page):
            # Salesforce names the cause of every refusal, so this is no verdict on the credentials.
            raise LoginTransientError(
                BAD_LOGIN_RESPONSE, "the answer is not a Salesforce login fault"
            ) from None
        code = str(exc.code)
        message = _scrub(fault_reason(exc), credentials)
        if (isinstance(exc.code, int) and exc.code >= 500) or is_retryable(code):
            raise LoginTransientError(code, message) from None
        raise SalesforceLoginError(code, message) from None
    except ExpatError as exc:  # a 200 that is not SOAP: an HTML page from a proxy, a truncated body
        raise LoginTransientError(BAD_LOGIN_RESPONSE, type(exc).__name__) from None
    return LoginResult(session_id=session_id, instance_url=f"https://{sf_instance}")


def fault_reason(exc: SalesforceAuthenticationFailed) -> str:
    """Salesforce's own words for a refused login: the fault's exceptionMessage, else its faultstring.

    Not `exc.message`: that is simple-salesforce's unformatted class template ("Authentication failed.
    Response content: {content}"). Without an exceptionMessage, simple-salesforce hands over the whole
    SOAP body instead, of which only the faultstring is meant for people.
    """
    reason = (getattr(exc, "auth_message", None) or "").strip()
    if reason.startswith("<"):
        try:
            fault = getUniqueElementValueFromXmlString(reason.encode(), "faultstring")
        except ExpatError:
            fault = None  # not XML after all: keep the text as it came
        # Salesforce's faultstring is "CODE: message", and the code is reported beside it already.
        reason = (fault or reason).removeprefix(f"{exc.code}: ")
    # minidom hands elements back as markup: "&amp;" in a message is "&" to a reader.
    return unescape(reason) or "no reason given"


def name_resolution_failure(exc: BaseException) -> socket.gaierror | None:
    """The resolver's error behind a requests/urllib3 connection error, if a name lookup failed."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return current
        # requests wraps urllib3's MaxRetryError in args; its `reason` is the NameResolutionError,
        # raised from the gaierror.
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args)
        todo.extend(e for e in linked if isinstance(e, BaseException))
    return None


def rest_client(result: LoginResult, settings: ConnectionSettings, session: requests.Session) -> Salesforce:
    """A direct-session simple-salesforce client on `session` (no login of its own, no HTTP call)."""
    return Salesforce(
        session_id=result.session_id,
        instance_url=result.instance_url,
        session=session,
        version=settings.api_version,
        object_pairs_hook=dict,
    )
