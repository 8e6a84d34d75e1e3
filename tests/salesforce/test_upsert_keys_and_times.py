"""upsert_by_key with key_field and times_field: concurrent jobs create a key once, replays never revert."""

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import TransientError
from salesforce.upsert import UpsertItem, UpsertOutcome, _times_json, upsert_by_key
from tests.salesforce.conftest import FakeClock, Sleeps, calls, lead_records, reset_calls

KEY = "Beamforce_Key__c"
TIMES = "Beamforce_Field_Times__c"
# The org set-up of docs/org-setup.md, plus one more unique field to collide on.
ORG_CONFIG = f"""
custom_fields:
  Lead:
    - {{name: {KEY}, type: external_id, length: 255, unique: true}}
    - {{name: {TIMES}, type: textarea, length: 131072}}
    - {{name: Badge__c, type: string, length: 40, unique: true}}
  Account:
    - {{name: {KEY}, type: external_id, length: 255, unique: true}}
    - {{name: {TIMES}, type: textarea, length: 131072}}
"""
DEFAULTS = {"LastName": "n/a", "Company": "n/a"}
T1, T2, T3 = "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"


@pytest.fixture(scope="module")
def keyed_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from emulator.process import start_emulator

    data: Path = tmp_path_factory.mktemp("sf-keyed-emulator")
    config = data / "org.yaml"
    config.write_text(ORG_CONFIG)
    with start_emulator(data / "data", config_path=config) as emu:
        yield emu


@pytest.fixture
def org(keyed_emulator: Any) -> Any:
    keyed_emulator.admin("POST", "/_emulator/reset")
    keyed_emulator.admin(
        "POST", "/_emulator/faults", json={"error_rate": 0.0, "latency_ms": 0, "jitter_ms": 0}
    )
    keyed_emulator.admin("POST", "/_emulator/limits", json={"remaining": 100_000})
    keyed_emulator.admin("POST", "/_emulator/calls/reset")
    return keyed_emulator


def new_client(org: Any) -> SalesforceClient:
    info = org.info
    credentials = Credentials(info["username"], info["password"], info["security_token"])
    settings = ConnectionSettings(
        login_url=info["login_url"], ca_bundle=info["ca_bundle"], backoff_base_seconds=0.01
    )
    return SalesforceClient(credentials, settings, clock=FakeClock(), sleep=Sleeps())


@pytest.fixture
def client(org: Any) -> SalesforceClient:
    return new_client(org)


def item(email: str, when: str = "", **fields: Any) -> UpsertItem:
    fields = {"Email": email, **fields}
    return UpsertItem(email, fields, dict(DEFAULTS), {name: when for name in fields})


def upsert(client: SalesforceClient, items: list[UpsertItem], **options: Any) -> list[UpsertOutcome]:
    options = {"key_field": KEY, "times_field": TIMES, **options}
    return upsert_by_key(client, "Lead", "Email", items, skip_field="IsConverted", **options)


def seed_lead(org: Any, **fields: Any) -> str:
    [record_id] = org.admin("POST", "/_emulator/records/Lead", json=[{**DEFAULTS, **fields}])["ids"]
    return record_id


def leads(org: Any) -> dict[str, dict]:
    return {r["Id"]: r for r in lead_records(org)}


def times_of(record: dict) -> dict:
    return json.loads(record[TIMES])


def race(org: Any, jobs: list[list[UpsertItem]], **options: Any) -> list[list[UpsertOutcome]]:
    """Runs the jobs at once, one client each, against an org that answers every call in 300 ms:
    both lookups are answered before either create call arrives."""
    clients = [new_client(org) for _ in jobs]
    for c in clients:
        c.login()
    org.admin("POST", "/_emulator/faults", json={"latency_ms": 300})
    reset_calls(org)
    start = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = upsert(clients[i], jobs[i], **options)
        except BaseException as exc:  # re-raised below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


# -- concurrent jobs ------------------------------------------------------------------------------


def test_two_jobs_at_once_create_each_key_once_with_both_jobs_values(org: Any) -> None:
    emails = [f"p{i}@example.com" for i in range(100)]
    # Job A knows the real last names; job B only a phone number, and would create with "n/a".
    job_a = [item(e, T1, LastName=f"Real{i}", Title="A") for i, e in enumerate(emails)]
    job_b = [
        UpsertItem(e, {"Email": e, "Phone": "555"}, DEFAULTS, {"Email": T1, "Phone": T2}) for e in emails
    ]
    a, b = race(org, [job_a, job_b])

    actions = [o.action for o in a + b]
    assert actions.count("created") == 100 and actions.count("updated") == 100, actions
    assert not any(o.ambiguous or o.stale_fields for o in a + b)
    by_email = {r["Email"]: r for r in lead_records(org)}
    assert len(lead_records(org)) == 100 and set(by_email) == set(emails)
    for i, email in enumerate(emails):
        record = by_email[email]
        assert (record["LastName"], record["Title"], record["Phone"]) == (f"Real{i}", "A", "555")
        assert record[KEY] == email
        assert times_of(record) == {"Email": T1, "LastName": T1, "Phone": T2, "Title": T1}
    # Two lookups; then the job whose creates were refused looked those keys up again (by Email and
    # by key) and updated them.
    assert calls(org)["by_kind"]["query"] >= 4


def test_without_key_field_two_jobs_at_once_duplicate(org: Any) -> None:
    # What key_field prevents; it also shows that race() does make the two jobs overlap.
    emails = [f"p{i}@example.com" for i in range(100)]
    race(org, [[item(e) for e in emails], [item(e) for e in emails]], key_field=None)
    assert len(lead_records(org)) == 200


def test_create_defaults_never_overwrite_what_the_other_job_created(
    client: SalesforceClient, org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_job = new_client(org)
    real_create = client.create_many

    def other_job_creates_first(sobject: str, records: list[dict]) -> list:
        # Between this job's lookup and its create call, the other job creates the Lead.
        [created] = upsert(other_job, [item("x@example.com", T1, LastName="Lumbergh", Company="Initech")])
        assert created.action == "created"
        return real_create(sobject, records)

    monkeypatch.setattr(client, "create_many", other_job_creates_first)
    [outcome] = upsert(client, [item("X@example.com", T2, Title="Boss")])
    [record] = lead_records(org)
    assert outcome == UpsertOutcome("X@example.com", "updated", record["Id"])
    assert (record["LastName"], record["Company"], record["Title"]) == ("Lumbergh", "Initech", "Boss")
    assert (record["Email"], record[KEY]) == ("X@example.com", "x@example.com")


def test_a_key_held_by_a_record_with_another_email_is_found_by_key(
    client: SalesforceClient, org: Any
) -> None:
    # The Lead that holds the key had its Email changed by hand: the lookup by Email misses it.
    held = seed_lead(org, Email="changed@example.com", **{KEY: "kept@example.com"})
    [outcome] = upsert(client, [item("kept@example.com", T1, Title="T")])
    assert outcome == UpsertOutcome("kept@example.com", "updated", held)
    [record] = lead_records(org)
    assert (record["Email"], record["Title"]) == ("kept@example.com", "T")


def test_a_duplicate_of_another_unique_field_fails_without_going_round(
    client: SalesforceClient, org: Any
) -> None:
    seed_lead(org, Email="first@example.com", Badge__c="B-1")
    reset_calls(org)
    [outcome] = upsert(client, [item("second@example.com", T1, Badge__c="b-1")])
    assert (outcome.action, outcome.error_code, outcome.retryable) == ("failed", "DUPLICATE_VALUE", False)
    assert "Badge__c" in (outcome.message or "")
    # the times field's length, lookup, create (refused), lookup by Email and by key (nothing):
    # no second create
    assert calls(org)["by_kind"] == {"collections": 1, "describe": 1, "login": 1, "query": 3}
    assert len(lead_records(org)) == 1


def test_a_create_whose_answer_was_lost_is_still_created(
    client: SalesforceClient, org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = client.create_many
    attempts = []

    def lose_the_first_answer(sobject: str, records: list[dict]) -> list:
        attempts.append(records)
        results = real_create(sobject, records)
        if len(attempts) == 1:
            raise TransientError("ReadTimeout", "request to Salesforce failed", 1, maybe_applied=True)
        return results

    monkeypatch.setattr(client, "create_many", lose_the_first_answer)
    [outcome] = upsert(client, [item("a@example.com", T1, Title="T")])
    [record] = lead_records(org)
    assert outcome == UpsertOutcome("a@example.com", "created", record["Id"])
    assert len(attempts) == 1


# -- key_field on records created by someone else ------------------------------------------------


def test_an_update_claims_the_key_of_a_record_created_elsewhere(client: SalesforceClient, org: Any) -> None:
    seeded = seed_lead(org, Email="Old@Example.com", LastName="Bolton")
    [outcome] = upsert(client, [item("OLD@example.com", T1, Title="T")])
    assert outcome == UpsertOutcome("OLD@example.com", "updated", seeded)
    assert leads(org)[seeded][KEY] == "old@example.com"
    # Now a concurrent create of that key would collide instead of duplicating.
    [again] = upsert(client, [item("old@example.com", T2, Title="T2")])
    assert (again.action, again.record_id) == ("updated", seeded)


def test_a_key_another_record_holds_is_not_claimed_and_the_update_is_ambiguous(
    client: SalesforceClient, org: Any
) -> None:
    found = seed_lead(org, Email="both@example.com")
    holder = seed_lead(org, Email="elsewhere@example.com", **{KEY: "both@example.com"})
    [outcome] = upsert(client, [item("both@example.com", T1, Title="T")], times_field=None)
    assert outcome == UpsertOutcome("both@example.com", "updated", found, ambiguous=True)
    records = leads(org)
    assert (records[found]["Title"], records[found].get(KEY)) == ("T", None)
    assert records[holder].get("Title") is None


def test_of_several_matches_the_one_holding_the_key_is_updated(client: SalesforceClient, org: Any) -> None:
    ours = seed_lead(
        org,
        Email="dup@example.com",
        LastModifiedDate="2026-01-01T00:00:00.000+0000",
        **{KEY: "dup@example.com"},
    )
    newer = seed_lead(org, Email="dup@example.com", LastModifiedDate="2026-05-01T00:00:00.000+0000")
    [outcome] = upsert(client, [item("dup@example.com", T1, Title="T")])
    assert outcome == UpsertOutcome("dup@example.com", "updated", ours, ambiguous=True)
    assert leads(org)[newer].get("Title") is None


# -- times_field ----------------------------------------------------------------------------------


def test_a_stale_field_is_not_written_and_the_newer_ones_are(client: SalesforceClient, org: Any) -> None:
    record_id = seed_lead(
        org,
        Email="s@example.com",
        Title="New title",
        Phone="old phone",
        **{TIMES: json.dumps({"Title": T3, "phone": T1})},
    )
    replay = UpsertItem(
        "s@example.com",
        {"Email": "s@example.com", "Title": "Old title", "Phone": "new phone"},
        dict(DEFAULTS),
        {"Email": T2, "Title": T2, "Phone": T2},
    )
    [outcome] = upsert(client, [replay])
    assert outcome == UpsertOutcome("s@example.com", "updated", record_id, stale_fields=("Title",))
    record = leads(org)[record_id]
    assert (record["Title"], record["Phone"]) == ("New title", "new phone")
    assert times_of(record) == {"Email": T2, "Phone": T2, "Title": T3}


def test_when_every_field_is_stale_nothing_is_sent(client: SalesforceClient, org: Any) -> None:
    record_id = seed_lead(
        org, Email="s@example.com", Title="New", **{TIMES: json.dumps({"Email": T3, "Title": T3})}
    )
    client.login()
    reset_calls(org)
    [outcome] = upsert(client, [item("s@example.com", T1, Title="Old")])
    assert outcome == UpsertOutcome("s@example.com", "updated", record_id, stale_fields=("Email", "Title"))
    assert calls(org)["by_kind"] == {"describe": 1, "query": 1}
    assert leads(org)[record_id]["Title"] == "New"


def test_an_unknown_time_is_older_than_any(client: SalesforceClient, org: Any) -> None:
    record_id = seed_lead(org, Email="u@example.com", Title="Timed", **{TIMES: json.dumps({"Title": T1})})
    untimed = UpsertItem("u@example.com", {"Title": "Untimed", "Phone": "1"}, {}, {"Title": ""})
    [outcome] = upsert(client, [untimed])
    assert outcome.stale_fields == ("Title",)
    record = leads(org)[record_id]
    assert (record["Title"], record["Phone"]) == ("Timed", "1")
    assert times_of(record) == {"Title": T1}


def test_replaying_the_same_event_is_idempotent(client: SalesforceClient, org: Any) -> None:
    event = item("same@example.com", T2, Title="T", Phone="1")
    [created] = upsert(client, [event])
    assert created.action == "created"
    before = leads(org)[created.record_id]
    assert times_of(before) == {"Email": T2, "Phone": T2, "Title": T2}
    [replayed] = upsert(client, [event])
    assert replayed == UpsertOutcome("same@example.com", "updated", created.record_id)
    after = leads(org)[created.record_id]
    assert {k: v for k, v in after.items() if "Date" not in k and k != "SystemModstamp"} == {
        k: v for k, v in before.items() if "Date" not in k and k != "SystemModstamp"
    }


@pytest.mark.parametrize("stored", ["not json", "[1, 2]", '"text"', '{"Title": 5}', '{"Title": "yesterday"}'])
def test_an_unreadable_times_value_is_read_as_no_times(
    client: SalesforceClient, org: Any, caplog: pytest.LogCaptureFixture, stored: str
) -> None:
    ids = [seed_lead(org, Email=f"bad{i}@example.com", Title="Before", **{TIMES: stored}) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="salesforce.upsert"):
        outcomes = upsert(client, [item(f"bad{i}@example.com", T1, Title="After") for i in range(3)])
    assert [o.action for o in outcomes] == ["updated"] * 3
    records = leads(org)
    for record_id in ids:
        assert records[record_id]["Title"] == "After"
        assert times_of(records[record_id]) == {"Email": T1, "Title": T1}
    warnings = [r for r in caplog.records if r.name == "salesforce.upsert" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and TIMES in warnings[0].getMessage()
    assert stored not in warnings[0].getMessage()


def test_the_same_key_twice_keeps_the_newer_value_of_each_field(client: SalesforceClient, org: Any) -> None:
    newer_title = UpsertItem(
        "t@example.com", {"Title": "new", "Phone": "old"}, DEFAULTS, {"Title": T2, "Phone": T1}
    )
    older_title = UpsertItem(
        "t@example.com", {"Title": "old", "Phone": "new"}, DEFAULTS, {"Title": T1, "Phone": T2}
    )
    outcomes = upsert(client, [newer_title, older_title])
    assert [o.action for o in outcomes] == ["created", "created"]
    [record] = lead_records(org)
    assert (record["Title"], record["Phone"]) == ("new", "new")
    assert times_of(record) == {"Phone": T2, "Title": T2}


def test_accounts_take_the_same_fields(client: SalesforceClient, org: Any) -> None:
    account = UpsertItem(
        "G-1", {"AccountNumber": "G-1", "Name": "Initech"}, {}, {"AccountNumber": T1, "Name": T1}
    )
    [created] = upsert_by_key(client, "Account", "AccountNumber", [account], key_field=KEY, times_field=TIMES)
    assert created.action == "created"
    [record] = org.admin("GET", "/_emulator/records/Account")["records"]
    assert (record[KEY], times_of(record)) == ("g-1", {"AccountNumber": T1, "Name": T1})


# -- checks and helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, field_times",
    [
        ({"key_field": "Bad Name"}, {}),
        ({"key_field": "Email"}, {}),
        ({"key_field": KEY, "times_field": KEY}, {}),
        ({"times_field": TIMES}, {"Title": "2026-01-01T00:00:00Z"}),
        ({"times_field": TIMES}, {"Title": "2026-01-01 00:00:00.000"}),
    ],
)
def test_bad_options_and_times_are_refused(options: dict, field_times: dict) -> None:
    items = [UpsertItem("a@example.com", {"Title": "T"}, {}, field_times)]
    with pytest.raises(ValueError):
        upsert_by_key(None, "Lead", "Email", items, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "times, limit, kept",
    [
        ({"A": T1, "B": T2}, 1000, {"A": T1, "B": T2}),
        (
            {"A": T1, "B": T2, "C": T3},
            len(json.dumps({"B": T2, "C": T3}, separators=(",", ":"))),
            {"B": T2, "C": T3},
        ),
        ({"A": T3, "B": T2, "C": T1}, 40, {"A": T3}),
        ({"A": T1}, 5, {}),
    ],
)
def test_times_json_drops_the_oldest_entries_to_fit(times: dict, limit: int, kept: dict) -> None:
    text = _times_json(times, limit)
    assert len(text) <= limit or text == "{}"
    assert json.loads(text) == kept
    assert " " not in text
