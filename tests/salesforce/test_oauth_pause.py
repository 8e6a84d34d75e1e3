"""A writer held by a login an administrator must fix: one login per growing interval, the credentials read
again, nothing dead-lettered; and the progress line that says why."""

import threading
import time

import pytest

from pipeline.progress import progress_line
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from schemas.events import EventRef
from schemas.records import MergedOp
from tests.emulator.oauth_org import PASSWORD, SECURITY_TOKEN, USERNAME, oauth_emulator, set_user, user
from transforms.batch_writer import BatchWriter, Failure, WrittenRecord, login_paused, paused_logins

EXPIRED = "INVALID_OPERATION_WITH_EXPIRED_PASSWORD"
BASE = (
    "progress: read 0, written 0, filtered 0, deduplicated 0, dead-lettered 0, stale fields skipped 0, API "
    "calls 0"
)


@pytest.mark.parametrize(
    ("gauges", "line"),
    [
        ({}, BASE),
        ({login_paused("ip_restricted"): 0}, BASE),
        (
            {login_paused("ip_restricted"): 1},
            BASE + "; WRITING PAUSED: Salesforce refuses logins from this IP address (the source keeps the "
            "events). To fix: add the workers' outbound IP addresses to the user's profile Login IP Ranges "
            "(or the org's trusted IP ranges), or relax the connected app's IP policy",
        ),
        (
            {login_paused("token_revoked"): 1, login_paused("user_locked"): 1},
            BASE + "; WRITING PAUSED: the API user is locked out (the source keeps the events). To fix: an "
            "administrator unlocks the user (Setup > Users > the user > Unlock), or the org's lockout period "
            "ends; check that the job's credentials are the current ones, since failed logins lock the user "
            "again; WRITING PAUSED: the refresh token was revoked or has expired (the source keeps the "
            "events). To fix: authorize the connected app again and put the new refresh token in "
            "SALESFORCE_REFRESH_TOKEN (or the file or secret the job reads it from)",
        ),
    ],
)
def test_the_progress_line_says_why_writing_pauses(gauges, line):
    assert progress_line({}, gauges) == line


def test_pause_gauges_are_named_from_a_closed_set():
    assert login_paused("password_expired") == "login_paused:password_expired"
    with pytest.raises(ValueError, match="unknown login block 'INVALID_LOGIN'"):
        login_paused("INVALID_LOGIN")


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with oauth_emulator(tmp_path_factory.mktemp("oauth-pause")) as emu:
        yield emu


@pytest.fixture
def org(emu):
    emu.admin("POST", "reset")
    emu.admin("POST", "users/reset")
    yield emu
    emu.admin("POST", "users/reset")


def _ops(n: int) -> list[MergedOp]:
    return [
        MergedOp(
            "Lead",
            "Email",
            f"p{i}@example.com",
            {"Email": f"p{i}@example.com", "Title": f"T{i}"},
            {"LastName": "n/a", "Company": "n/a"},
            {},
            (EventRef("stream", i + 1, "{}"),),
        )
        for i in range(n)
    ]


def _client(emu) -> SalesforceClient:
    settings = ConnectionSettings(
        login_url=emu.info["login_url"], ca_bundle=emu.info["ca_bundle"], api_version="64.0", max_retries=0
    )
    return SalesforceClient(Credentials(USERNAME, PASSWORD, SECURITY_TOKEN), settings, sleep=lambda s: None)


class _Admin:
    """The writer's sleep: records each wait, and on the `fix_at`-th the administrator resets the password
    (the new one also in the worker's secret, which `credentials()` reads). The first wait lasts until the
    org has refused `held` logins, one per thread held, so that every thread is held before any retries."""

    def __init__(self, emu, fix_at: int, held: int = 0) -> None:
        self.emu, self.fix_at, self.held = emu, fix_at, held
        self.waits: list[float] = []
        self.password = PASSWORD
        self.paused_then: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        if not self.waits:
            deadline = time.monotonic() + 30
            while (
                user(self.emu)["refused_logins"].get(EXPIRED, 0) < self.held and time.monotonic() < deadline
            ):
                time.sleep(0.02)
        with self._lock:
            self.waits.append(seconds)
            self.paused_then |= paused_logins()
            if len(self.waits) == self.fix_at:
                set_user(self.emu, password="N3w-password", password_expired=False)
                self.password = "N3w-password"

    def credentials(self) -> Credentials:
        return Credentials(USERNAME, self.password, SECURITY_TOKEN)


def test_held_batches_wait_for_one_login_per_growing_interval_then_write(org):
    client = _client(org)
    admin = _Admin(org, fix_at=3, held=3)
    writer = BatchWriter(client, "wait", 0.5, admin, reload_credentials=admin.credentials)
    client.login()
    writer.logged_in = True
    set_user(org, password_expired=True)
    org.admin("POST", "sessions/expire")
    batches = [_ops(12)[i::3] for i in range(3)]
    reports: list = [None] * 3

    def write(i: int) -> None:
        reports[i] = writer.write(batches[i])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Three threads held, yet one login per wait: 0.5 s, then 1 s, then 2 s, after which the new password
    # (read again from the worker's secret) is accepted.
    assert admin.waits == [0.5, 1.0, 2.0]
    assert admin.paused_then == {"password_expired"}
    # Each thread's renewal of its expired session, then the logins after the first two waits.
    assert user(org)["refused_logins"] == {EXPIRED: 5}
    assert client.credentials.password == "N3w-password"
    results = [result for report in reports for _, result in report.results]
    assert [type(r) for r in results] == [WrittenRecord] * 12
    assert sum(report.login_waited_seconds for report in reports) == 3.5
    assert writer.paused_for_login() == set() and paused_logins() == set()
    assert len(org.admin("GET", "records/Lead")["records"]) == 12


def test_without_wait_a_refused_login_dead_letters_the_batch(org):
    client = _client(org)
    admin = _Admin(org, fix_at=99)
    writer = BatchWriter(client, "dead_letter", 0.5, admin, reload_credentials=admin.credentials)
    set_user(org, password_expired=True)

    report = writer.write(_ops(2))

    assert admin.waits == []
    message = (
        f"Salesforce login failed ({EXPIRED}): The users password has expired, you must call SetPassword "
        "before attempting any other API operations"
    )
    assert [result for _, result in report.results] == [Failure("login_failed", message)] * 2
