"""The Salesforce user's credentials, read from the environment and never shown in reprs or logs."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from salesforce.errors import ConfigurationError

USERNAME_VAR = "SALESFORCE_USERNAME"
PASSWORD_VAR = "SALESFORCE_PASSWORD"
SECURITY_TOKEN_VAR = "SALESFORCE_SECURITY_TOKEN"


@dataclass(frozen=True)
class Credentials:
    """Username, password and security token of the API user (the repr shows the username only)."""

    username: str
    password: str = field(repr=False)
    security_token: str = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Credentials":
        """Reads SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN.

        The token may be empty (orgs whose trusted IP ranges waive it) but must be set, so that a
        forgotten variable is reported instead of surfacing as INVALID_LOGIN.
        """
        username = environ.get(USERNAME_VAR, "").strip()
        if not username:
            raise ConfigurationError(f"{USERNAME_VAR} is not set: export the Salesforce API user's username")
        password = environ.get(PASSWORD_VAR, "")
        if not password:
            raise ConfigurationError(f"{PASSWORD_VAR} is not set: export the Salesforce API user's password")
        if SECURITY_TOKEN_VAR not in environ:
            raise ConfigurationError(
                f"{SECURITY_TOKEN_VAR} is not set: export the user's security token "
                "(set it to an empty string if the org's trusted IP ranges make it unnecessary)"
            )
        return cls(username=username, password=password, security_token=environ[SECURITY_TOKEN_VAR].strip())
