"""The Salesforce user's credentials, read from the environment and never shown in reprs or logs."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from salesforce.errors import ConfigurationError

USERNAME_VAR = "SALESFORCE_USERNAME"
PASSWORD_VAR = "SALESFORCE_PASSWORD"
SECURITY_TOKEN_VAR = "SALESFORCE_SECURITY_TOKEN"
CREDENTIAL_VARS = (USERNAME_VAR, PASSWORD_VAR, SECURITY_TOKEN_VAR)


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


@dataclass(frozen=True)
class CredentialsSource:
    """Where a worker finds the credentials when it starts (a DoFn's setup()), instead of the
    credentials themselves: a DoFn is pickled into the job's graph, which runners upload and show.

    `file`: a file of `NAME=VALUE` lines (the three variables above; blank lines and `#` comments
    skipped), e.g. a mounted secret; without it, the worker's environment. The file's variables win
    over the environment's.
    """

    file: str | None = None

    def resolve(self, environ: Mapping[str, str] = os.environ) -> Credentials:
        if self.file is None:
            return Credentials.from_env(environ)
        return Credentials.from_env({**environ, **read_env_file(self.file)})


def read_env_file(path: str) -> dict[str, str]:
    """`NAME=VALUE` lines of a credentials file; ConfigurationError naming the line when one is not."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConfigurationError(f"credentials file {path!r} cannot be read: {e.strerror}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.partition("=")
        name = name.strip().removeprefix("export ").strip()
        if not sep or not name:
            # The line itself may hold a secret: name its number only.
            raise ConfigurationError(
                f"credentials file {path!r}, line {number}: expected NAME=VALUE, "
                f"e.g. {USERNAME_VAR}=api@acme.com"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values
