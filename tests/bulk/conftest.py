"""One local Salesforce with docs/org-setup.md's fields for the Bulk tests, and the records they write."""

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulator.process import start_emulator, trusting_session
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from schemas.events import EventRef
from schemas.records import MergedOp

KEY = "Beamforce_Key__c"
TIMES = "Beamforce_Field_Times__c"
ORG_CONFIG = f"""\
custom_fields:
  Lead:
    - {{name: {KEY}, type: external_id, length: 255, unique: true}}
    - {{name: {TIMES}, type: textarea, length: 131072}}
    - {{name: note__c, type: textarea, length: 1000}}
    - {{name: score__c, type: double, precision: 12, scale: 4}}
    - {{name: seen__c, type: datetime}}
    - {{name: vip__c, type: boolean}}
  Account:
    - {{name: {KEY}, type: external_id, length: 255, unique: true}}
    - {{name: {TIMES}, type: textarea, length: 131072}}
    - {{name: note__c, type: string, length: 255}}
"""
# Fields the org sets itself (ids and dates differ between two runs that write the same values).
SYSTEM_FIELDS = frozenset(
    {
        "Id",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "OwnerId",
        "MasterRecordId",
        "LastViewedDate",
        "LastReferencedDate",
    }
)
DEFAULTS = {"LastName": "n/a", "Company": "n/a"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("bulk-emulator")
    (root / "org.yaml").write_text(ORG_CONFIG)
    with start_emulator(root / "data", config_path=root / "org.yaml") as emu:
        yield emu


@pytest.fixture
def org(emulator: Any) -> Any:
    """The emulator emptied: no records or jobs, no faults, a full allocation, call counts at zero."""
    reset(emulator)
    return emulator


def reset(emu: Any) -> None:
    emu.admin("POST", "/_emulator/reset")
    emu.admin("POST", "/_emulator/faults", json={})
    emu.admin("POST", "/_emulator/limits", json={"remaining": 100_000})
    emu.admin("POST", "/_emulator/calls/reset")


@pytest.fixture(scope="module")
def credentials(emulator: Any) -> Credentials:
    info = emulator.info
    return Credentials(info["username"], info["password"], info["security_token"])


@pytest.fixture(scope="module")
def settings(emulator: Any) -> ConnectionSettings:
    info = emulator.info
    return ConnectionSettings(
        login_url=info["login_url"], ca_bundle=info["ca_bundle"], backoff_base_seconds=0.01
    )


class WaitForJobs:
    """A picklable `sleep` for Bulk polling: instead of waiting, asks the emulator to finish its jobs, so
    that every job is done at its first poll (call counts are exact) and no test sleeps."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self._session: requests.Session | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"info": self.info}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["info"])

    def __call__(self, seconds: float) -> None:
        if self._session is None:
            self._session = trusting_session(self.info)
        answer = self._session.post(f"{self.info['admin_url']}/bulk/wait", timeout=60).json()
        assert answer == {"idle": True}, answer


def calls(emu: Any) -> dict[str, int]:
    """API calls since the last reset, by kind, with the total."""
    counts = emu.admin("GET", "/_emulator/calls")
    return {**counts["by_kind"], "total": counts["total"]}


def records(emu: Any, sobject: str, key: str) -> dict[str, dict]:
    """The org's records of `sobject` by `key` (lower-cased), without what the org sets itself."""
    rows = emu.admin("GET", f"/_emulator/records/{sobject}")["records"]
    out: dict[str, dict] = {}
    for row in rows:
        kept = {k: v for k, v in row.items() if k not in SYSTEM_FIELDS and v is not None}
        out.setdefault(str(row.get(key) or "").lower(), []).append(kept)  # type: ignore[attr-defined]
    return out


def org_state(emu: Any) -> tuple[dict, dict, dict]:
    """Leads, Accounts and Contacts; a converted Lead's Contact and Account ids, which the seeding makes
    anew in each run, as the Contact's email and the Account's name."""
    names = {
        row["Id"]: row.get("Email") or row.get("Name")
        for sobject in ("Contact", "Account")
        for row in emu.admin("GET", f"/_emulator/records/{sobject}")["records"]
    }
    leads = records(emu, "Lead", "Email")
    for rows in leads.values():
        for row in rows:
            for name in ("ConvertedContactId", "ConvertedAccountId"):
                if row.get(name):
                    row[name] = names[row[name]]
    contacts = records(emu, "Contact", "Email")
    for rows in contacts.values():
        for row in rows:
            row["AccountId"] = names.get(row.get("AccountId"))
    return leads, records(emu, "Account", "Name"), contacts


def refs(*message_ids: str) -> tuple[EventRef, ...]:
    return tuple(EventRef(f"in/{m}.jsonl", 1, json.dumps({"messageId": m})) for m in message_ids)


def lead(email: str, fields: dict, times: dict[str, str] | None = None, *message_ids: str) -> MergedOp:
    fields = {"Email": email, **fields}
    when = times or {}
    return MergedOp(
        "Lead",
        "Email",
        email,
        fields,
        dict(DEFAULTS),
        {k: when.get(k, "") for k in fields},
        refs(*message_ids),
    )


def account(name: str, fields: dict, *message_ids: str) -> MergedOp:
    fields = {"Name": name, **fields}
    return MergedOp(
        "Account",
        "Name",
        name,
        fields,
        {},
        {k: "2024-03-01T00:00:00.000Z" for k in fields},
        refs(*message_ids),
    )


NOTES = [
    "plain",
    "a, comma",
    'a "quote"',
    "two\nlines",
    "crlf\r\nline",
    "ünïcödé ✓ 😀",
    " padded ",
    "#hash",
    "",
]


def backfill(people: int, seed: int = 7) -> tuple[list[MergedOp], list[dict], list[dict]]:
    """A backfill mixing creates and updates: (merged ops, Leads to seed first, Accounts to seed first).

    Every fifth person exists already (created by someone else, without the key field); of those, some
    hold a Title newer than the events' (a stale field), one is converted (skipped) and one has a twin
    (two Leads with one email: the newest is updated, ambiguously). Values cover CSV's hard cases: commas,
    quotes, line breaks, non-ASCII, null (clears a field), "" (REST stores null), numbers, datetimes,
    booleans. Three emails the org refuses (INVALID_EMAIL_ADDRESS) are dead letters on create.
    """
    rng = random.Random(seed)
    ops: list[MergedOp] = []
    seeds: list[dict] = []
    for i in range(people):
        email = f"Person{i}@Example.com" if i % 7 == 0 else f"person{i}@example.com"
        if i in (11, 12, 13):
            email = f"not an email {i}"
        day = 1 + i % 27
        times = {
            "Email": f"2024-02-{day:02d}T08:00:00.000Z",
            "FirstName": f"2024-02-{day:02d}T08:00:00.000Z",
            "Title": f"2024-02-{day:02d}T09:00:00.000Z",
            "note__c": f"2024-02-{day:02d}T10:00:00.000Z",
            "score__c": f"2024-02-{day:02d}T10:00:00.000Z",
            "seen__c": f"2024-02-{day:02d}T10:00:00.000Z",
            "vip__c": f"2024-02-{day:02d}T10:00:00.000Z",
            "NumberOfEmployees": f"2024-02-{day:02d}T10:00:00.000Z",
            "Company": f"2024-02-{day:02d}T11:00:00.000Z",
        }
        fields: dict[str, Any] = {
            "FirstName": f"First{i}",
            "Title": f"Title {i}" if i % 9 else "",
            "note__c": NOTES[i % len(NOTES)],
            "score__c": [1.5, 0.0001, 12345678.25, 3, -2.75][i % 5],
            "seen__c": f"2024-01-{day:02d}T12:34:56Z",
            "vip__c": i % 2 == 0,
            "NumberOfEmployees": str(10 + i),
        }
        if i % 4 == 0:
            fields["Company"] = None if i % 8 == 0 else f"Company {i % 13}"
        if i % 10 == 3:
            fields["LastName"] = f"Last{i}"
        ops.append(lead(email, fields, times, f"m{i}", f"n{i}"))
        if i % 5 == 0:
            existing = {
                "Email": email.lower() if i % 3 else email.upper(),
                "LastName": f"Existing{i}",
                "Company": f"Existing Co {i}",
                "Title": f"Old title {i}",
                "LastModifiedDate": f"2023-06-{1 + i % 28:02d}T00:00:00.000+0000",
            }
            if i % 15 == 5:
                # Set by a newer event than the backfill's: the Title stays.
                existing[TIMES] = json.dumps({"Title": "2025-01-01T00:00:00.000Z"})
                existing[KEY] = email.strip().lower()
            if i == 25:
                existing["IsConverted"] = True
            seeds.append(existing)
            if i == 35:
                twin = {k: v for k, v in existing.items() if k not in (KEY, TIMES)}
                seeds.append({**twin, "LastName": "Twin", "LastModifiedDate": "2023-01-01T00:00:00.000+0000"})
    rng.shuffle(ops)
    accounts = [
        account(f"Acme {n}", {"note__c": f"note {n}", "NumberOfEmployees": n}, f"a{n}") for n in range(20)
    ]
    account_seeds = [{"Name": f"Acme {n}", "note__c": "old"} for n in range(0, 20, 4)]
    return ops + accounts, seeds, account_seeds


def seed(emu: Any, leads: list[dict], accounts: list[dict]) -> None:
    if leads:
        emu.admin("POST", "/_emulator/records/Lead", json=leads)
    if accounts:
        emu.admin("POST", "/_emulator/records/Account", json=accounts)
