"""An org for the login tests: a connected app that verifies JWT assertions with a key made here, its
run-as user for client credentials, docs/org-setup.md's fields; and each --auth flow's environment."""

import datetime
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from emulator.process import start_emulator
from tests.org_setup import ORG_SETUP_FIELDS

# The secrets are canaries: tests/e2e/test_secrets.py looks for them wherever the pipeline leaves text.
USERNAME = "admin@example.com"
PASSWORD = "canary-Pa55word-3f9d"
SECURITY_TOKEN = "CANARYTOKEN7C41"
CONSUMER_KEY = "beamforce-consumer-key"
CONSUMER_SECRET = "canary-consumer-secret-b82e"
ORG_CONFIG = f"""\
users:
  - {{username: {USERNAME}, password: {PASSWORD}, security_token: {SECURITY_TOKEN}}}
connected_apps:
  - {{consumer_key: {CONSUMER_KEY}, consumer_secret: {CONSUMER_SECRET}, certificate: "CERTIFICATE_PATH",
      run_as: {USERNAME}}}
{ORG_SETUP_FIELDS}"""
FLOWS = ("password", "jwt", "client_credentials", "refresh_token")


def key_and_certificate(common_name: str) -> tuple[bytes, bytes]:
    """(PEM private key, its self-signed PEM certificate for `common_name`), for a connected app's JWTs."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, cert.public_bytes(serialization.Encoding.PEM)


def write_key_and_certificate(directory: Path) -> tuple[Path, Path]:
    """(PEM private key file, its self-signed certificate file) in `directory`."""
    key, cert = key_and_certificate("beamforce-jwt")
    key_path, cert_path = directory / "jwt-key.pem", directory / "jwt-cert.pem"
    key_path.write_bytes(key)
    cert_path.write_bytes(cert)
    return key_path, cert_path


@contextmanager
def oauth_emulator(root: Path):
    """A running emulator of ORG_CONFIG under `root`; its `key_path` attribute is the JWT key's file."""
    key_path, cert_path = write_key_and_certificate(root)
    (root / "org.yaml").write_text(ORG_CONFIG.replace("CERTIFICATE_PATH", str(cert_path)))
    with start_emulator(root / "data", config_path=root / "org.yaml") as emu:
        emu.key_path = key_path
        yield emu


def issue_refresh_token(emu: Any) -> str:
    """A refresh token for USERNAME from the connected app (the OAuth password grant issues one)."""
    form = {
        "grant_type": "password",
        "client_id": CONSUMER_KEY,
        "client_secret": CONSUMER_SECRET,
        "username": USERNAME,
        "password": PASSWORD + SECURITY_TOKEN,
    }
    response = emu.session().post(f"{emu.info['login_url']}/services/oauth2/token", data=form, timeout=30)
    response.raise_for_status()
    return response.json()["refresh_token"]


def revoke(emu: Any, token: str) -> None:
    """Salesforce's revoke endpoint, as an administrator revoking the app's access would."""
    response = emu.session().post(
        f"{emu.info['login_url']}/services/oauth2/revoke", data={"token": token}, timeout=30
    )
    response.raise_for_status()


def flow_environ(emu: Any, auth: str, refresh_token: str = "") -> dict[str, str]:
    """The environment the pipeline reads for flow `auth` (secrets in variables, the key in a file)."""
    if auth == "password":
        return {
            "SALESFORCE_USERNAME": USERNAME,
            "SALESFORCE_PASSWORD": PASSWORD,
            "SALESFORCE_SECURITY_TOKEN": SECURITY_TOKEN,
        }
    if auth == "jwt":
        return {
            "SALESFORCE_CONSUMER_KEY": CONSUMER_KEY,
            "SALESFORCE_USERNAME": USERNAME,
            "SALESFORCE_PRIVATE_KEY_FILE": str(emu.key_path),
        }
    if auth == "client_credentials":
        return {"SALESFORCE_CONSUMER_KEY": CONSUMER_KEY, "SALESFORCE_CLIENT_SECRET": CONSUMER_SECRET}
    return {"SALESFORCE_CONSUMER_KEY": CONSUMER_KEY, "SALESFORCE_REFRESH_TOKEN": refresh_token}


def set_user(emu: Any, **state: Any) -> dict:
    """Sets USERNAME's state through the emulator's admin API (see emulator.auth)."""
    return emu.admin("POST", f"users/{USERNAME}", json=state)


def user(emu: Any) -> dict:
    return emu.admin("GET", f"users/{USERNAME}")
