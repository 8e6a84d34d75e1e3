"""SalesforceClient's delete_many and upsert_many, and saves that duplicate rules refuse or let through."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator.process import EmulatorProcess
from salesforce.client import SalesforceClient, SaveResult
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import ConfigurationError, is_retryable
from tests.e2e.conftest import emulator_with
from tests.salesforce.conftest import calls, lead_records

RULES = """
duplicate_rules:
  - {name: Lead_Email_Rule, object: Lead, fields: [Email], action: alert}
  - {name: Account_Name_Rule, object: Account, fields: [Name], action: block,
     error_message: "An account of this name exists."}
"""


def lead(i: int, **extra: Any) -> dict:
    return {"LastName": f"Person {i}", "Company": "Acme", "Email": f"person{i}@example.com", **extra}


def emails(emu: Any) -> dict[str, str]:
    return {r["Email"]: r["Id"] for r in lead_records(emu)}


# -------------------------------------------------------------------------------------- delete_many


def test_delete_many_deletes_and_a_second_delete_fails_alone(client: SalesforceClient, org: Any) -> None:
    a, b, c = (r.id for r in client.create_many("Lead", [lead(1), lead(2), lead(3)]))
    assert client.delete_many("Lead", [a, b]) == [SaveResult(a, True), SaveResult(b, True)]
    assert client.delete_many("Lead", [b, c]) == [
        SaveResult(
            b, False, ({"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []},)
        ),
        SaveResult(c, True),
    ]
    assert lead_records(org) == []
    assert calls(org)["by_kind"] == {"collections": 3, "login": 1}


def test_delete_many_goes_200_ids_a_call(client: SalesforceClient, org: Any) -> None:
    created = client.create_many("Lead", [lead(i) for i in range(201)])
    ids = [r.id for r in created]
    results = client.delete_many("Lead", ids)
    assert ([r.id for r in results], {r.success for r in results}) == (ids, {True})
    assert calls(org)["by_kind"]["collections"] == 4  # two to create, two to delete


@pytest.mark.parametrize(
    ("sobject", "ids", "message"),
    [
        (
            "Lead",
            ["00Q000000000001AAA,00Q000000000002AAA"],
            "not a record id: '00Q000000000001AAA,00Q000000000002AAA'",
        ),
        ("Lead", ["00Q0001"], "not a record id: '00Q0001'"),
        ("Lead", [None], "not a record id: None"),
        ("Lead; DROP", ["00Q000000000001AAA"], "not an sObject name: 'Lead; DROP'"),
    ],
)
def test_delete_many_refuses_what_is_no_id(
    client: SalesforceClient, sobject: str, ids: list, message: str
) -> None:
    with pytest.raises(ValueError) as exc:
        client.delete_many(sobject, ids)
    assert str(exc.value) == message
    assert client.api_calls == 0


# -------------------------------------------------------------------------------------- upsert_many


def test_upsert_many_says_what_it_created(client: SalesforceClient, org: Any) -> None:
    first = client.upsert_many("Lead", "Email", [lead(1), lead(2)])
    assert [(r.success, r.created, r.errors) for r in first] == [(True, True, ()), (True, True, ())]
    # The same record a second time updates it: nothing is created twice.
    second = client.upsert_many("Lead", "Email", [lead(1, Title="CTO"), lead(3)])
    assert [(r.id, r.success, r.created) for r in second] == [
        (first[0].id, True, False),
        (second[1].id, True, True),
    ]
    rows = client.query_all("SELECT Id, Email, Title FROM Lead ORDER BY Email")
    assert rows == [
        {"Id": first[0].id, "Email": "person1@example.com", "Title": "CTO"},
        {"Id": first[1].id, "Email": "person2@example.com", "Title": None},
        {"Id": second[1].id, "Email": "person3@example.com", "Title": None},
    ]
    assert calls(org)["by_kind"]["collections"] == 2


def test_upsert_many_goes_200_records_a_call(client: SalesforceClient, org: Any) -> None:
    results = client.upsert_many("Lead", "Email", [lead(i) for i in range(201)])
    assert (len(results), {r.created for r in results}) == (201, {True})
    assert calls(org)["by_kind"]["collections"] == 2


def test_upsert_many_reports_a_refused_record(client: SalesforceClient) -> None:
    [result] = client.upsert_many("Lead", "Email", [{"Email": "x@example.com", "Company": "Acme"}])
    assert result == SaveResult(
        None,
        False,
        (
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [LastName]",
                "fields": ["LastName"],
            },
        ),
        created=False,
    )


@pytest.mark.parametrize(
    ("sobject", "field", "records", "message"),
    [
        ("Lead", "Email", [{"LastName": "A"}], "every record to upsert needs its Email"),
        ("Lead", "Email", [{"LastName": "A", "email": ""}], "every record to upsert needs its Email"),
        ("Lead", "Email/x", [lead(1)], "not a field name: 'Email/x'"),
        ("Lead/x", "Email", [lead(1)], "not an sObject name: 'Lead/x'"),
    ],
)
def test_upsert_many_checks_its_arguments(
    client: SalesforceClient, sobject: str, field: str, records: list, message: str
) -> None:
    with pytest.raises(ValueError) as exc:
        client.upsert_many(sobject, field, records)
    assert str(exc.value) == message
    assert client.api_calls == 0


# ---------------------------------------------------------------------------------- duplicate rules


@pytest.fixture(scope="module")
def rules_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with emulator_with(tmp_path_factory, "client-duplicate-rules", RULES) as emu:
        yield emu


@pytest.fixture
def rules_client(rules_emulator: EmulatorProcess) -> Callable[[str], SalesforceClient]:
    """A client of the org with duplicate rules, in the given duplicate_rules mode; the org starts empty."""
    rules_emulator.admin("POST", "reset")
    info = rules_emulator.info
    credentials = Credentials(info["username"], info["password"], info["security_token"])

    def make(mode: str) -> SalesforceClient:
        settings = ConnectionSettings(
            login_url=info["login_url"], ca_bundle=info["ca_bundle"], duplicate_rules=mode
        )
        return SalesforceClient(credentials, settings, sleep=lambda s: None)

    return make


def test_a_duplicate_names_the_rule_and_the_existing_record(rules_client, rules_emulator) -> None:
    client = rules_client("enforce")
    [existing] = client.create_many("Lead", [lead(1)])
    [result] = client.create_many("Lead", [lead(2, Email="PERSON1@example.com")])
    assert result == SaveResult(
        None,
        False,
        (
            {
                "statusCode": "DUPLICATES_DETECTED",
                "message": "Use one of these records? "
                f"(duplicate rule 'Lead_Email_Rule' matches existing Lead {existing.id})",
                "fields": [],
            },
        ),
        duplicate_rule="Lead_Email_Rule",
        duplicate_ids=(existing.id,),
    )
    assert (result.error_code, is_retryable(result.error_code)) == ("DUPLICATES_DETECTED", False)
    [update] = client.update_many("Lead", [{"Id": existing.id, "Title": "CTO"}])
    assert update == SaveResult(existing.id, True)
    assert emails(rules_emulator) == {"person1@example.com": existing.id}


def test_allow_save_sends_the_header_and_saves_past_alerts_only(rules_client, rules_emulator) -> None:
    client = rules_client("allow_save")
    [first, second] = client.create_many("Lead", [lead(1), lead(2, Email="person1@example.com")])
    assert (first.success, second.success) == (True, True)
    [upserted] = client.upsert_many("Lead", "Email", [lead(3)])
    assert (upserted.success, upserted.created) == (True, True)
    [account] = client.create_many("Account", [{"Name": "Acme"}])
    [blocked] = client.create_many("Account", [{"Name": "acme"}])
    assert blocked.message == (
        "An account of this name exists. "
        f"(duplicate rule 'Account_Name_Rule' matches existing Account {account.id})"
    )
    assert (blocked.duplicate_rule, blocked.duplicate_ids) == ("Account_Name_Rule", (account.id,))


@pytest.mark.parametrize(("mode", "header"), [("enforce", None), ("allow_save", "allowSave=true")])
def test_the_session_carries_the_header(mode: str, header: str | None) -> None:
    session = ConnectionSettings(duplicate_rules=mode).make_session()
    assert session.headers.get("Sforce-Duplicate-Rule-Header") == header


def test_an_unknown_duplicate_rules_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError) as exc:
        ConnectionSettings(duplicate_rules="sometimes")
    assert str(exc.value) == "duplicate_rules must be one of enforce, allow_save (got 'sometimes')"
    assert isinstance(exc.value, ValueError)


# ------------------------------------------------------------------------------- SaveResult parsing


def _duplicate(key: str, ids: list[str], message: str | None = "Use one of these records?") -> dict:
    match_records = [
        {"record": {"attributes": {"type": "Lead"}, "Id": i}, "matchConfidence": 100.0} for i in ids
    ]
    return {
        "id": None,
        "success": False,
        "errors": [
            {
                "statusCode": "DUPLICATES_DETECTED",
                "message": message,
                "fields": [],
                key: {
                    "allowSave": True,
                    "duplicateRule": "Lead_Email_Rule",
                    "duplicateRuleEntityType": "Lead",
                    "errorMessage": "Use one of these records?",
                    "matchResults": [{"entityType": "Lead", "matchRecords": match_records, "size": len(ids)}],
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("answer", "message", "ids"),
    [
        (
            _duplicate("duplicateResult", ["00Q1"]),
            "Use one of these records? (duplicate rule 'Lead_Email_Rule' matches existing Lead 00Q1)",
            ("00Q1",),
        ),
        (
            _duplicate("duplicateResut", ["00Q1", "00Q2"]),
            "Use one of these records? (duplicate rule 'Lead_Email_Rule' matches existing Lead 00Q1, 00Q2)",
            ("00Q1", "00Q2"),
        ),
        (
            _duplicate("duplicateResult", ["00Q1"], message=None),
            "Use one of these records? (duplicate rule 'Lead_Email_Rule' matches existing Lead 00Q1)",
            ("00Q1",),
        ),
        (
            _duplicate("duplicateResult", []),
            "Use one of these records? (duplicate rule 'Lead_Email_Rule')",
            (),
        ),
    ],
    ids=["duplicateResult", "misspelt-key", "no-message", "no-records"],
)
def test_save_result_reads_a_duplicate_result(answer: dict, message: str, ids: tuple) -> None:
    result = SaveResult.from_json(answer)
    assert (result.message, result.duplicate_rule, result.duplicate_ids) == (message, "Lead_Email_Rule", ids)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {"id": "00Q1", "success": True, "errors": [], "created": True},
            SaveResult("00Q1", True, created=True),
        ),
        (
            {"id": "00Q1", "success": True, "errors": [], "created": False},
            SaveResult("00Q1", True, created=False),
        ),
        ({"id": "00Q1", "success": True, "errors": []}, SaveResult("00Q1", True)),
        (
            {
                "id": None,
                "success": False,
                "errors": [{"statusCode": "DUPLICATES_DETECTED", "message": "Dup", "fields": []}],
            },
            SaveResult(None, False, ({"statusCode": "DUPLICATES_DETECTED", "message": "Dup", "fields": []},)),
        ),
    ],
    ids=["created", "updated", "not-an-upsert", "duplicate-without-details"],
)
def test_save_result_from_json(answer: dict, expected: SaveResult) -> None:
    assert SaveResult.from_json(answer) == expected
