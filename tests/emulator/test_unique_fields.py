"""Unique custom fields under concurrent sObject Collections calls, and Long Text Area(131072) fields."""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce

from emulator.process import EmulatorProcess, start_emulator

CONFIG = """
custom_fields:
  Lead:
    - {name: Key__c, type: external_id, length: 255, unique: true}
    - {name: Times__c, type: textarea, length: 131072}
"""
LEAD = {"attributes": {"type": "Lead"}, "LastName": "L", "Company": "C"}


@pytest.fixture(scope="module")
def unique_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    data: Path = tmp_path_factory.mktemp("unique-emulator")
    (data / "org.yaml").write_text(CONFIG)
    with start_emulator(data / "data", config_path=data / "org.yaml") as emu:
        yield emu


@pytest.fixture
def emu(unique_emulator: EmulatorProcess) -> EmulatorProcess:
    unique_emulator.admin("POST", "/_emulator/reset")
    unique_emulator.admin("POST", "/_emulator/faults", json={"error_rate": 0.0, "latency_ms": 0})
    return unique_emulator


def collections(sf: Salesforce, method: str, records: list[dict]) -> list[dict]:
    return sf.restful("composite/sobjects", method=method, json={"allOrNone": False, "records": records})


def at_once(emu: EmulatorProcess, calls: list[Callable[[Salesforce], Any]]) -> list[Any]:
    """Runs each call on its own client and thread; with 300 ms latency the requests overlap."""
    clients = [emu.salesforce() for _ in calls]
    emu.admin("POST", "/_emulator/faults", json={"latency_ms": 300})
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        results[i] = calls[i](clients[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def holders(emu: EmulatorProcess) -> dict[str, str]:
    records = emu.admin("GET", "/_emulator/records/Lead")["records"]
    return {r["Key__c"].lower(): r["Id"] for r in records if r.get("Key__c")}


def test_concurrent_creates_of_one_value_create_it_once(emu: EmulatorProcess) -> None:
    keys = [f"k{i}@example.com" for i in range(100)]
    # The second writer spells the keys in upper case: the unique index ignores case.
    batches = [[{**LEAD, "Key__c": k} for k in keys], [{**LEAD, "Key__c": k.upper()} for k in keys]]
    first, second = at_once(emu, [lambda sf, b=b: collections(sf, "POST", b) for b in batches])

    records = emu.admin("GET", "/_emulator/records/Lead")["records"]
    assert len(records) == 100
    held = holders(emu)
    message = "duplicate value found: Key__c duplicates value on record with id: {}"
    for key, a, b in zip(keys, first, second, strict=True):
        assert a["success"] != b["success"], (a, b)
        lost = b if a["success"] else a
        assert lost == {
            "id": None,
            "success": False,
            "errors": [
                {
                    "statusCode": "DUPLICATE_VALUE",
                    "message": message.format(held[key]),
                    "fields": [],
                }
            ],
        }


def test_concurrent_updates_to_one_value_set_it_once(emu: EmulatorProcess) -> None:
    sf = emu.salesforce()
    created = collections(sf, "POST", [dict(LEAD) for _ in range(100)])
    ids = [r["id"] for r in created]
    # Records 2i and 2i+1 are both given value i, by two writers at once.
    batches = [
        [{"attributes": {"type": "Lead"}, "Id": ids[2 * i + side], "Key__c": f"v{i}"} for i in range(50)]
        for side in (0, 1)
    ]
    first, second = at_once(emu, [lambda sf, b=b: collections(sf, "PATCH", b) for b in batches])
    for a, b in zip(first, second, strict=True):
        assert a["success"] != b["success"], (a, b)
        assert (b if a["success"] else a)["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert sorted(holders(emu)) == sorted(f"v{i}" for i in range(50))


def test_a_long_text_area_of_131072_characters(emu: EmulatorProcess) -> None:
    sf = emu.salesforce()
    fits, too_long = "x" * 131072, "y" * 131073
    ok, refused = collections(sf, "POST", [{**LEAD, "Times__c": fits}, {**LEAD, "Times__c": too_long}])
    assert ok["success"]
    [error] = refused["errors"]
    assert (error["statusCode"], error["fields"]) == ("STRING_TOO_LONG", ["Times__c"])
    assert error["message"].endswith("(max length=131072)")
    [row] = sf.query(f"SELECT Id, Times__c FROM Lead WHERE Id = '{ok['id']}'")["records"]
    assert row["Times__c"] == fits
    field = next(f for f in sf.Lead.describe()["fields"] if f["name"] == "Times__c")
    assert (field["type"], field["length"], field["filterable"], field["sortable"]) == (
        "textarea",
        131072,
        False,
        False,
    )
