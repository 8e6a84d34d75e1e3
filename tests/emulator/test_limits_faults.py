"""The daily allocation, the concurrent cap, injected latency and transient errors, and call counting."""

import concurrent.futures
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
    # The org allows 25 calls at once: 25 held open (the hold fault) fill the cap, whatever the
    # machine's speed; calls beyond it are refused, and the held ones complete once released.
    emu.admin("POST", "faults", {"hold": True})
    held = [Raw(emu, sf.session_id) for _ in range(25)]
    with concurrent.futures.ThreadPoolExecutor(len(held)) as pool:
        try:
            pending = [pool.submit(client, "GET", "limits") for client in held]
            assert emu.admin("POST", "in_flight/wait", {"count": 25}) == {"in_flight": 25, "reached": True}
            extra = Raw(emu, sf.session_id)
            refused = [extra("GET", "limits") for _ in range(5)]
        finally:
            emu.admin("POST", "faults", {})  # releases the held calls
        statuses = [future.result().status_code for future in pending]
    assert statuses == [200] * 25
    assert [(r.status_code, r.json()) for r in refused] == [(403, CONCURRENT)] * 5
    assert calls(emu) == {"login": 1, "limits": 25}  # refused calls are not counted
    assert extra("GET", "limits").status_code == 200


def test_a_reset_releases_held_calls(emu, raw):
    emu.admin("POST", "faults", {"hold": True})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(raw, "GET", "limits")
        assert emu.admin("POST", "in_flight/wait", {"count": 1}) == {"in_flight": 1, "reached": True}
        emu.admin("POST", "reset")
        assert pending.result().status_code == 200
    assert emu.admin("GET", "faults")["hold"] is False


@pytest.mark.parametrize("body", [{}, {"count": -1}, {"count": "1"}, {"count": True}, [1]])
def test_in_flight_wait_needs_a_count(emu, body):
    with pytest.raises(EmulatorError, match="HTTP 400"):
        emu.admin("POST", "in_flight/wait", body)


def test_in_flight_wait_for_nothing_answers_at_once(emu):
    assert emu.admin("POST", "in_flight/wait", {"count": 0}) == {"in_flight": 0, "reached": True}


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
        {"hold": "yes"},
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
