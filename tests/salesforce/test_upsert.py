"""upsert_by_key against the local Salesforce: match by email, defaults, converted and duplicate Leads."""

from typing import Any

import pytest

from salesforce.client import SalesforceClient
from salesforce.errors import TransientError
from salesforce.upsert import UpsertItem, UpsertOutcome, upsert_by_key
from tests.salesforce.conftest import calls, lead_records, reset_calls

DEFAULTS = {"LastName": "n/a", "Company": "n/a"}
SEEDED = {"LastName": "Seeded", "Company": "Seed Co"}


def item(email: str, **fields: Any) -> UpsertItem:
    return UpsertItem(key=email, fields={"Email": email, **fields}, create_defaults=dict(DEFAULTS))


def seed_leads(org: Any, *leads: dict) -> list[str]:
    """Puts Leads in the org as a data load would, without API calls; read-only fields such as
    IsConverted and LastModifiedDate may be set. Returns their ids, in order."""
    return org.admin("POST", "/_emulator/records/Lead", json=[{**SEEDED, **f} for f in leads])["ids"]


def seed_lead(org: Any, **fields: Any) -> str:
    [record_id] = seed_leads(org, fields)
    return record_id


def by_email(org: Any) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for record in lead_records(org):
        out.setdefault((record.get("Email") or "").lower(), []).append(record)
    return out


def upsert(client: SalesforceClient, items: list[UpsertItem]) -> list[UpsertOutcome]:
    return upsert_by_key(client, "Lead", "Email", items, skip_field="IsConverted")


def test_new_and_existing_leads_matched_ignoring_case(client: SalesforceClient, org: Any) -> None:
    existing = seed_lead(org, Email="Peter.Gibbons@Example.com", Company="Initech", LastName="Gibbons")
    reset_calls(org)
    outcomes = upsert(
        client, [item("peter.gibbons@example.com", Title="VP of Derp"), item("new@example.com")]
    )
    assert outcomes[0] == UpsertOutcome("peter.gibbons@example.com", "updated", existing)
    assert outcomes[1].action == "created" and outcomes[1].record_id
    leads = by_email(org)
    [peter] = leads["peter.gibbons@example.com"]
    assert (peter["Title"], peter["Company"], peter["LastName"]) == ("VP of Derp", "Initech", "Gibbons")
    [new] = leads["new@example.com"]
    assert (new["Id"], new["LastName"], new["Company"]) == (outcomes[1].record_id, "n/a", "n/a")
    # One lookup, one update call, one create call, and the login.
    assert calls(org) == {"total": 4, "by_kind": {"collections": 2, "login": 1, "query": 1}}
    assert client.api_calls == 4


@pytest.mark.parametrize("email", ["o'brien@example.com", "'quoted'@example.com", "o''neil@example.com"])
def test_quotes_in_emails(client: SalesforceClient, org: Any, email: str) -> None:
    [created] = upsert(client, [item(email, Title="first")])
    assert created.action == "created", created
    [updated] = upsert(client, [item(email.upper(), Title="second")])
    assert updated.action == "updated" and updated.record_id == created.record_id
    [record] = lead_records(org)
    assert (record["Email"], record["Title"]) == (email.upper(), "second")


def test_backslashes_in_emails_are_looked_up_and_refused_by_salesforce(client: SalesforceClient) -> None:
    # Salesforce's email format has no backslash; what matters is that the lookup query stays valid.
    [outcome] = upsert(client, [item("back\\slash@example.com")])
    assert (outcome.action, outcome.error_code) == ("failed", "INVALID_EMAIL_ADDRESS")


@pytest.mark.parametrize(
    "key",
    [
        "back\\slash",
        "trailing\\",
        'say "hi"',
        "it's",
        "\\'",
        "tab\tand\nnewline",
        "x') OR Title != null OR Title IN ('y",
        "josé 日本",
    ],
)
def test_quotes_and_backslashes_in_match_keys(client: SalesforceClient, org: Any, key: str) -> None:
    decoy = seed_lead(org, Title="decoy")
    fields = {"LastName": "L", "Company": "C"}
    [created] = upsert_by_key(client, "Lead", "Title", [UpsertItem(key, {"Phone": "1"}, fields)])
    assert created.action == "created", created
    [updated] = upsert_by_key(client, "Lead", "Title", [UpsertItem(key, {"Phone": "2"}, fields)])
    assert (updated.action, updated.record_id) == ("updated", created.record_id)
    records = {r["Id"]: r for r in lead_records(org)}
    assert records[created.record_id]["Title"] == key
    assert records[created.record_id]["Phone"] == "2"
    assert "Phone" not in records[decoy] or records[decoy]["Phone"] is None


def test_most_recently_modified_of_several_is_updated(client: SalesforceClient, org: Any) -> None:
    old, newest, middle = seed_leads(
        org,
        {"Email": "dup@example.com", "LastModifiedDate": "2026-01-01T00:00:00.000+0000"},
        {"Email": "DUP@example.com", "LastModifiedDate": "2026-03-01T00:00:00.000+0000"},
        {"Email": "dup@example.com", "LastModifiedDate": "2026-02-01T00:00:00.000+0000"},
    )
    [outcome] = upsert(client, [item("dup@example.com", Title="Boss")])
    assert outcome == UpsertOutcome("dup@example.com", "updated", newest, ambiguous=True)
    titles = {r["Id"]: r.get("Title") for r in lead_records(org)}
    assert [titles[i] for i in (old, newest, middle)] == [None, "Boss", None]


def test_converted_lead_is_skipped(client: SalesforceClient, org: Any) -> None:
    converted = seed_lead(org, Email="conv@example.com", IsConverted=True, Title="Before")
    [outcome] = upsert(client, [item("Conv@example.com", Title="After")])
    assert outcome == UpsertOutcome("Conv@example.com", "skipped_converted", converted)
    [record] = lead_records(org)
    assert record["Title"] == "Before"


def test_an_open_lead_wins_over_a_newer_converted_one(client: SalesforceClient, org: Any) -> None:
    open_lead, converted = seed_leads(
        org,
        {"Email": "mixed@example.com", "LastModifiedDate": "2026-01-01T00:00:00.000+0000"},
        {
            "Email": "mixed@example.com",
            "IsConverted": True,
            "LastModifiedDate": "2026-05-01T00:00:00.000+0000",
        },
    )
    [outcome] = upsert(client, [item("mixed@example.com", Title="Open")])
    assert outcome == UpsertOutcome("mixed@example.com", "updated", open_lead, ambiguous=True)
    titles = {r["Id"]: r.get("Title") for r in lead_records(org)}
    assert (titles[open_lead], titles[converted]) == ("Open", None)


def test_updates_never_send_create_defaults(client: SalesforceClient, org: Any) -> None:
    seed_lead(org, Email="kept@example.com", LastName="Lumbergh", Company="Initech")
    [outcome] = upsert(client, [item("kept@example.com", Phone="555")])
    assert outcome.action == "updated"
    [record] = lead_records(org)
    assert (record["LastName"], record["Company"], record["Phone"]) == ("Lumbergh", "Initech", "555")


def test_creates_take_defaults_only_where_fields_lack_them(client: SalesforceClient, org: Any) -> None:
    items = [
        UpsertItem("a@example.com", {"company": "Given Co"}, {"LastName": "n/a", "Company": "n/a"}),
        UpsertItem("b@example.com", {"LastName": "Smith"}, {"LastName": "n/a", "Company": "n/a"}),
    ]
    assert [o.action for o in upsert(client, items)] == ["created", "created"]
    leads = by_email(org)
    assert (leads["a@example.com"][0]["Company"], leads["a@example.com"][0]["LastName"]) == (
        "Given Co",
        "n/a",
    )
    assert (leads["b@example.com"][0]["Company"], leads["b@example.com"][0]["LastName"]) == ("n/a", "Smith")


def test_rejected_records_fail_with_salesforces_code(client: SalesforceClient, org: Any) -> None:
    seed_lead(org, Email="old@example.com")
    outcomes = upsert(
        client,
        [
            item("ok@example.com"),
            item("long@example.com", Title="x" * 200),
            item("old@example.com", NumberOfEmployees=10**12),
        ],
    )
    assert [o.action for o in outcomes] == ["created", "failed", "failed"]
    assert (outcomes[1].error_code, outcomes[1].retryable, outcomes[1].record_id) == (
        "STRING_TOO_LONG",
        False,
        None,
    )
    assert outcomes[1].message
    assert outcomes[2].error_code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert outcomes[2].record_id  # the record it tried to update
    assert set(by_email(org)) == {"ok@example.com", "old@example.com"}


def test_the_same_key_twice_is_merged(client: SalesforceClient, org: Any) -> None:
    outcomes = upsert(
        client,
        [item("Twice@example.com", Title="first", Phone="1"), item("twice@EXAMPLE.com", Title="second")],
    )
    assert [o.action for o in outcomes] == ["created", "created"]
    assert [o.key for o in outcomes] == ["Twice@example.com", "twice@EXAMPLE.com"]
    assert outcomes[0].record_id == outcomes[1].record_id
    [record] = lead_records(org)
    assert (record["Title"], record["Phone"]) == ("second", "1")


def test_a_missing_key_fails_without_a_call(client: SalesforceClient, org: Any) -> None:
    [outcome] = upsert(client, [UpsertItem("", {"LastName": "x"}, {})])
    assert (outcome.action, outcome.error_code, outcome.retryable) == ("failed", "MISSING_KEY", False)
    assert calls(org)["total"] == 0


def test_a_large_batch_costs_one_query_and_a_call_per_200(client: SalesforceClient, org: Any) -> None:
    seed_leads(org, *({"Email": f"person{i}@example.com"} for i in range(10)))
    reset_calls(org)
    outcomes = upsert(client, [item(f"person{i}@example.com", Title="T") for i in range(460)])
    assert [o.action for o in outcomes].count("updated") == 10
    assert [o.action for o in outcomes].count("created") == 450
    assert calls(org)["by_kind"] == {"collections": 4, "login": 1, "query": 1}
    assert len(lead_records(org)) == 460


def test_the_session_is_renewed_midway(client: SalesforceClient, org: Any) -> None:
    upsert(client, [item("a@example.com")])
    org.admin("POST", "/_emulator/sessions/expire")
    [outcome] = upsert(client, [item("a@example.com", Title="again")])
    assert outcome.action == "updated"
    assert client.session_renewals == 1


def test_daily_limit_exhausted(client: SalesforceClient, org: Any) -> None:
    client.login()
    org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    outcomes = upsert(client, [item("a@example.com"), item("b@example.com")])
    assert {(o.action, o.error_code, o.retryable) for o in outcomes} == {
        ("failed", "REQUEST_LIMIT_EXCEEDED", True)
    }
    assert lead_records(org) == []


def test_daily_limit_running_out_after_the_lookup(client: SalesforceClient, org: Any) -> None:
    seed_lead(org, Email="old@example.com")
    client.login()
    org.admin("POST", "/_emulator/limits", json={"remaining": 2})  # the lookup and the update
    outcomes = upsert(client, [item("old@example.com", Title="T"), item("new@example.com")])
    assert outcomes[0].action == "updated"
    assert (outcomes[1].action, outcomes[1].error_code, outcomes[1].retryable) == (
        "failed",
        "REQUEST_LIMIT_EXCEEDED",
        True,
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_transient_faults_never_lose_or_duplicate(
    client: SalesforceClient, org: Any, sleeps: list, seed: int
) -> None:
    seed_leads(org, *({"Email": f"p{i}@example.com"} for i in range(0, 300, 3)))
    org.admin(
        "POST",
        "/_emulator/faults",
        json={
            "error_rate": 0.3,
            "error_kinds": ["SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "UNABLE_TO_LOCK_ROW"],
            "seed": seed,
        },
    )
    items = [item(f"p{i}@example.com", Title="T") for i in range(300)]
    for start in range(0, 300, 100):
        outcomes = upsert(client, items[start : start + 100])
        assert {o.action for o in outcomes} <= {"created", "updated"}, [
            o for o in outcomes if o.action == "failed"
        ]
    leads = by_email(org)
    assert len(leads) == 300
    assert all(len(records) == 1 and records[0]["Title"] == "T" for records in leads.values())
    assert sleeps


def test_per_record_lock_errors_are_retried(client: SalesforceClient, org: Any, sleeps: list) -> None:
    client.login()
    org.admin(
        "POST",
        "/_emulator/faults",
        json={"error_rate": 0.5, "error_kinds": ["UNABLE_TO_LOCK_ROW"], "seed": 5},
    )
    reset_calls(org)
    for batch in range(5):
        outcomes = upsert(client, [item(f"lock{batch}.{i}@example.com") for i in range(10)])
        assert {o.action for o in outcomes} == {"created"}
    assert len(lead_records(org)) == 50
    # Each batch is one lookup and one create call, plus a call for every time its records were locked.
    assert calls(org)["by_kind"]["collections"] > 5
    assert sleeps


class _LostResponse:
    """Wraps create_many: the first call reaches Salesforce, then its answer is lost."""

    def __init__(self, client: SalesforceClient):
        self.real = client.create_many
        self.calls = 0

    def __call__(self, sobject: str, records: list[dict]) -> list:
        self.calls += 1
        results = self.real(sobject, records)
        if self.calls == 1:
            raise TransientError("ReadTimeout", "request to Salesforce failed", 1, maybe_applied=True)
        return results


def test_a_create_whose_answer_was_lost_is_looked_up_not_resent(
    client: SalesforceClient, org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_lead(org, Email="old@example.com")
    lost = _LostResponse(client)
    monkeypatch.setattr(client, "create_many", lost)
    reset_calls(org)
    outcomes = upsert(client, [item("old@example.com"), item("a@example.com"), item("b@example.com")])
    assert [o.action for o in outcomes] == ["updated", "created", "created"]
    assert lost.calls == 1
    leads = by_email(org)
    assert [len(leads[k]) for k in ("old@example.com", "a@example.com", "b@example.com")] == [1, 1, 1]
    assert outcomes[1].record_id == leads["a@example.com"][0]["Id"]
    # lookup, update, create (answer lost), lookup again, update of what the lost call created
    assert calls(org)["by_kind"] == {"collections": 3, "login": 1, "query": 2}


def test_limit_running_out_between_create_calls_keeps_what_was_written(
    client: SalesforceClient, org: Any
) -> None:
    client.login()
    org.admin("POST", "/_emulator/limits", json={"remaining": 2})  # the lookup and one create call
    outcomes = upsert(client, [item(f"p{i}@example.com") for i in range(450)])
    assert [o.action for o in outcomes] == ["created"] * 200 + ["failed"] * 250
    assert {(o.error_code, o.retryable) for o in outcomes[200:]} == {("REQUEST_LIMIT_EXCEEDED", True)}
    assert len(lead_records(org)) == 200


def test_retries_running_out_fail_the_batch_retryably(
    client: SalesforceClient, org: Any, sleeps: list
) -> None:
    client.login()
    org.admin("POST", "/_emulator/faults", json={"error_rate": 1.0, "error_kinds": ["SERVER_UNAVAILABLE"]})
    outcomes = upsert(client, [item("a@example.com"), item("b@example.com")])
    assert {(o.action, o.error_code, o.retryable) for o in outcomes} == {
        ("failed", "SERVER_UNAVAILABLE", True)
    }
    assert len(sleeps) == 5


def test_create_calls_failing_after_the_lookup_are_looked_up_again(
    client: SalesforceClient, org: Any, sleeps: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.login()
    real_query_all = client.query_all
    lookups = []

    def lookup_then_break_the_create(soql: str) -> list[dict]:
        lookups.append(soql)
        if len(lookups) == 1:
            rows = real_query_all(soql)
            # The create call that follows meets an unavailable Salesforce.
            org.admin(
                "POST", "/_emulator/faults", json={"error_rate": 1.0, "error_kinds": ["SERVER_UNAVAILABLE"]}
            )
            return rows
        org.admin("POST", "/_emulator/faults", json={"error_rate": 0.0})
        return real_query_all(soql)

    monkeypatch.setattr(client, "query_all", lookup_then_break_the_create)
    [outcome] = upsert(client, [item("a@example.com")])
    assert outcome.action == "created"
    assert len(lookups) == 2  # the create call failed at once (not resent), then the key was looked up again
    assert len(sleeps) == 1
    assert len(lead_records(org)) == 1
