"""The streaming pipeline end to end: TestStream events through the real writer into the local Salesforce."""

import glob
import json
import random
from pathlib import Path

import apache_beam as beam
import pytest

from pipeline import direct_runner_metrics
from pipeline.graph import build
from pipeline.main import STREAMING_RUNNER, counters
from pipeline.options import BeamforceOptions
from pipeline.summary import Summary
from salesforce.connection import ConnectionSettings
from salesforce.credentials import CredentialsSource
from tests.e2e.conftest import export_credentials, records, streaming_options
from tests.e2e.streaming_helpers import (
    KEY_FIELD,
    TIMES_FIELD,
    OrgDriver,
    StreamEvents,
    at,
    by_match,
    expected_records,
    group,
    identify,
)
from tests.streaming.conftest import RunnerClock, runner_clock  # noqa: F401  (the fixture, used below)
from transforms import metrics

# runner_clock records the DirectRunner's TestStream clock, which RunnerClock() reads.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_clock")]

ALLOCATION = 100_000
# Processing seconds a step waits: past --max_buffering_seconds 1, so that every buffer is written.
FLUSH = 2.0


@pytest.fixture
def org(keyed_emulator, monkeypatch):
    """The emulator emptied, without faults, with its full allocation; the writers' credentials exported."""
    keyed_emulator.admin("POST", "/_emulator/reset")
    keyed_emulator.admin("POST", "/_emulator/faults", json={})
    keyed_emulator.admin("POST", "/_emulator/limits", json={"remaining": ALLOCATION})
    keyed_emulator.admin("POST", "/_emulator/calls/reset")
    export_credentials(keyed_emulator, monkeypatch)
    return keyed_emulator


def run_stream(emu, tmp_path: Path, steps) -> tuple[Summary, list[dict], dict[str, int]]:
    """Runs the streaming graph over StreamEvents(steps) to the end: its summary, dead letters, counters."""
    prefix = str(tmp_path / "dead" / "dead_letters")
    options = streaming_options(emu, prefix)
    settings = ConnectionSettings(
        login_url=emu.info["login_url"],
        ca_bundle=emu.info["ca_bundle"],
        backoff_base_seconds=0.02,
        limit_poll_seconds=0.2,
    )
    p = beam.Pipeline(runner=STREAMING_RUNNER, options=options)
    build(
        p,
        options.view_as(BeamforceOptions),
        CredentialsSource(),
        settings,
        source=StreamEvents(steps),
        streaming=True,
        clock=RunnerClock(),
    )
    with direct_runner_metrics.counting_every_bundle():
        result = p.run()
        result.wait_until_finish()
    totals, string_sets = counters(result)
    summary = Summary.from_metrics(totals, string_sets, dead_letter_output=prefix)
    dead = [
        json.loads(line) for f in sorted(glob.glob(prefix + "*.jsonl")) for line in open(f, encoding="utf-8")
    ]
    return summary, dead, totals


def test_fifty_identifies_of_one_new_email_make_one_lead_with_the_latest_values(org, tmp_path):
    email = "ann.lee@example.com"
    events = [
        identify(
            f"m{n:02d}",
            n,
            email=email,
            title=f"title {n}",
            **({"phone": f"555-01{n:02d}"} if n % 3 == 0 else {}),
            **({"firstName": f"Ann{n}"} if n % 7 == 0 else {}),
            **({"company": f"Co {n}"} if n in (5, 40) else {}),
        )
        for n in range(1, 51)
    ]
    shuffled = random.Random(6).sample(events, len(events))

    summary, dead = run_stream(org, tmp_path, [(shuffled, FLUSH)])[:2]

    assert by_match(records(org, "Lead"), "Email") == {
        email: {
            "Email": email,
            "Title": "title 50",
            "Phone": "555-0148",
            "FirstName": "Ann49",
            "Company": "Co 40",
            "LastName": "n/a",
            KEY_FIELD: email,
            TIMES_FIELD: {
                "Email": at(50),
                "Title": at(50),
                "Phone": at(48),
                "FirstName": at(49),
                "Company": at(40),
            },
        }
    }
    assert by_match(records(org, "Lead"), "Email") == expected_records(events)["Lead"]
    assert dead == []
    assert summary.written == {"Lead": {"create": 50}}
    assert summary.records_written == {"Lead": {"create": 1}}
    assert (summary.events_read, summary.events_written, summary.balanced) == (50, 50, True)


def test_a_long_stream_logs_in_once_and_describes_each_object_once(org, tmp_path):
    """The local streaming runner sets the writer up for every bundle; the writer's session (one per
    process) keeps the login and the describe across them."""
    steps = [
        (
            [identify(f"s{n}", n, email=f"p{n}@example.com"), group(f"g{n}", n, f"acct-{n}", name=f"N{n}")],
            FLUSH,
        )
        for n in range(1, 6)
    ]

    summary, dead = run_stream(org, tmp_path, steps)[:2]

    by_kind = org.admin("GET", "/_emulator/calls")["by_kind"]
    assert dead == []
    assert summary.records_written == {"Lead": {"create": 5}, "Account": {"create": 5}}
    assert (by_kind.get("login"), by_kind.get("describe")) == (1, 2), by_kind


def test_a_late_event_writes_only_its_fields_newer_than_any_seen(org, tmp_path):
    email = "bob@example.com"
    first = identify("e1", 1, email=email, firstName="Bob", lastName="Ray", title="Intern", phone="1")
    newest = identify("e3", 3, email=email, title="CTO")
    # Older than e3, newer than e1: its Title (and Email) are stale, its Phone and Company are news.
    late = identify("e2", 2, email=email, title="Engineer", phone="2", company="Initech")

    summary, dead = run_stream(org, tmp_path, [([first, newest], FLUSH), ([late], FLUSH)])[:2]

    assert by_match(records(org, "Lead"), "Email") == {
        email: {
            "Email": email,
            "FirstName": "Bob",
            "LastName": "Ray",
            "Title": "CTO",
            "Phone": "2",
            "Company": "Initech",
            KEY_FIELD: email,
            TIMES_FIELD: {
                "Email": at(3),
                "FirstName": at(1),
                "LastName": at(1),
                "Title": at(3),
                "Phone": at(2),
                "Company": at(2),
            },
        }
    }
    assert by_match(records(org, "Lead"), "Email") == expected_records([first, newest, late])["Lead"]
    assert summary.stale_fields_skipped == 2  # e2's Title and Email
    assert dead == []
    assert summary.written == {"Lead": {"create": 2, "update": 1}}
    assert (summary.events_read, summary.balanced) == (3, True)


def _mixed_events(
    rng: random.Random, identifies: int, groups: int, emails: int, companies: int
) -> list[dict]:
    """Identifies over `emails` people and groups over `companies`, each a random subset of traits, with
    distinct event times (so that "the latest value" is one value)."""
    times = rng.sample(range(1, 10 * (identifies + groups)), identifies + groups)
    events = []
    for n in range(identifies):
        traits = {
            k: f"{k} {n}"
            for k in ("firstName", "lastName", "title", "phone", "company")
            if rng.random() < 0.5
        }
        events.append(
            identify(f"i{n}", times[n], email=f"person{rng.randrange(emails)}@example.com", **traits)
        )
    for n in range(groups):
        traits = {k: f"{k} {n}" for k in ("phone", "description") if rng.random() < 0.6}
        if rng.random() < 0.5:
            traits["employees"] = rng.randrange(1, 5000)
        events.append(
            group(
                f"g{n}", times[identifies + n], f"G-{rng.randrange(companies)}", name=f"Company {n}", **traits
            )
        )
    return events


def test_faults_leave_every_event_accounted_for_and_the_org_as_the_events_say(org, tmp_path, caplog):
    rng = random.Random(20261201)
    events = _mixed_events(rng, identifies=240, groups=60, emails=50, companies=10)
    redelivered = rng.sample(events, 12)  # Segment's retries: the same messageId again
    arrivals = rng.sample(events + redelivered, len(events) + len(redelivered))
    steps = [(arrivals[i : i + 52], FLUSH) for i in range(0, len(arrivals), 52)]
    org.admin("POST", "/_emulator/faults", json={"error_rate": 0.05, "seed": 7})
    org.admin("POST", "/_emulator/limits", json={"remaining": 25})
    driver = OrgDriver(org, raise_to=ALLOCATION, expire_every=1.0, raise_after=1.0)

    driver.start()
    try:
        summary, dead, totals = run_stream(org, tmp_path, steps)
    finally:
        driver.stop()

    # The run met every fault it was meant to.
    assert driver.limit_reached and driver.limit_raised
    assert driver.sessions_expired > 0 and totals.get(metrics.SESSION_RENEWALS, 0) > 0
    assert totals.get(metrics.CLIENT_RETRIES, 0) > 0
    assert any("allocation is used up" in r.getMessage() for r in caplog.records)  # the writers waited
    assert summary.stale_fields_skipped > 0  # events arrived out of order, across steps too
    # Every event accounted for, nothing waited out as a dead letter.
    assert summary.events_read == len(arrivals)
    assert summary.balanced, summary.format_text()
    assert summary.deduplicated == len(redelivered)
    assert not {"REQUEST_LIMIT_EXCEEDED", "API_USAGE_RESERVED"} & set(summary.dead_lettered)
    assert (summary.dead_lettered, dead) == ({}, [])
    # The org holds exactly one record per email and group, with the latest value of every field.
    expected = expected_records(events)
    assert by_match(records(org, "Lead"), "Email") == expected["Lead"]
    assert by_match(records(org, "Account"), "AccountNumber") == expected["Account"]


def test_a_write_refused_when_the_input_ends_is_written_as_a_dead_letter(org, tmp_path):
    """Buffers flushed when the input ends (or the job drains) are stamped at the end of time, past any
    date: their dead letters still get a file (named by when it is written), and the summary balances."""
    events = [identify("m1", 1, email="ann@example.com"), identify("m2", 2, email="not-an-email")]

    summary, dead = run_stream(org, tmp_path, [(events, 0)])[:2]

    assert [(d["reason"], d["event"]["messageId"]) for d in dead] == [("INVALID_EMAIL_ADDRESS", "m2")]
    assert glob.glob(str(tmp_path / "dead" / "dead_letters-*-end-000-*-00000-of-00001.jsonl"))
    assert set(by_match(records(org, "Lead"), "Email")) == {"ann@example.com"}
    assert summary.dead_lettered == {"INVALID_EMAIL_ADDRESS": 1}
    assert (summary.events_read, summary.events_written, summary.balanced) == (2, 1, True)
