"""Every --auth flow end to end against the local Salesforce: a batch run writes, a refused login stops it
before reading with a message naming the fix, and a stream pauses until the administrator's fix."""

import glob
import json
import logging
import threading
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import direct_runner_metrics
from pipeline.graph import build
from pipeline.main import STREAMING_RUNNER, counters, main
from pipeline.options import BeamforceOptions
from pipeline.progress import progress_line
from pipeline.summary import Summary
from salesforce.connection import ConnectionSettings
from salesforce.credentials import CREDENTIAL_VARS, CredentialsSource
from tests.e2e.conftest import records, write_lines
from tests.e2e.streaming_helpers import StreamEvents, by_match, expected_records, identify
from tests.emulator.oauth_org import (
    CONSUMER_KEY,
    FLOWS,
    PASSWORD,
    SECURITY_TOKEN,
    USERNAME,
    flow_environ,
    issue_refresh_token,
    oauth_emulator,
    revoke,
    set_user,
    user,
)
from tests.streaming.conftest import RunnerClock, runner_clock  # noqa: F401  (the fixture, used below)
from transforms.batch_writer import login_paused, paused_logins
from transforms.result import Result

pytestmark = pytest.mark.e2e

EVENTS = [
    identify("a1", 1, email="ann@example.com", firstName="Ann", lastName="Lee", company="Acme"),
    identify("b1", 2, email="bob@example.com", title="CTO"),
]
LEADS = {
    "ann@example.com": {"FirstName": "Ann", "LastName": "Lee", "Company": "Acme"},
    "bob@example.com": {"Title": "CTO", "LastName": "n/a", "Company": "n/a"},
}


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with oauth_emulator(tmp_path_factory.mktemp("auth-e2e")) as emu:
        yield emu


@pytest.fixture
def org(emu, monkeypatch):
    """The emulator emptied, its users as configured, and no Salesforce variable in the environment."""
    emu.admin("POST", "reset")
    emu.admin("POST", "calls/reset")
    emu.admin("POST", "users/reset")
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    yield emu
    emu.admin("POST", "users/reset")


def _flags(emu, auth: str) -> list[str]:
    return [
        "--auth",
        auth,
        "--salesforce_login_url",
        emu.info["login_url"],
        "--salesforce_ca_bundle",
        emu.info["ca_bundle"],
    ]


def _leads(emu) -> dict[str, dict]:
    keep = ("FirstName", "LastName", "Company", "Title")
    return {r["Email"]: {k: r[k] for k in keep if k in r} for r in records(emu, "Lead")}


def _run_main(emu, tmp_path: Path, auth: str, monkeypatch, environ: dict[str, str]) -> tuple[int, Path]:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    events = write_lines(tmp_path / "events.jsonl", EVENTS)
    dead = tmp_path / "dead" / "dead_letters"
    summary = tmp_path / "summary.json"
    argv = ["--input", str(events), "--dead_letter_output", str(dead), "--summary_output", str(summary)]
    return main([*argv, *_flags(emu, auth)]), tmp_path


@pytest.mark.parametrize("auth", FLOWS)
def test_each_flow_writes_a_batch_run(org, tmp_path, monkeypatch, auth):
    token = issue_refresh_token(org) if auth == "refresh_token" else ""
    org.admin("POST", "calls/reset")

    status, _ = _run_main(org, tmp_path, auth, monkeypatch, flow_environ(org, auth, token))

    assert status == 0
    assert _leads(org) == LEADS
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["events_read"], summary["events_written"], summary["dead_lettered"]) == (2, 2, {})
    # SOAP logins for the password flow, token requests for the others: one before the run, one writer.
    by_kind = org.admin("GET", "calls")["by_kind"]
    assert by_kind.get("login" if auth == "password" else "oauth") == 2
    assert by_kind.get("oauth" if auth == "password" else "login") is None


EXPIRED = (
    "INVALID_OPERATION_WITH_EXPIRED_PASSWORD: The users password has expired, you must call SetPassword "
    "before attempting any other API operations. Set a new password for the user (Setup > Users > Reset "
    "Password, or log in once as the user) and update SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN "
    "where the job reads them; an integration user's profile can have 'Password never expires'"
)
LOCKED_FIX = (
    "An administrator unlocks the user (Setup > Users > the user > Unlock), or the org's lockout period "
    "ends; check that the job's credentials are the current ones, since failed logins lock the user again"
)
IP_FIX = (
    "Add the workers' outbound IP addresses to the user's profile Login IP Ranges (or the org's trusted IP "
    "ranges), or relax the connected app's IP policy"
)
APPROVAL_FIX = (
    "Pre-authorize the user: Setup > App Manager > the connected app > Manage > Edit Policies, Permitted "
    "Users 'Admin approved users are pre-authorized', then add the user's profile or a permission set to "
    "the app"
)
REVOKED_FIX = (
    "Authorize the connected app again and put the new refresh token in SALESFORCE_REFRESH_TOKEN (or the "
    "file or secret the job reads it from)"
)


@pytest.mark.parametrize(
    ("auth", "state", "refused"),
    [
        ("password", {"password_expired": True}, f"as {USERNAME} was refused: {EXPIRED}"),
        (
            "password",
            {"locked": True},
            f"as {USERNAME} was refused: PASSWORD_LOCKOUT: The user has exceeded the allowed number of "
            "login attempts. The user must contact the administrator to regain login access. " + LOCKED_FIX,
        ),
        (
            "password",
            {"ip_restricted": True},
            f"as {USERNAME} was refused: LOGIN_DURING_RESTRICTED_DOMAIN: The user is not allowed to log in "
            f"from this IP address. {IP_FIX}",
        ),
        (
            "jwt",
            {"ip_restricted": True},
            f"as {USERNAME} was refused: invalid_grant: ip restricted or invalid login hours. {IP_FIX}",
        ),
        ("jwt", {"locked": True}, f"as {USERNAME} was refused: invalid_grant: user is locked. {LOCKED_FIX}"),
        (
            "jwt",
            {"unapproved_apps": [CONSUMER_KEY]},
            f"as {USERNAME} was refused: invalid_grant: user hasn't approved this consumer. {APPROVAL_FIX}",
        ),
        (
            "client_credentials",
            {"unapproved_apps": [CONSUMER_KEY]},
            f"was refused: invalid_app_access: user is not admin approved to access this app. {APPROVAL_FIX}",
        ),
        (
            "refresh_token",
            "revoked",
            f"was refused: invalid_grant: expired access/refresh token. {REVOKED_FIX}",
        ),
    ],
)
def test_a_refused_login_stops_a_batch_run_before_reading(
    org, tmp_path, monkeypatch, capsys, auth, state, refused
):
    token = issue_refresh_token(org) if auth == "refresh_token" else ""
    if state == "revoked":
        revoke(org, token)
    else:
        set_user(org, **state)
    org.admin("POST", "calls/reset")

    status, _ = _run_main(org, tmp_path, auth, monkeypatch, flow_environ(org, auth, token))

    flow = {
        "password": "",
        "jwt": " (JWT bearer flow)",
        "client_credentials": " (client credentials flow)",
        "refresh_token": " (refresh token flow)",
    }[auth]
    assert status == 2
    assert capsys.readouterr().err == (
        f"beamforce: configuration error: Salesforce login{flow} at {org.info['login_url'].rstrip('/')} "
        f"{refused}\n"
    )
    # One login, refused: nothing read, nothing written, no dead letter, no summary.
    assert org.admin("GET", "calls")["by_kind"] == {"login" if auth == "password" else "oauth": 1}
    assert records(org, "Lead") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


# -------------------------------------------------------------------------------------- streaming

# Stream steps wait this many processing seconds: past --max_buffering_seconds 1, so buffers are written.
FLUSH = 2.0
# What the test does at the stream's first event after the trigger, by name (DoFns are pickled).
_TRIGGERS: dict[str, object] = {}


class _Trigger(beam.DoFn):
    """Calls the test's trigger once, when the first event whose messageId starts with `prefix` passes."""

    def __init__(self, name: str, prefix: str) -> None:
        self._name = name
        self._prefix = prefix

    def process(self, line):
        trigger = _TRIGGERS.get(self._name)
        if trigger is not None and json.loads(line.line)["messageId"].startswith(self._prefix):
            _TRIGGERS.pop(self._name, None)
            trigger()
        yield line


class _StreamWithTrigger(beam.PTransform):
    def __init__(self, steps, name: str, prefix: str) -> None:
        super().__init__()
        self._events = StreamEvents(steps)
        self._trigger = _Trigger(name, prefix)

    def expand(self, pbegin):
        events = pbegin | "Events" >> self._events
        lines = events.output | "Trigger" >> beam.ParDo(self._trigger)
        return Result(lines, events.dead_letter)


class _Fixer(threading.Thread):
    """Waits until the writers pause for `reason`, notes the progress line then, and applies `fix`."""

    def __init__(self, reason: str, fix, timeout: float = 120.0) -> None:
        super().__init__(name="org-admin", daemon=True)
        self._reason, self._fix, self._timeout = reason, fix, timeout
        self.progress = ""
        self.fixed = threading.Event()
        self.stop = threading.Event()  # the run ended without pausing

    def run(self) -> None:
        deadline = time.monotonic() + self._timeout
        try:
            while time.monotonic() < deadline and self._reason not in paused_logins():
                if self.stop.wait(0.05):
                    return
            # As pipeline.main's progress reporter sees writers of this process.
            self.progress = progress_line({}, {login_paused(r): 1 for r in paused_logins()})
        finally:
            self._fix()  # whatever happened, the run must be able to end
            self.fixed.set()


def _run_stream(emu, tmp_path: Path, auth: str, source, credentials: CredentialsSource):
    prefix = str(tmp_path / "dead" / "dead_letters")
    options = PipelineOptions(
        ["--streaming", "--dead_letter_output", prefix, "--max_buffering_seconds", "1", *_flags(emu, auth)]
    )
    settings = ConnectionSettings(
        login_url=emu.info["login_url"],
        ca_bundle=emu.info["ca_bundle"],
        auth=auth,
        api_version="64.0" if auth == "password" else "66.0",
        backoff_base_seconds=0.02,
        limit_poll_seconds=0.2,  # the first wait for a refused login; it doubles from there
    )
    p = beam.Pipeline(runner=STREAMING_RUNNER, options=options)
    bf = options.view_as(BeamforceOptions)
    bf.on_api_limit = "wait"  # what validate() gives a stream
    build(p, bf, credentials, settings, source=source, streaming=True, clock=RunnerClock())
    with direct_runner_metrics.counting_every_bundle():
        result = p.run()
        result.wait_until_finish()
    totals, string_sets = counters(result)
    summary = Summary.from_metrics(totals, string_sets, dead_letter_output=prefix)
    dead = [
        json.loads(line) for f in sorted(glob.glob(prefix + "*.jsonl")) for line in open(f, encoding="utf-8")
    ]
    return summary, dead


def _steps() -> tuple[list, list[dict]]:
    before = [identify(f"before-{n}", n, email=f"p{n}@example.com", title=f"T{n}") for n in range(4)]
    after = [identify(f"after-{n}", 10 + n, email=f"p{n % 6}@example.com", phone=f"55{n}") for n in range(8)]
    return [(before, FLUSH), (after[:4], FLUSH), (after[4:], FLUSH)], before + after


@pytest.mark.usefixtures("runner_clock")
def test_a_stream_survives_a_revoked_session_and_an_expired_password_reset_mid_run(org, tmp_path, caplog):
    secrets = tmp_path / "salesforce.env"
    secrets.write_text(
        f"SALESFORCE_USERNAME={USERNAME}\nSALESFORCE_PASSWORD={PASSWORD}\nSALESFORCE_SECURITY_TOKEN={SECURITY_TOKEN}\n"
    )

    def expire() -> None:  # the administrator's policy expires the password; every session is revoked
        set_user(org, password_expired=True)
        org.admin("POST", "sessions/expire")

    def reset() -> None:  # a new password, set in Salesforce and in the mounted secret
        secrets.write_text(
            f"SALESFORCE_USERNAME={USERNAME}\nSALESFORCE_PASSWORD=N3w-password\n"
            f"SALESFORCE_SECURITY_TOKEN={SECURITY_TOKEN}\n"
        )
        set_user(org, password="N3w-password", password_expired=False)

    steps, events = _steps()
    _TRIGGERS["expire"] = expire
    fixer = _Fixer("password_expired", reset)
    fixer.start()
    caplog.set_level(logging.INFO)
    try:
        summary, dead = _run_stream(
            org,
            tmp_path,
            "password",
            _StreamWithTrigger(steps, "expire", "after-"),
            CredentialsSource(str(secrets)),
        )
    finally:
        _TRIGGERS.pop("expire", None)
        fixer.stop.set()
        fixer.join(timeout=130)

    assert fixer.fixed.is_set()
    assert fixer.progress.endswith(
        "; WRITING PAUSED: the API user's password has expired (the source keeps the events). To fix: set a "
        "new password for the user (Setup > Users > Reset Password, or log in once as the user) and update "
        "SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN where the job reads them; an integration user's "
        "profile can have 'Password never expires'"
    )
    # Nothing lost, nothing dead-lettered: the org holds what the events say.
    assert (dead, summary.dead_lettered) == ([], {})
    assert summary.events_read == len(events) and summary.balanced, summary.format_text()
    assert by_match(records(org, "Lead"), "Email") == expected_records(events)["Lead"]
    assert set(user(org)["refused_logins"]) == {"INVALID_OPERATION_WITH_EXPIRED_PASSWORD"}
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("Salesforce refuses the login: the API user's password has expired. Holding")
        for m in messages
    )
    assert "the Salesforce credentials changed: logging in with the new ones" in messages
    assert "Salesforce accepts the login again: writing the records held" in messages
    assert not any("N3w-password" in m or PASSWORD in m for m in messages)


@pytest.mark.usefixtures("runner_clock")
def test_a_stream_waits_out_a_revoked_refresh_token_until_a_new_one_is_mounted(org, tmp_path):
    secrets = tmp_path / "salesforce.json"
    first = issue_refresh_token(org)
    secrets.write_text(
        json.dumps({"SALESFORCE_CONSUMER_KEY": CONSUMER_KEY, "SALESFORCE_REFRESH_TOKEN": first})
    )

    def revoke_access() -> None:  # the administrator revokes the app's access: token and sessions
        revoke(org, first)
        org.admin("POST", "sessions/expire")

    def new_token() -> None:  # the app authorized again, its new token put in the mounted secret
        token = issue_refresh_token(org)
        secrets.write_text(
            json.dumps({"SALESFORCE_CONSUMER_KEY": CONSUMER_KEY, "SALESFORCE_REFRESH_TOKEN": token})
        )

    steps, events = _steps()
    _TRIGGERS["revoke"] = revoke_access
    fixer = _Fixer("token_revoked", new_token)
    fixer.start()
    try:
        summary, dead = _run_stream(
            org,
            tmp_path,
            "refresh_token",
            _StreamWithTrigger(steps, "revoke", "after-"),
            CredentialsSource(str(secrets), auth="refresh_token"),
        )
    finally:
        _TRIGGERS.pop("revoke", None)
        fixer.stop.set()
        fixer.join(timeout=130)

    assert "WRITING PAUSED: the refresh token was revoked or has expired" in fixer.progress
    assert (dead, summary.dead_lettered) == ([], {})
    assert summary.events_read == len(events) and summary.balanced, summary.format_text()
    assert by_match(records(org, "Lead"), "Email") == expected_records(events)["Lead"]
    assert set(user(org)["refused_logins"]) == set()  # an unknown token is no user's refused login
