"""Where and how to reach Salesforce: login URL, sandbox, CA bundle, API version, retry and cache settings."""

import math
import os
import re
from dataclasses import dataclass

import requests

from salesforce.credentials import AUTH_FLOWS, PASSWORD
from salesforce.errors import ConfigurationError

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
# SOAP login() is not served from API v65.0 on (salesforce-api.md §1.3): the password flow's ceiling.
MAX_SOAP_LOGIN_VERSION = 64.0
# The newest API version the project is tested against (the local Salesforce serves 31.0 to 66.0, Spring
# '26): the OAuth flows' ceiling and default.
MAX_API_VERSION = 66.0


def default_api_version(auth: str) -> str:
    """The newest API version flow `auth` can use: 64.0 for the SOAP password login, else MAX_API_VERSION."""
    return f"{MAX_SOAP_LOGIN_VERSION if auth == PASSWORD else MAX_API_VERSION:.1f}"


# How saves meet the org's duplicate rules: "enforce" lets every rule refuse (DUPLICATES_DETECTED);
# "allow_save" sends Sforce-Duplicate-Rule-Header so that rules which only alert let the save through.
DUPLICATE_RULE_MODES = ("enforce", "allow_save")
DUPLICATE_RULE_HEADER = "Sforce-Duplicate-Rule-Header"

_VERSION = re.compile(r"^\d{2}\.0$")
_SANDBOX_NAME = re.compile(r"^[A-Za-z0-9]+$")


class TimeoutSession(requests.Session):
    """A Session whose requests time out by default: simple-salesforce's login passes no timeout."""

    def __init__(self, timeout_seconds: float):
        super().__init__()
        self.timeout_seconds = timeout_seconds

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout_seconds)
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class ConnectionSettings:
    """How to log in and call the API; checked at construction so a bad setting stops the run early."""

    login_url: str = PRODUCTION_LOGIN_URL
    sandbox: str | None = None  # sandbox name: appended to the username, login at test.salesforce.com
    ca_bundle: str | None = None  # trust this CA (sets session.verify, trust_env=False)
    api_version: str = "59.0"
    auth: str = PASSWORD  # the login flow (salesforce.credentials.AUTH_FLOWS); no secret here
    describe_ttl_seconds: float = 1800.0
    max_retries: int = 5
    backoff_base_seconds: float = 0.5
    timeout_seconds: float = 120.0  # per HTTP request; a hung connection must not stall a bundle forever
    # A batch starts no retry past this long after it began (waiting for the org's allocation aside).
    batch_deadline_seconds: float = 900.0
    # While the org's API allocation is used up and writers wait (--on_api_limit wait), its limits are
    # read again after this long at first, doubling up to five minutes.
    limit_poll_seconds: float = 5.0
    # Stop calling once the org's rolling 24-hour API usage reaches this share; 100 = off.
    api_usage_limit_percent: float = 100.0
    # Calls (login included) a second per client, i.e. per writer; None = unlimited.
    max_calls_per_second: float | None = None
    duplicate_rules: str = "enforce"  # one of DUPLICATE_RULE_MODES

    def __post_init__(self) -> None:
        if not self.login_url.startswith("https://"):
            raise ConfigurationError(f"login_url must start with https:// (got {self.login_url!r})")
        if not _VERSION.match(self.api_version):
            raise ConfigurationError(
                f"api_version must look like '59.0', without a 'v' (got {self.api_version!r})"
            )
        if self.auth not in AUTH_FLOWS:
            raise ConfigurationError(f"auth must be one of {', '.join(AUTH_FLOWS)} (got {self.auth!r})")
        if self.auth == PASSWORD and float(self.api_version) > MAX_SOAP_LOGIN_VERSION:
            raise ConfigurationError(
                f"api_version {self.api_version}: Salesforce's SOAP login() is not available from v65.0 on; "
                f"use {MAX_SOAP_LOGIN_VERSION} or lower, or an OAuth flow"
            )
        if float(self.api_version) > MAX_API_VERSION:
            raise ConfigurationError(
                f"api_version {self.api_version} is newer than this project supports: use "
                f"{MAX_API_VERSION} or lower"
            )
        if self.sandbox is not None and not _SANDBOX_NAME.match(self.sandbox):
            raise ConfigurationError(
                f"sandbox must be the sandbox's name, letters and digits only (got {self.sandbox!r})"
            )
        if self.ca_bundle is not None and not os.path.isfile(self.ca_bundle):
            raise ConfigurationError(f"ca_bundle {self.ca_bundle!r} is not a readable file")
        if self.describe_ttl_seconds <= 0:
            raise ConfigurationError("describe_ttl_seconds must be positive")
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        if self.backoff_base_seconds < 0:
            raise ConfigurationError("backoff_base_seconds must be 0 or more")
        if self.timeout_seconds <= 0:
            raise ConfigurationError("timeout_seconds must be positive")
        if not self.batch_deadline_seconds > 0:
            raise ConfigurationError("batch_deadline_seconds must be positive")
        if not self.limit_poll_seconds > 0:
            raise ConfigurationError("limit_poll_seconds must be positive")
        if not 0 < self.api_usage_limit_percent <= 100:  # also refuses NaN
            raise ConfigurationError(
                "api_usage_limit_percent must be more than 0 and at most 100 "
                f"(got {self.api_usage_limit_percent!r})"
            )
        if self.max_calls_per_second is not None and not (
            self.max_calls_per_second > 0 and math.isfinite(self.max_calls_per_second)
        ):
            raise ConfigurationError(
                f"max_calls_per_second must be a positive number, or None for no limit "
                f"(got {self.max_calls_per_second!r})"
            )
        if self.duplicate_rules not in DUPLICATE_RULE_MODES:
            raise ConfigurationError(
                f"duplicate_rules must be one of {', '.join(DUPLICATE_RULE_MODES)} "
                f"(got {self.duplicate_rules!r})"
            )

    @property
    def effective_login_url(self) -> str:
        """The login host: test.salesforce.com for a sandbox unless a login URL was chosen explicitly."""
        url = self.login_url.rstrip("/")
        if self.sandbox and url == PRODUCTION_LOGIN_URL:
            return SANDBOX_LOGIN_URL
        return url

    def login_username(self, username: str) -> str:
        """The username to log in with: a sandbox user's name ends in '.<sandbox name>'."""
        return f"{username}.{self.sandbox}" if self.sandbox else username

    def make_session(self) -> requests.Session:
        """A requests.Session for login, REST and Bulk alike, trusting `ca_bundle` when given and
        sending the duplicate rule header with every request when `duplicate_rules` is "allow_save"."""
        session = TimeoutSession(self.timeout_seconds)
        if self.duplicate_rules == "allow_save":
            session.headers[DUPLICATE_RULE_HEADER] = "allowSave=true"
        if self.ca_bundle:
            session.verify = self.ca_bundle
            # REQUESTS_CA_BUNDLE (exported on these machines) would otherwise replace `verify`.
            session.trust_env = False
        return session
