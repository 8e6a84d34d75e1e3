"""The Salesforce login's secrets, read from the environment, files or a secret manager, never shown."""

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from salesforce.errors import ConfigurationError

# The login flows (--auth): the SOAP password login and three OAuth 2.0 flows.
PASSWORD, JWT, CLIENT_CREDENTIALS, REFRESH_TOKEN = "password", "jwt", "client_credentials", "refresh_token"
AUTH_FLOWS = (PASSWORD, JWT, CLIENT_CREDENTIALS, REFRESH_TOKEN)

USERNAME_VAR = "SALESFORCE_USERNAME"
PASSWORD_VAR = "SALESFORCE_PASSWORD"
SECURITY_TOKEN_VAR = "SALESFORCE_SECURITY_TOKEN"
CONSUMER_KEY_VAR = "SALESFORCE_CONSUMER_KEY"
CLIENT_SECRET_VAR = "SALESFORCE_CLIENT_SECRET"
PRIVATE_KEY_VAR = "SALESFORCE_PRIVATE_KEY"
REFRESH_TOKEN_VAR = "SALESFORCE_REFRESH_TOKEN"
# A secret may instead be in a file (a mounted secret) named by <variable>_FILE.
FILE_SUFFIX = "_FILE"
SECRET_VARS = (PASSWORD_VAR, SECURITY_TOKEN_VAR, CLIENT_SECRET_VAR, PRIVATE_KEY_VAR, REFRESH_TOKEN_VAR)
CREDENTIAL_VARS = (
    USERNAME_VAR,
    CONSUMER_KEY_VAR,
    *SECRET_VARS,
    *(name + FILE_SUFFIX for name in SECRET_VARS),
)
# The variables each flow reads, for messages (the refresh token flow's client secret is optional).
FLOW_VARS = {
    PASSWORD: (USERNAME_VAR, PASSWORD_VAR, SECURITY_TOKEN_VAR),
    JWT: (CONSUMER_KEY_VAR, USERNAME_VAR, PRIVATE_KEY_VAR + FILE_SUFFIX),
    CLIENT_CREDENTIALS: (CONSUMER_KEY_VAR, CLIENT_SECRET_VAR),
    REFRESH_TOKEN: (CONSUMER_KEY_VAR, REFRESH_TOKEN_VAR, CLIENT_SECRET_VAR),
}

# projects/P/secrets/S/versions/V of Google Secret Manager (project id or number; version or "latest").
_SECRET_REFERENCE = re.compile(
    r"^projects/([a-z][a-z0-9-]{4,28}[a-z0-9]|\d+)/secrets/([A-Za-z0-9_-]{1,255})/versions/(\d+|latest)$"
)
SECRET_EXTRA = "secretmanager"


@dataclass(frozen=True)
class Credentials:
    """The secrets of one login flow (`auth`); the repr shows the flow and the username only."""

    username: str = ""
    password: str = field(default="", repr=False)
    security_token: str = field(default="", repr=False)
    auth: str = PASSWORD
    consumer_key: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)  # PEM
    refresh_token: str = field(default="", repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value held, longest first (for scrubbing text that might echo one)."""
        values = (
            self.password + self.security_token,
            self.password,
            self.security_token,
            self.client_secret,
            self.private_key,
            self.refresh_token,
        )
        return tuple(sorted({v for v in values if v}, key=len, reverse=True))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, auth: str = PASSWORD) -> "Credentials":
        """Reads the variables flow `auth` needs (FLOW_VARS); ConfigurationError names a missing one.

        The password flow's token may be empty (orgs whose trusted IP ranges waive it) but must be set,
        so that a forgotten variable is reported instead of surfacing as INVALID_LOGIN.
        """
        if auth not in AUTH_FLOWS:
            raise ConfigurationError(f"auth must be one of {', '.join(AUTH_FLOWS)} (got {auth!r})")
        if auth == PASSWORD:
            username = _required(environ, USERNAME_VAR, "the Salesforce API user's username")
            password = _secret(environ, PASSWORD_VAR)
            if not password:
                raise ConfigurationError(
                    f"{PASSWORD_VAR} is not set: export the Salesforce API user's password"
                )
            token = _secret(environ, SECURITY_TOKEN_VAR)
            if token is None:
                raise ConfigurationError(
                    f"{SECURITY_TOKEN_VAR} is not set: export the user's security token "
                    "(set it to an empty string if the org's trusted IP ranges make it unnecessary)"
                )
            return cls(username=username, password=password, security_token=token.strip())
        key = _required(environ, CONSUMER_KEY_VAR, "the connected app's Consumer Key")
        username = environ.get(USERNAME_VAR, "").strip()
        if auth == JWT:
            username = _required(environ, USERNAME_VAR, "the username of the user the JWT flow logs in as")
            pem = _secret(environ, PRIVATE_KEY_VAR)
            if not pem:
                raise ConfigurationError(
                    f"{PRIVATE_KEY_VAR}{FILE_SUFFIX} is not set: export the path of the PEM private key "
                    "whose certificate is uploaded to the connected app (Use digital signatures)"
                )
            from_file = bool(environ.get(PRIVATE_KEY_VAR + FILE_SUFFIX, "").strip())
            _check_private_key(pem, PRIVATE_KEY_VAR + (FILE_SUFFIX if from_file else ""))
            return cls(username=username, auth=auth, consumer_key=key, private_key=pem)
        secret = (_secret(environ, CLIENT_SECRET_VAR) or "").strip()
        if auth == CLIENT_CREDENTIALS:
            if not secret:
                raise ConfigurationError(
                    f"{CLIENT_SECRET_VAR} is not set: export the connected app's Consumer Secret"
                )
            return cls(username=username, auth=auth, consumer_key=key, client_secret=secret)
        refresh = (_secret(environ, REFRESH_TOKEN_VAR) or "").strip()
        if not refresh:
            raise ConfigurationError(
                f"{REFRESH_TOKEN_VAR} is not set: export the refresh token the connected app issued to the "
                "API user"
            )
        return cls(
            username=username, auth=auth, consumer_key=key, client_secret=secret, refresh_token=refresh
        )


def _required(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set: export {what}")
    return value


def _secret(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value, or the content of the file <name>_FILE names; None when neither is set."""
    path = environ.get(name + FILE_SUFFIX, "").strip()
    if name in environ and path:
        raise ConfigurationError(f"both {name} and {name}{FILE_SUFFIX} are set: keep one")
    if not path:
        return environ.get(name)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as e:
        raise ConfigurationError(f"{name}{FILE_SUFFIX} {path!r} cannot be read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{name}{FILE_SUFFIX} {path!r} is not a text file") from None


def _check_private_key(pem: str, where: str) -> None:
    """`where`: the variable the key came from (SALESFORCE_PRIVATE_KEY, or its _FILE)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        # Never the key itself, nor the parser's words about it.
        raise ConfigurationError(
            f"{where} does not hold an unencrypted PEM RSA private key: give the key whose certificate is "
            "uploaded to the connected app"
        )


def parse_secret_reference(reference: str) -> tuple[str, str, str]:
    """(project, secret, version) of `projects/P/secrets/S/versions/V`; ConfigurationError otherwise."""
    match = _SECRET_REFERENCE.match(reference or "")
    if match is None:
        raise ConfigurationError(
            f"--salesforce_secret {reference!r} is not a Secret Manager version: give "
            "projects/PROJECT/secrets/SECRET/versions/VERSION (a number, or latest)"
        )
    return match.group(1), match.group(2), match.group(3)


def fetch_secret(reference: str) -> str:
    """The payload of a Secret Manager secret version (the `secretmanager` extra, imported here)."""
    parse_secret_reference(reference)
    try:
        from google.cloud import secretmanager
    except ImportError:
        raise ConfigurationError(
            f"--salesforce_secret needs Google's Secret Manager client, which is not installed: install "
            f"the '{SECRET_EXTRA}' extra (pip install 'beamforce[{SECRET_EXTRA}]') where the job is "
            "launched and on its workers"
        ) from None
    try:
        answer = secretmanager.SecretManagerServiceClient().access_secret_version(request={"name": reference})
        return answer.payload.data.decode("utf-8")
    except Exception as e:  # Google's errors (PermissionDenied, NotFound, ...): their class says enough
        raise ConfigurationError(
            f"--salesforce_secret {reference!r} cannot be read ({type(e).__name__}): check that the secret "
            "version exists and that the job's service account may access it "
            "(roles/secretmanager.secretAccessor)"
        ) from None


@dataclass(frozen=True)
class CredentialsSource:
    """Where a worker finds the credentials when it starts (a DoFn's setup()), instead of the
    credentials themselves: a DoFn is pickled into the job's graph, which runners upload and show.

    Variables come from the environment, then `file` (e.g. a mounted secret), then `secret` (a Secret
    Manager version), each winning over the one before. A file or a secret holds `NAME=VALUE` lines
    (blank lines and `#` comments skipped) or a JSON object of names to values (for a multi-line
    SALESFORCE_PRIVATE_KEY).
    """

    file: str | None = None
    auth: str = PASSWORD
    secret: str | None = None

    def __post_init__(self) -> None:
        if self.auth not in AUTH_FLOWS:
            raise ConfigurationError(f"--auth must be one of {', '.join(AUTH_FLOWS)} (got {self.auth!r})")
        if self.secret is not None:
            parse_secret_reference(self.secret)

    def resolve(self, environ: Mapping[str, str] = os.environ) -> Credentials:
        values = dict(environ)
        if self.file is not None:
            values.update(read_env_file(self.file))
        if self.secret is not None:
            values.update(parse_env_text(fetch_secret(self.secret), f"secret {self.secret!r}"))
        return Credentials.from_env(values, self.auth)


def read_env_file(path: str) -> dict[str, str]:
    """`NAME=VALUE` lines (or a JSON object) of a credentials file; ConfigurationError when it is not."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigurationError(f"credentials file {path!r} cannot be read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"credentials file {path!r} is not a text file") from None
    return parse_env_text(text, f"credentials file {path!r}")


def parse_env_text(text: str, where: str) -> dict[str, str]:
    """Variables of a credentials file or secret: a JSON object of strings, or `NAME=VALUE` lines."""
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            # The text holds secrets: say what is wrong with it, not what it says.
            raise ConfigurationError(f"{where}: expected a JSON object of names to strings")
        return {str(k): v for k, v in data.items()}
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        name = name.strip().removeprefix("export ").strip()
        if not sep or not name:
            # The line itself may hold a secret: name its number only.
            raise ConfigurationError(
                f"{where}, line {number}: expected NAME=VALUE, e.g. {USERNAME_VAR}=api@acme.com"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values
