"""The admin API, the start/stop contract and state that survives a restart."""

import signal
import subprocess
import sys

import pytest
from simple_salesforce import Salesforce

from emulator.process import EmulatorError, start_emulator
from tests.emulator.conftest import Raw, login


def test_health_and_ready_line(emu):
    assert emu.admin("GET", "health") == {"status": "ok"}
    info = emu.info
    assert set(info) >= {
        "login_url",
        "instance_url",
        "ca_bundle",
        "username",
        "password",
        "security_token",
        "admin_url",
    }
    assert info["admin_url"] == f"{info['instance_url']}/_emulator"
    assert info["ca_bundle"].startswith("/") and info["ca_bundle"].endswith("ca.pem")


def test_admin_paths_may_carry_the_prefix(emu):
    assert emu.admin("GET", "/_emulator/health") == {"status": "ok"}


def test_reset_and_records(emu, sf):
    sf.Lead.create({"LastName": "A", "Company": "C"})
    rows = emu.admin("GET", "records/lead")
    assert rows["totalSize"] == 1
    assert (rows["records"][0]["LastName"], rows["records"][0]["Company"]) == ("A", "C")
    assert emu.admin("POST", "reset") == {"reset": True}
    assert emu.admin("GET", "records/Lead") == {"totalSize": 0, "records": []}


def test_records_of_unknown_object(emu):
    with pytest.raises(EmulatorError, match="HTTP 404"):
        emu.admin("GET", "records/Nope")


def test_calls_reset(emu, sf):
    sf.limits()
    assert emu.admin("GET", "calls") == {"total": 2, "by_kind": {"limits": 1, "login": 1}}
    assert emu.admin("POST", "calls/reset") == {"total": 0, "by_kind": {}}


def test_admin_calls_are_not_api_calls(emu, raw):
    before = raw("GET", "limits").headers["sforce-limit-info"]
    for _ in range(3):
        emu.admin("GET", "health")
    after = raw("GET", "limits").headers["sforce-limit-info"]
    used = [int(h.split("=")[1].split("/")[0]) for h in (before, after)]
    assert used[1] == used[0] + 1
    assert emu.admin("GET", "calls")["by_kind"] == {"login": 1, "limits": 2}


def test_expire_sessions_then_log_in_again(emu, sf, raw):
    assert raw("GET", "limits").status_code == 200
    expired = emu.admin("POST", "sessions/expire")["expired"]
    assert expired >= 1
    assert raw("GET", "limits").status_code == 401
    raw.session_id = login(emu)[0]
    assert raw("GET", "limits").status_code == 200


def test_limits_get_and_bad_input(emu):
    assert emu.admin("GET", "limits") == {"max": 100000, "used": 0, "remaining": 100000}
    for bad in ({"remaining": -1}, {"remaining": "x"}, {}):
        with pytest.raises(EmulatorError, match="HTTP 400"):
            emu.admin("POST", "limits", bad)


def test_faults_get_and_set(emu):
    assert emu.admin("GET", "faults") == {
        "latency_ms": 0.0,
        "jitter_ms": 0.0,
        "error_rate": 0.0,
        "error_kinds": ["SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"],
        "seed": None,
        "hold": False,
    }
    assert emu.admin("POST", "faults", {"latency_ms": 5})["latency_ms"] == 5
    emu.admin("POST", "reset")
    assert emu.admin("GET", "faults")["latency_ms"] == 0.0


def test_unknown_admin_path(emu):
    with pytest.raises(EmulatorError, match="HTTP 404"):
        emu.admin("GET", "nothing")


def test_state_survives_a_restart(tmp_path):
    data = tmp_path / "data"
    with start_emulator(data) as first:
        session_id, instance = login(first)
        sf = Salesforce(session_id=session_id, instance_url=first.instance_url, session=first.session())
        lead_id = sf.Lead.create({"LastName": "Kept", "Company": "C"})["id"]
        first.admin("POST", "limits", {"remaining": 500})
        ca = (data / "tls" / "ca.pem").read_bytes()
    with start_emulator(data) as second:
        raw = Raw(second, session_id)  # the old session is still valid
        response = raw("GET", f"sobjects/Lead/{lead_id}")
        assert (response.status_code, response.json()["LastName"]) == (200, "Kept")
        assert response.headers["sforce-limit-info"] == "api-usage=99501/100000"
        assert (data / "tls" / "ca.pem").read_bytes() == ca
        assert second.info["ca_bundle"] == str(data / "tls" / "ca.pem")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_it_cleanly(tmp_path, signum):
    emu = start_emulator(tmp_path / "data")
    emu.session().get(f"{emu.info['admin_url']}/health")  # leaves an idle keep-alive connection open
    emu.proc.send_signal(signum)
    assert emu.proc.wait(10) == 0
    emu.stop()
    assert "Traceback" not in emu.log_path.read_text()


def test_bad_config_fails_before_listening(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("faults: {error_kinds: [NOPE], error_rate: 0.1}\n")
    with pytest.raises(EmulatorError, match="faults.error_kinds"):
        start_emulator(tmp_path / "data", config_path=config)


def test_cli_help_describes_every_option():
    out = subprocess.run(
        [sys.executable, "-m", "emulator", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in ("--host", "--port", "--data-dir", "--config", "--max-body-bytes", "--log-level"):
        assert option in out


# ------------------------------------------------------------------------------------------- seeding

CONVERTED = {
    "LastName": "Conv",
    "Company": "C",
    "IsConverted": True,
    "CreatedDate": "2025-01-01T00:00:00Z",
    "LastModifiedDate": "2025-02-01T10:00:00.000+0000",
}


def seed(emu, sobject: str, body: object = None, data: bytes | None = None):
    """POST records/{sobject} over raw HTTP, for status codes and error bodies."""
    url = f"{emu.info['admin_url']}/records/{sobject}"
    if data is not None:
        return emu.session().post(url, data=data, headers={"Content-Type": "application/json"}, timeout=30)
    return emu.session().post(url, json=body, timeout=30)


def calls_and_usage(emu, raw) -> tuple[dict, int]:
    """(API calls by kind, API usage used) as the emulator reports them."""
    return emu.admin("GET", "calls")["by_kind"], emu.admin("GET", "limits")["used"]


def test_seed_sets_fields_clients_cannot_write(emu, raw):
    response = seed(emu, "lead", CONVERTED)
    assert response.status_code == 201
    record_id = response.json()["id"]
    assert list(response.json()) == ["id"] and len(record_id) == 18 and record_id.startswith("00Q")
    [stored] = emu.admin("GET", "records/Lead")["records"]
    assert {k: stored[k] for k in ("Id", "IsConverted", "CreatedDate", "LastModifiedDate", "Status")} == {
        "Id": record_id,
        "IsConverted": True,
        "CreatedDate": "2025-01-01T00:00:00.000+0000",
        "LastModifiedDate": "2025-02-01T10:00:00.000+0000",
        "Status": "Open - Not Contacted",
    }
    # Seeding is no API call; the seeded record then behaves as a converted Lead over the API.
    assert calls_and_usage(emu, raw) == ({"login": 1}, 0)
    update = raw("PATCH", f"sobjects/Lead/{record_id}", json={"Title": "x"})
    assert (update.status_code, update.json()) == (
        400,
        [
            {
                "message": "cannot reference converted lead",
                "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD",
                "fields": [],
            }
        ],
    )


def test_seed_a_list_returns_ids_in_order(emu):
    response = seed(emu, "Account", [{"Name": "A"}, {"Name": "B", "AnnualRevenue": 5}, {}])
    assert response.status_code == 201
    ids = response.json()["ids"]
    stored = {r["Id"]: r.get("Name") for r in emu.admin("GET", "records/Account")["records"]}
    assert stored == dict(zip(ids, ["A", "B", None], strict=True))  # required fields are not checked
    assert seed(emu, "Account", []).json() == {"ids": []}


def test_a_seeded_list_is_all_or_none(emu):
    response = seed(emu, "Lead", [{"LastName": "Kept?", "Company": "C"}, {"LastName": "x" * 81}])
    assert (response.status_code, response.json()) == (
        400,
        [
            {
                "message": f"Last Name: data value too large: {'x' * 81} (max length=80)",
                "errorCode": "STRING_TOO_LONG",
                "fields": ["LastName"],
            }
        ],
    )
    assert emu.admin("GET", "records/Lead") == {"totalSize": 0, "records": []}


NOT_AN_OBJECT = "Expected a JSON object or a list of JSON objects"
NOT_FOUND = (404, "NOT_FOUND", "The requested resource does not exist")


@pytest.mark.parametrize(
    "sobject, data, error",
    [
        (
            "Lead",
            b"{",
            (
                400,
                "JSON_PARSER_ERROR",
                "Expecting property name enclosed in double quotes at [line:1, column:2]",
            ),
        ),
        (
            "Lead",
            b"",
            (400, "JSON_PARSER_ERROR", "No content to map due to end-of-input at [line:1, column:0]"),
        ),
        ("Lead", b'"x"', (400, "JSON_PARSER_ERROR", NOT_AN_OBJECT)),
        ("Lead", b'[{"LastName": "a"}, 1]', (400, "JSON_PARSER_ERROR", NOT_AN_OBJECT)),
        ("Nope", b'{"Name": "x"}', NOT_FOUND),
        ("Nope", b"[]", NOT_FOUND),
        (
            "Lead",
            b'{"Nope__c": 1}',
            (400, "INVALID_FIELD", "No such column 'Nope__c' on sobject of type Lead"),
        ),
    ],
)
def test_seed_errors(emu, sobject, data, error):
    response = seed(emu, sobject, data=data)
    assert (response.status_code, response.json()) == (
        error[0],
        [{"message": error[2], "errorCode": error[1]}],
    )
    assert emu.admin("GET", "records/Lead")["totalSize"] == 0
