"""SalesforceClient's API budget governor and call rate limit against the local Salesforce."""

from dataclasses import replace
from typing import Any

import pytest

from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import ApiUsageReserved, TransientError
from salesforce.governor import STALE_READING_SECONDS, ApiUsage
from salesforce.upsert import UpsertItem, upsert_by_key
from tests.salesforce.conftest import FakeClock, Sleeps, calls, lead_records

# The emulator's default daily allocation.
ALLOCATION = 100_000
RESERVED = (
    "the org has used 95001 of its 100000 daily API calls (95.0%), which reaches the 90% this pipeline "
    "may use (--api_usage_limit_percent 90); the rest is left for the org's other integrations. Replay "
    "these events later, or raise --api_usage_limit_percent"
)


def lead(i: int) -> dict:
    return {"LastName": f"Person {i}", "Company": "Acme", "Email": f"person{i}@example.com"}


def governed(
    credentials: Credentials,
    settings: ConnectionSettings,
    clock: FakeClock,
    sleep: Any,
    **changes: Any,
) -> SalesforceClient:
    return SalesforceClient(credentials, replace(settings, **changes), clock=clock, sleep=sleep)


def set_used(org: Any, used: int) -> None:
    org.admin("POST", "/_emulator/limits", json={"remaining": ALLOCATION - used})


def test_the_first_data_call_after_a_reading_over_the_limit_is_refused(
    org: Any, credentials: Credentials, settings: ConnectionSettings, clock: FakeClock, sleeps: Sleeps
) -> None:
    set_used(org, 95_000)
    client = governed(credentials, settings, clock, sleeps, api_usage_limit_percent=90)
    client.login()
    assert client.api_usage is None  # a SOAP login answer carries no usage
    client.describe("Lead")  # nothing to go on yet: allowed, and its answer gives the reading
    assert client.api_usage == ApiUsage(95_001, ALLOCATION)

    for call in (
        lambda: client.query_all("SELECT Id FROM Lead"),
        lambda: client.create_many("Lead", [lead(1)]),
        lambda: client.update_many("Lead", [{"Id": "00Q000000000001AAA", "Title": "CTO"}]),
        lambda: client.describe("Account"),
    ):
        with pytest.raises(ApiUsageReserved) as raised:
            call()
        assert (raised.value.error_code, raised.value.message) == ("API_USAGE_RESERVED", RESERVED)

    assert calls(org) == {"total": 2, "by_kind": {"describe": 1, "login": 1}}
    assert client.api_calls == 2
    assert sleeps == []  # refused at once, no backoff


def test_the_governor_is_off_by_default(org: Any, client: SalesforceClient) -> None:
    set_used(org, 95_000)
    client.describe("Lead")
    assert client.query_all("SELECT Id FROM Lead") == []
    assert client.api_usage == ApiUsage(95_002, ALLOCATION)
    assert calls(org)["by_kind"] == {"login": 1, "describe": 1, "query": 1}


def test_below_the_limit_calls_go_on(
    org: Any, credentials: Credentials, settings: ConnectionSettings, clock: FakeClock, sleeps: Sleeps
) -> None:
    set_used(org, 10_000)
    client = governed(credentials, settings, clock, sleeps, api_usage_limit_percent=90)
    client.describe("Lead")
    assert [r.success for r in client.create_many("Lead", [lead(1)])] == [True]
    assert client.api_usage == ApiUsage(10_002, ALLOCATION)


def test_upsert_keeps_what_was_written_and_fails_the_rest_retryably(
    org: Any, credentials: Credentials, settings: ConnectionSettings, clock: FakeClock, sleeps: Sleeps
) -> None:
    org.admin("POST", "/_emulator/records/Lead", json=lead(1))  # seeding is not an API call
    # The lookup answers 89,999 (allowed), the update then takes usage to 90,000: the create is refused.
    set_used(org, 89_998)
    client = governed(credentials, settings, clock, sleeps, api_usage_limit_percent=90)
    items = [
        UpsertItem("person1@example.com", {"Title": "CTO"}),
        UpsertItem("person2@example.com", {"LastName": "Two", "Company": "Acme"}),
    ]
    outcomes = upsert_by_key(client, "Lead", "Email", items)
    assert [(o.key, o.action, o.error_code, o.retryable) for o in outcomes] == [
        ("person1@example.com", "updated", None, False),
        ("person2@example.com", "failed", "API_USAGE_RESERVED", True),
    ]
    assert outcomes[1].message.startswith("the org has used 90000 of its 100000 daily API calls (90.0%)")
    assert [(r["Email"], r["Title"]) for r in lead_records(org)] == [("person1@example.com", "CTO")]
    assert calls(org)["by_kind"] == {"login": 1, "query": 1, "collections": 1}


def test_a_stale_reading_lets_one_call_read_the_usage_again(
    org: Any, credentials: Credentials, settings: ConnectionSettings, clock: FakeClock, sleeps: Sleeps
) -> None:
    set_used(org, 95_000)
    client = governed(credentials, settings, clock, sleeps, api_usage_limit_percent=90)
    client.describe("Lead")
    with pytest.raises(ApiUsageReserved):
        client.query_all("SELECT Id FROM Lead")
    clock.now += STALE_READING_SECONDS
    assert client.query_all("SELECT Id FROM Lead") == []  # let through: the reading was stale
    with pytest.raises(ApiUsageReserved):
        client.query_all("SELECT Id FROM Lead")
    # Meanwhile the org's usage went down: the next fresh reading lets calls go on.
    set_used(org, 50_000)
    clock.now += STALE_READING_SECONDS
    client.query_all("SELECT Id FROM Lead")
    assert client.api_usage == ApiUsage(50_001, ALLOCATION)
    assert client.query_all("SELECT Id FROM Lead") == []
    assert calls(org)["by_kind"] == {"login": 1, "describe": 1, "query": 3}


class SleepingClock(FakeClock):
    """A fake clock that the client's sleeps move forward, recording each one."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_calls_are_spaced_by_the_rate_limit_login_included(
    org: Any, credentials: Credentials, settings: ConnectionSettings
) -> None:
    clock = SleepingClock()
    client = SalesforceClient(
        credentials, replace(settings, max_calls_per_second=4.0), clock=clock, sleep=clock.sleep
    )
    client.login()
    client.describe("Lead")
    client.query_all("SELECT Id FROM Lead")
    clock.now += 0.125  # a call made an eighth of a second after the last waits the rest of a quarter
    client.query_all("SELECT Id FROM Lead")
    clock.now += 10  # an idle client calls at once
    client.query_all("SELECT Id FROM Lead")
    assert clock.sleeps == [0.25, 0.25, 0.125]
    assert client.throttled_seconds == 0.625
    assert client.backoff_seconds == 0.0
    assert calls(org)["by_kind"] == {"login": 1, "describe": 1, "query": 3}


def test_retries_wait_for_the_rate_limit_too(
    org: Any, credentials: Credentials, settings: ConnectionSettings
) -> None:
    clock = SleepingClock()
    # No backoff, so that every wait left is the rate limit's.
    tight = replace(settings, max_calls_per_second=4.0, max_retries=2, backoff_base_seconds=0.0)
    client = SalesforceClient(credentials, tight, clock=clock, sleep=clock.sleep)
    client.login()
    org.admin("POST", "/_emulator/faults", json={"error_rate": 1.0, "error_kinds": ["SERVER_UNAVAILABLE"]})
    with pytest.raises(TransientError):
        client.query_all("SELECT Id FROM Lead")
    org.admin("POST", "/_emulator/faults", json={})
    # The first query waits a quarter second after the login; each retry backs off 0 s, then waits again.
    assert clock.sleeps == [0.25, 0.0, 0.25, 0.0, 0.25]
    assert client.throttled_seconds == 0.75
    assert calls(org)["by_kind"] == {"login": 1, "query": 3}
