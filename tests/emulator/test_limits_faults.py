"""The daily allocation, the concurrent cap, injected latency and transient errors, and call counting."""

import threading
import time

import pytest
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from emulator.process import EmulatorError
from emulator.sessions import ApiUsage, StateDb
from tests.emulator.conftest import Raw, calls, login

DAILY = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
CONCURRENT = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
UNAVAILABLE = [{"message": "Server Unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
LOCKED = {
    "message": "unable to obtain exclusive access to this record",
    "errorCode": "UNABLE_TO_LOCK_ROW",
    "fields": [],
}


def test_daily_allocation_runs_out(emu, sf, raw):
    assert emu.admin("POST", "limits", {"remaining": 2}) == {"max": 100000, "used": 99998, "remaining": 2}
    assert sf.limits()["DailyApiRequests"] == {"Max": 100000, "Remaining": 1}
    assert raw("GET", "limits").headers["sforce-limit-info"] == "api-usage=100000/100000"
    refused = raw("GET", "limits")
    assert (refused.status_code, refused.json()) == (403, DAILY)
    assert refused.headers["sforce-limit-info"] == "api-usage=100000/100000"
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM Lead")
    assert err.value.content == DAILY
    login(emu)  # logging in does not spend the allocation, and still works
    assert calls(emu) == {"login": 2, "limits": 2}  # refused calls are not counted


def test_reset_restores_the_allocation(emu, raw):
    emu.admin("POST", "limits", {"remaining": 0})
    assert raw("GET", "limits").status_code == 403
    emu.admin("POST", "reset")
    assert raw("GET", "limits").json()["DailyApiRequests"] == {"Max": 100000, "Remaining": 99999}


def test_concurrent_cap(emu, sf):
    # 30 clients each hold one request open (1.5 s of injected latency); the org allows 25 at once.
    clients = [Raw(emu, sf.session_id) for _ in range(30)]
    for client in clients:
        client("GET", "limits")  # open each keep-alive connection before the burst
    emu.admin("POST", "faults", {"latency_ms": 1500})
    start = threading.Barrier(len(clients))
    statuses: list[tuple[int, object]] = []

    def call(client: Raw) -> None:
        start.wait()
        response = client("GET", "limits")
        statuses.append((response.status_code, response.json() if response.status_code != 200 else None))

    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in statuses) == [200] * 25 + [403] * 5
    assert {str(body) for s, body in statuses if s == 403} == {str(CONCURRENT)}


def test_latency_is_injected(emu, raw):
    emu.admin("POST", "faults", {"latency_ms": 200, "jitter_ms": 50})
    started = time.perf_counter()
    assert raw("GET", "limits").status_code == 200
    elapsed = time.perf_counter() - started
    # Only the lower bound: the injected delay is the behaviour; how fast the rest runs is not tested.
    assert elapsed >= 0.2


def test_server_unavailable(emu, sf, raw):
    emu.admin("POST", "faults", {"error_rate": 1.0, "error_kinds": ["SERVER_UNAVAILABLE"]})
    response = raw("GET", "limits")
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert response.headers["sforce-limit-info"].startswith("api-usage=")
    with pytest.raises(SalesforceGeneralError) as err:
        sf.Lead.get("00Q8c0000000001EAA")
    assert (err.value.status, err.value.content) == (503, UNAVAILABLE)
    assert calls(emu) == {"login": 1, "limits": 1, "get": 1}  # faulted calls still count


def test_lock_error_on_a_single_record_call(emu, sf):
    emu.admin("POST", "faults", {"error_rate": 1.0, "error_kinds": ["UNABLE_TO_LOCK_ROW"]})
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Lead.create({"LastName": "x", "Company": "y"})
    assert err.value.content == [LOCKED]
    assert emu.admin("GET", "records/Lead")["records"] == []


def test_lock_error_in_collections_is_per_record(emu, sf):
    emu.admin("POST", "faults", {"error_rate": 1.0, "error_kinds": ["UNABLE_TO_LOCK_ROW"]})
    records = [{"attributes": {"type": "Lead"}, "LastName": n, "Company": "c"} for n in "ab"]
    results = sf.restful("composite/sobjects", method="POST", json={"records": records})
    error = {"statusCode": "UNABLE_TO_LOCK_ROW", "message": LOCKED["message"], "fields": []}
    assert results == [{"id": None, "success": False, "errors": [error]}] * 2
    assert emu.admin("GET", "records/Lead")["records"] == []


def test_seeded_faults_repeat(emu, raw):
    def run() -> list[int]:
        emu.admin(
            "POST",
            "faults",
            {"error_rate": 0.5, "error_kinds": ["SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"], "seed": 7},
        )
        return [raw("GET", "limits").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {200, 503, 500} == set(first)


@pytest.mark.parametrize(
    "faults",
    [
        {"error_kinds": ["NOPE"]},
        {"error_rate": 2},
        {"latency_ms": "slow"},
        {"nope": 1},
        {"error_rate": 0.5, "error_kinds": []},
    ],
)
def test_bad_faults_are_refused(emu, faults):
    with pytest.raises(EmulatorError, match="HTTP 400"):
        emu.admin("POST", "faults", faults)
    assert emu.admin("GET", "faults")["error_rate"] == 0.0


def test_calls_are_counted_by_kind(emu, sf):
    lead_id = sf.Lead.create({"LastName": "x", "Company": "y"})["id"]
    sf.Lead.get(lead_id)
    sf.Lead.update(lead_id, {"FirstName": "z"})
    sf.query("SELECT Id FROM Lead")
    sf.Lead.describe()
    sf.restful("composite/sobjects", method="DELETE", params={"ids": lead_id})
    sf.restful("")
    assert emu.admin("GET", "calls") == {
        "total": 8,
        "by_kind": {
            "collections": 1,
            "create": 1,
            "describe": 1,
            "get": 1,
            "login": 1,
            "query": 1,
            "resources": 1,
            "update": 1,
        },
    }


def test_usage_is_a_rolling_24_hours_and_persists(tmp_path):
    now = [3600.0 * 1000]
    db = StateDb(tmp_path / "state.sqlite3")
    usage = ApiUsage(db, 3, clock=lambda: now[0])
    assert [usage.try_take() for _ in range(4)] == [True, True, True, False]
    now[0] += 3600 * 23
    assert (usage.used, usage.try_take()) == (3, False)
    now[0] += 3600  # the first hour's calls roll off
    assert (usage.used, usage.try_take()) == (0, True)
    usage.flush()
    assert ApiUsage(db, 3, clock=lambda: now[0]).used == 1
    db.close()
