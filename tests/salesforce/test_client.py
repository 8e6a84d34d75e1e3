"""SalesforceClient against the local Salesforce: login, describe, paging, writes, renewal, limits, faults."""

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceRefusedRequest

from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import ApiLimitExceeded, SalesforceApiError, SalesforceLoginError, TransientError
from tests.salesforce.conftest import calls, lead_records, reset_calls


def lead(i: int, **extra: Any) -> dict:
    return {"LastName": f"Person {i}", "Company": "Acme", "Email": f"person{i}@example.com", **extra}


def test_login_then_describe_is_two_calls(client: SalesforceClient, org: Any) -> None:
    meta = client.describe("Lead")
    assert meta.name == "Lead"
    assert meta.get("email").type == "email"
    assert meta.get("LastName").length == 80
    assert client.api_calls == 2
    assert calls(org) == {"total": 2, "by_kind": {"describe": 1, "login": 1}}


def test_describe_is_cached_until_the_ttl(client: SalesforceClient, clock: Any, org: Any) -> None:
    first = client.describe("Lead")
    clock.now += 1799
    assert client.describe("lead") is first
    assert client.api_calls == 2
    clock.now += 1
    assert client.describe("Lead") == first
    assert client.api_calls == 3
    assert calls(org)["by_kind"]["describe"] == 2


def test_describe_of_an_unknown_object(client: SalesforceClient) -> None:
    with pytest.raises(SalesforceApiError) as info:
        client.describe("NoSuchThing__c")
    assert info.value.status == 404
    assert info.value.error_code == "NOT_FOUND"


def test_wrong_password_is_a_login_error_without_the_password(
    org: Any, credentials: Credentials, settings: ConnectionSettings
) -> None:
    bad = Credentials(credentials.username, "wrong-Pa55word", credentials.security_token)
    client = SalesforceClient(bad, settings, sleep=lambda s: None)
    with pytest.raises(SalesforceLoginError) as info:
        client.login()
    assert info.value.code == "INVALID_LOGIN"
    assert "wrong-Pa55word" not in str(info.value)
    assert credentials.security_token not in str(info.value)
    assert client.api_calls == 1  # refused logins are not retried


def test_an_untrusted_certificate_fails_at_once(org: Any, credentials: Credentials, emulator: Any) -> None:
    settings = ConnectionSettings(login_url=emulator.info["login_url"])  # the emulator's CA not given
    sleeps: list[float] = []
    client = SalesforceClient(credentials, settings, sleep=sleeps.append)
    with pytest.raises(TransientError) as info:
        client.login()
    assert (info.value.error_code, info.value.attempts) == ("SSLError", 1)
    assert "CA bundle" in str(info.value)
    assert sleeps == []


def test_create_update_and_query(client: SalesforceClient, org: Any) -> None:
    created = client.create_many("Lead", [lead(1), lead(2)])
    assert [r.success for r in created] == [True, True]
    assert all(r.id and r.id.startswith("00Q") for r in created)
    updated = client.update_many("Lead", [{"Id": created[0].id, "Title": "CTO"}])
    assert updated[0].success and updated[0].id == created[0].id
    rows = client.query_all("SELECT Id, Email, Title FROM Lead ORDER BY Email")
    assert rows == [
        {"Id": created[0].id, "Email": "person1@example.com", "Title": "CTO"},
        {"Id": created[1].id, "Email": "person2@example.com", "Title": None},
    ]
    assert calls(org)["by_kind"] == {"collections": 2, "login": 1, "query": 1}
    assert client.api_calls == 4


def test_writes_go_200_records_a_call(client: SalesforceClient, org: Any) -> None:
    results = client.create_many("Lead", [lead(i) for i in range(450)])
    assert len(results) == 450 and all(r.success for r in results)
    assert calls(org)["by_kind"]["collections"] == 3
    updates = [{"Id": r.id, "Title": "VP"} for r in results]
    assert all(r.success for r in client.update_many("Lead", updates))
    assert calls(org)["by_kind"]["collections"] == 6
    assert {r["Title"] for r in lead_records(org)} == {"VP"}


def test_query_all_follows_next_records_url(client: SalesforceClient, org: Any) -> None:
    client.create_many("Lead", [lead(i) for i in range(2500)])
    reset_calls(org)
    rows = client.query_all("SELECT Id, Email FROM Lead")
    assert len(rows) == 2500
    assert len({r["Id"] for r in rows}) == 2500
    assert calls(org)["by_kind"] == {"query": 2}  # 2,000 a page


def test_per_record_failures_carry_salesforces_code(client: SalesforceClient) -> None:
    results = client.create_many("Lead", [lead(1), lead(2, Title="x" * 129), {"Company": "No Name"}])
    ok, too_long, missing = results
    assert ok.success and not ok.errors
    assert not too_long.success and too_long.id is None
    assert too_long.error_code == "STRING_TOO_LONG"
    assert too_long.errors[0]["fields"] == ["Title"]
    assert missing.error_code == "REQUIRED_FIELD_MISSING"
    assert "LastName" in missing.errors[0]["fields"]


def test_a_bad_query_is_not_retried(client: SalesforceClient, sleeps: list) -> None:
    with pytest.raises(SalesforceApiError) as info:
        client.query_all("SELECT Id, NoSuchField FROM Lead")
    assert info.value.error_code == "INVALID_FIELD"
    assert sleeps == []


def test_expired_session_is_renewed(client: SalesforceClient, org: Any) -> None:
    client.query_all("SELECT Id FROM Lead")
    org.admin("POST", "/_emulator/sessions/expire")
    reset_calls(org)
    before = client.api_calls
    assert client.query_all("SELECT Id FROM Lead") == []
    # The refused call (401, not counted by Salesforce), the login, the call again.
    assert client.api_calls - before == 3
    assert calls(org)["by_kind"] == {"login": 1, "query": 1}
    assert client.session_renewals == 1


def test_creates_are_resent_after_an_expired_session(client: SalesforceClient, org: Any) -> None:
    client.login()
    org.admin("POST", "/_emulator/sessions/expire")
    results = client.create_many("Lead", [lead(1)])
    assert results[0].success
    assert len(lead_records(org)) == 1


def test_daily_limit_is_not_retried(client: SalesforceClient, org: Any, sleeps: list) -> None:
    client.login()
    org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    with pytest.raises(ApiLimitExceeded) as info:
        client.query_all("SELECT Id FROM Lead")
    assert "TotalRequests" in str(info.value)
    assert sleeps == []
    assert client.api_calls == 2


def test_limit_running_out_midway(client: SalesforceClient, org: Any) -> None:
    client.login()
    org.admin("POST", "/_emulator/limits", json={"remaining": 2})
    client.create_many("Lead", [lead(i) for i in range(400)])
    with pytest.raises(ApiLimitExceeded):
        client.create_many("Lead", [lead(1)])
    assert len(lead_records(org)) == 400


def _faults(org: Any, rate: float, kinds: list[str], seed: int = 7) -> None:
    org.admin("POST", "/_emulator/faults", json={"error_rate": rate, "error_kinds": kinds, "seed": seed})


@pytest.mark.parametrize("kind", ["SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "UNABLE_TO_LOCK_ROW"])
def test_transient_query_errors_are_retried(
    client: SalesforceClient, org: Any, sleeps: list, kind: str
) -> None:
    client.create_many("Lead", [lead(i) for i in range(3)])
    _faults(org, 0.5, [kind])
    for _ in range(10):
        assert len(client.query_all("SELECT Id FROM Lead")) == 3
    assert sleeps, "a 50% error rate over 10 queries should have needed a retry"
    assert client.retries == len(sleeps)
    # Exponential backoff with jitter between half and the full delay.
    for delay in sleeps:
        assert 0.005 <= delay <= 0.01 * 2**5


def test_retries_run_out(client: SalesforceClient, org: Any, sleeps: list) -> None:
    client.login()
    _faults(org, 1.0, ["SERVER_UNAVAILABLE"])
    reset_calls(org)
    with pytest.raises(TransientError) as info:
        client.query_all("SELECT Id FROM Lead")
    assert info.value.error_code == "SERVER_UNAVAILABLE"
    assert info.value.attempts == 6
    assert len(sleeps) == 5
    assert [0.01 * 2**i / 2 <= d <= 0.01 * 2**i for i, d in enumerate(sleeps)] == [True] * 5
    assert calls(org)["total"] == 6


def test_a_create_call_that_may_have_been_applied_is_not_resent(client: SalesforceClient, org: Any) -> None:
    client.login()
    _faults(org, 1.0, ["SERVER_UNAVAILABLE"])
    reset_calls(org)
    with pytest.raises(TransientError) as info:
        client.create_many("Lead", [lead(1)])
    assert info.value.maybe_applied
    assert calls(org)["total"] == 1


def test_update_calls_are_retried(client: SalesforceClient, org: Any, sleeps: list) -> None:
    [created] = client.create_many("Lead", [lead(1)])
    _faults(org, 0.5, ["SERVER_UNAVAILABLE"], seed=3)
    for i in range(8):
        [result] = client.update_many("Lead", [{"Id": created.id, "Title": f"T{i}"}])
        assert result.success
    assert sleeps
    assert lead_records(org)[0]["Title"] == "T7"


def test_concurrent_request_limit_is_retried(
    client: SalesforceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator's concurrency cap needs 25 requests in flight; the classification is what matters.
    refused = SalesforceRefusedRequest(
        "https://x/query",
        403,
        "query",
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn Limit exceeded"}],
    )
    failure = SalesforceClient._classify(refused)
    assert failure.code == "REQUEST_LIMIT_EXCEEDED"
    assert failure.maybe_applied is False
    daily = SalesforceRefusedRequest(
        "https://x/query",
        403,
        "query",
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
    )
    with pytest.raises(ApiLimitExceeded):
        SalesforceClient._classify(daily)


def test_errors_do_not_leak_query_values(client: SalesforceClient, org: Any) -> None:
    client.login()
    _faults(org, 1.0, ["SERVER_UNAVAILABLE"])
    with pytest.raises(TransientError) as info:
        client.query_all("SELECT Id FROM Lead WHERE Email = 'secret.person@example.com'")
    assert "secret.person" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_repr_hides_the_password(client: SalesforceClient, credentials: Credentials) -> None:
    assert credentials.password not in repr(client)
