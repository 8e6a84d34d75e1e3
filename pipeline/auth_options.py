"""How the pipeline logs in to Salesforce (--auth, --salesforce_secret), and the checks those options need."""

import argparse
import re

from apache_beam.options.pipeline_options import PipelineOptions

from salesforce.connection import MAX_API_VERSION, MAX_SOAP_LOGIN_VERSION, default_api_version
from salesforce.credentials import (
    AUTH_FLOWS,
    CLIENT_SECRET_VAR,
    CONSUMER_KEY_VAR,
    FILE_SUFFIX,
    PASSWORD,
    PASSWORD_VAR,
    PRIVATE_KEY_VAR,
    REFRESH_TOKEN_VAR,
    SECRET_EXTRA,
    SECURITY_TOKEN_VAR,
    USERNAME_VAR,
    CredentialsSource,
)
from salesforce.errors import ConfigurationError

# SOAP login() and our REST calls exist from API 31.0 on.
MIN_API_VERSION = 31
EXAMPLE_API_VERSION = "59.0"
_API_VERSION = re.compile(r"^(\d+)\.0$")

AUTH_HELP = (
    "How to log in to Salesforce. password: the SOAP login with "
    f"{USERNAME_VAR}, {PASSWORD_VAR} and {SECURITY_TOKEN_VAR} (API {MAX_SOAP_LOGIN_VERSION:.1f} at most); "
    f"jwt: the OAuth 2.0 JWT bearer flow with {CONSUMER_KEY_VAR}, {USERNAME_VAR} and "
    f"{PRIVATE_KEY_VAR}{FILE_SUFFIX} (a PEM key whose certificate is uploaded to the connected app); "
    f"client_credentials: the client credentials flow with {CONSUMER_KEY_VAR} and {CLIENT_SECRET_VAR}, at "
    "the org's My Domain URL (--salesforce_login_url); refresh_token: the refresh token flow with "
    f"{CONSUMER_KEY_VAR}, {REFRESH_TOKEN_VAR} and, if the app requires it, {CLIENT_SECRET_VAR}. Secrets "
    "come only from the environment: any of them may instead be in a file named by <variable>_FILE. "
    "Default password."
)


class AuthOptions(PipelineOptions):
    """The login flow and where workers read its secrets (never the secrets themselves)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--auth", choices=AUTH_FLOWS, default=PASSWORD, help=AUTH_HELP)
        parser.add_argument(
            "--salesforce_secret",
            metavar="REFERENCE",
            default=None,
            help="Read the login's variables from a Google Secret Manager secret version, "
            "projects/PROJECT/secrets/SECRET/versions/VERSION (VERSION a number or latest), holding "
            "NAME=VALUE lines or a JSON object of names to values; its variables win over the "
            "environment's and --salesforce_credentials_file's. The launcher and every worker read it "
            f"themselves; needs the '{SECRET_EXTRA}' extra.",
        )


def credentials_source(options: PipelineOptions) -> CredentialsSource:
    """Where workers (and the launcher) read the login's secrets."""
    from pipeline.options import BeamforceOptions

    auth = options.view_as(AuthOptions)
    return CredentialsSource(
        options.view_as(BeamforceOptions).salesforce_credentials_file, auth.auth, auth.salesforce_secret
    )


def api_version(auth: str, given: str | None) -> str:
    """The API version to use: `given` if the flow allows it, else the newest the flow allows."""
    if given is None:
        return default_api_version(auth)
    newest = int(MAX_SOAP_LOGIN_VERSION if auth == PASSWORD else MAX_API_VERSION)
    version = _API_VERSION.match(given)
    if not version or not MIN_API_VERSION <= int(version.group(1)) <= newest:
        # The password (SOAP) login stops at an older version than the OAuth flows: say so when it matters.
        oauth = (
            f" (the password login goes up to {newest}.0; --auth jwt, client_credentials or refresh_token "
            f"up to {int(MAX_API_VERSION)}.0)"
            if auth == PASSWORD and version and newest < int(version.group(1)) <= int(MAX_API_VERSION)
            else ""
        )
        raise ConfigurationError(
            f"--salesforce_api_version {given!r} is not supported{oauth}: give a version from "
            f"{MIN_API_VERSION}.0 to {newest}.0 without a leading 'v', e.g. {EXAMPLE_API_VERSION}"
        )
    return given
