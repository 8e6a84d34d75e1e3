"""Duplicate rules over HTTP: block, alert, the allowSave header, updates, blank fields and config errors."""

from collections.abc import Iterator

import pytest
from simple_salesforce import Salesforce

from emulator.config import ConfigError, DuplicateRule, parse_config
from emulator.duplicates import allows_save
from emulator.process import EmulatorError, EmulatorProcess, start_emulator
from tests.e2e.conftest import emulator_with
from tests.emulator.conftest import API, Raw

CONFIG = """
custom_fields:
  Lead:
    - {name: Ext__c, type: external_id, length: 80}
duplicate_rules:
  - {name: Lead_Email_Rule, object: Lead, fields: [Email], action: alert}
  - {name: Account_Name_Rule, object: account, fields: [name], action: block}
  - {name: Contact_Name_Phone, object: Contact, fields: [LastName, Phone], action: alert,
     error_message: "This contact may already exist."}
"""
ALLOW = {"Sforce-Duplicate-Rule-Header": "allowSave=true"}
LEAD = {"LastName": "Doe", "Company": "Acme"}


@pytest.fixture(scope="module")
def rules_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with emulator_with(tmp_path_factory, "duplicate-rules", CONFIG) as emu:
        yield emu


@pytest.fixture(scope="module")
def rules_sf(rules_emulator: EmulatorProcess) -> Salesforce:
    return rules_emulator.salesforce(API)


@pytest.fixture
def emu(rules_emulator: EmulatorProcess) -> EmulatorProcess:
    rules_emulator.admin("POST", "reset")
    return rules_emulator


@pytest.fixture
def raw(emu: EmulatorProcess, rules_sf: Salesforce) -> Raw:
    return Raw(emu, rules_sf.session_id)


def seed(emu: EmulatorProcess, sobject: str, record: dict) -> str:
    return emu.admin("POST", f"records/{sobject}", json=record)["id"]


def count(emu: EmulatorProcess, sobject: str) -> int:
    return emu.admin("GET", f"records/{sobject}")["totalSize"]


def duplicate_error(
    rule: str, sobject: str, ids: list[str], allow_save: bool, message: str = "Use one of these records?"
) -> dict:
    """A per-record DUPLICATES_DETECTED error of sObject Collections."""
    return {
        "statusCode": "DUPLICATES_DETECTED",
        "message": message,
        "fields": [],
        "duplicateResult": {
            "allowSave": allow_save,
            "duplicateRule": rule,
            "duplicateRuleEntityType": sobject,
            "errorMessage": message,
            "matchResults": [
                {
                    "entityType": sobject,
                    "errorMessage": None,
                    "matchEngine": "ExactMatchEngine",
                    "matchRecords": [
                        {
                            "additionalInformation": [],
                            "fieldDiffs": [],
                            "matchConfidence": 100.0,
                            "record": {
                                "attributes": {
                                    "type": sobject,
                                    "url": f"/services/data/v{API}/sobjects/{sobject}/{i}",
                                },
                                "Id": i,
                            },
                        }
                        for i in ids
                    ],
                    "rule": rule,
                    "size": len(ids),
                    "success": True,
                }
            ],
        },
    }


def rest_error(error: dict) -> dict:
    """The same error as single-record REST answers it: errorCode instead of statusCode."""
    return {
        "message": error["message"],
        "errorCode": error["statusCode"],
        "fields": error["fields"],
        "duplicateResult": error["duplicateResult"],
    }


def refused(error: dict, **extra: object) -> dict:
    return {"id": None, "success": False, "errors": [error], **extra}


def collections(raw: Raw, method: str, records: list[dict], headers: dict | None = None) -> list[dict]:
    response = raw(
        method, "composite/sobjects", json={"allOrNone": False, "records": records}, headers=headers or {}
    )
    assert response.status_code == 200
    return response.json()


# -------------------------------------------------------------------------------------------- block


@pytest.mark.parametrize("headers", [{}, ALLOW], ids=["no-header", "allow-save"])
def test_a_block_rule_refuses_a_single_create_whatever_the_header(emu, raw, headers):
    existing = seed(emu, "Account", {"Name": "Acme Corp"})
    response = raw("POST", "sobjects/Account", json={"Name": "  ACME corp "}, headers=headers)
    assert (response.status_code, response.json()) == (
        400,
        [
            {
                "message": "Use one of these records?",
                "errorCode": "DUPLICATES_DETECTED",
                "fields": [],
                "duplicateResult": {
                    "allowSave": False,
                    "duplicateRule": "Account_Name_Rule",
                    "duplicateRuleEntityType": "Account",
                    "errorMessage": "Use one of these records?",
                    "matchResults": [
                        {
                            "entityType": "Account",
                            "errorMessage": None,
                            "matchEngine": "ExactMatchEngine",
                            "matchRecords": [
                                {
                                    "additionalInformation": [],
                                    "fieldDiffs": [],
                                    "matchConfidence": 100.0,
                                    "record": {
                                        "attributes": {
                                            "type": "Account",
                                            "url": f"/services/data/v59.0/sobjects/Account/{existing}",
                                        },
                                        "Id": existing,
                                    },
                                }
                            ],
                            "rule": "Account_Name_Rule",
                            "size": 1,
                            "success": True,
                        }
                    ],
                },
            }
        ],
    )
    assert count(emu, "Account") == 1


def test_a_block_rule_refuses_in_collections_and_lists_every_match(emu, raw):
    first = seed(emu, "Account", {"Name": "Acme"})
    second = seed(emu, "Account", {"Name": "acme"})  # seeding runs no duplicate rules
    results = collections(
        raw,
        "POST",
        [
            {"attributes": {"type": "Account"}, "Name": "ACME"},
            {"attributes": {"type": "Account"}, "Name": "B"},
        ],
        ALLOW,
    )
    assert results[0] == refused(duplicate_error("Account_Name_Rule", "Account", [first, second], False))
    assert (results[1]["success"], count(emu, "Account")) == (True, 3)


# -------------------------------------------------------------------------------------------- alert


@pytest.mark.parametrize(
    ("headers", "saved"),
    [
        ({}, False),
        ({"Sforce-Duplicate-Rule-Header": "allowSave=true"}, True),
        ({"sforce-duplicate-rule-header": "allowSave = true"}, True),
        ({"SFORCE-DUPLICATE-RULE-HEADER": "allowsave=TRUE"}, True),
        ({"Sforce-Duplicate-Rule-Header": "runAsCurrentUser=true, allowSave=true"}, True),
        ({"Sforce-Duplicate-Rule-Header": "allowSave=false"}, False),
        ({"Sforce-Duplicate-Rule-Header": ""}, False),
    ],
)
def test_an_alert_rule_saves_only_with_allow_save(emu, raw, headers, saved):
    existing = seed(emu, "Lead", {**LEAD, "Email": "jane@example.com"})
    results = collections(
        raw, "POST", [{"attributes": {"type": "Lead"}, **LEAD, "Email": "Jane@Example.COM"}], headers
    )
    if saved:
        assert (results[0]["success"], results[0]["errors"], count(emu, "Lead")) == (True, [], 2)
    else:
        assert results == [refused(duplicate_error("Lead_Email_Rule", "Lead", [existing], True))]
        assert count(emu, "Lead") == 1


def test_an_alert_rule_refuses_a_single_create_without_the_header(emu, raw):
    existing = seed(emu, "Lead", {**LEAD, "Email": "jane@example.com"})
    response = raw("POST", "sobjects/Lead", json={**LEAD, "Email": "jane@example.com"})
    error = duplicate_error("Lead_Email_Rule", "Lead", [existing], True)
    assert (response.status_code, response.json()) == (400, [rest_error(error)])
    allowed = raw("POST", "sobjects/Lead", json={**LEAD, "Email": "jane@example.com"}, headers=ALLOW)
    assert (allowed.status_code, count(emu, "Lead")) == (201, 2)


# ------------------------------------------------------------------------------------------ updates


def test_an_update_that_would_duplicate_is_refused(emu, raw):
    jane = seed(emu, "Lead", {**LEAD, "Email": "jane@example.com"})
    john = seed(emu, "Lead", {**LEAD, "Email": "john@example.com"})
    error = duplicate_error("Lead_Email_Rule", "Lead", [jane], True)

    single = raw("PATCH", f"sobjects/Lead/{john}", json={"Email": "JANE@example.com"})
    assert (single.status_code, single.json()) == (400, [rest_error(error)])
    many = collections(
        raw, "PATCH", [{"attributes": {"type": "Lead"}, "Id": john, "Email": "jane@example.com"}]
    )
    assert many == [refused(error)]
    # A record never duplicates itself: saving it with its own value again is fine.
    assert raw("PATCH", f"sobjects/Lead/{jane}", json={"Email": "Jane@example.com"}).status_code == 204
    emails = {r["Id"]: r["Email"] for r in emu.admin("GET", "records/Lead")["records"]}
    assert emails == {jane: "Jane@example.com", john: "john@example.com"}

    allowed = raw("PATCH", f"sobjects/Lead/{john}", json={"Email": "jane@example.com"}, headers=ALLOW)
    assert allowed.status_code == 204


def test_a_deleted_record_is_no_duplicate(emu, raw):
    jane = seed(emu, "Lead", {**LEAD, "Email": "jane@example.com"})
    assert raw("DELETE", f"sobjects/Lead/{jane}").status_code == 204
    assert raw("POST", "sobjects/Lead", json={**LEAD, "Email": "jane@example.com"}).status_code == 201


# ------------------------------------------------------------------------------------------ upserts


def test_collections_upsert_is_judged_when_it_creates_and_when_it_updates(emu, raw):
    jane = seed(emu, "Lead", {**LEAD, "Email": "jane@example.com", "Ext__c": "k1"})
    seed(emu, "Lead", {**LEAD, "Email": "john@example.com", "Ext__c": "k2"})
    records = [
        {"attributes": {"type": "Lead"}, **LEAD, "Ext__c": "k3", "Email": "jane@example.com"},
        {"attributes": {"type": "Lead"}, "Ext__c": "k2", "Email": "jane@example.com"},
        {"attributes": {"type": "Lead"}, **LEAD, "Ext__c": "k4", "Email": "new@example.com"},
    ]
    response = raw("PATCH", "composite/sobjects/Lead/Ext__c", json={"allOrNone": False, "records": records})
    error = duplicate_error("Lead_Email_Rule", "Lead", [jane], True)
    results = response.json()
    assert results[:2] == [refused(error, created=False), refused(error, created=False)]
    assert (results[2]["success"], results[2]["created"], count(emu, "Lead")) == (True, True, 3)

    allowed = raw(
        "PATCH",
        "composite/sobjects/Lead/Ext__c",
        json={"allOrNone": False, "records": records[:2]},
        headers=ALLOW,
    ).json()
    assert [(r["success"], r["created"]) for r in allowed] == [(True, True), (True, False)]


def test_single_upsert_by_external_id(emu, raw):
    jane = seed(emu, "Lead", {**LEAD, "Email": "jane@example.com"})
    response = raw("PATCH", "sobjects/Lead/Ext__c/k9", json={**LEAD, "Email": "jane@example.com"})
    error = duplicate_error("Lead_Email_Rule", "Lead", [jane], True)
    assert (response.status_code, response.json()) == (400, [rest_error(error)])
    allowed = raw(
        "PATCH", "sobjects/Lead/Ext__c/k9", json={**LEAD, "Email": "jane@example.com"}, headers=ALLOW
    )
    assert (allowed.status_code, allowed.json()["created"]) == (201, True)


# ---------------------------------------------------------------------------------------- composite


@pytest.mark.parametrize(("headers", "status"), [({}, 400), (ALLOW, 201)])
def test_composite_subrequests_follow_the_requests_header(emu, raw, headers, status):
    jane = seed(emu, "Lead", {**LEAD, "Email": "jane@example.com"})
    body = {
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"/services/data/v{API}/sobjects/Lead",
                "referenceId": "lead",
                "body": {**LEAD, "Email": "jane@example.com"},
            },
            {
                "method": "POST",
                "url": f"/services/data/v{API}/composite/sobjects",
                "referenceId": "many",
                "body": {"records": [{"attributes": {"type": "Lead"}, **LEAD, "Email": "jane@example.com"}]},
            },
        ]
    }
    out = raw("POST", "composite", json=body, headers=headers).json()["compositeResponse"]
    error = duplicate_error("Lead_Email_Rule", "Lead", [jane], True)
    assert out[0]["httpStatusCode"] == status
    if status == 400:
        assert out[0]["body"] == [rest_error(error)]
        assert out[1]["body"] == [refused(error)]
    else:
        assert [r["success"] for r in out[1]["body"]] == [True]


# ------------------------------------------------------------------------------------- blank fields


@pytest.mark.parametrize(
    ("existing", "new", "duplicate"),
    [
        ({"LastName": "Smith", "Phone": "555-0100"}, {"LastName": "smith", "Phone": " 555-0100 "}, True),
        ({"LastName": "Smith", "Phone": "555-0100"}, {"LastName": "Smith"}, False),
        ({"LastName": "Smith", "Phone": "555-0100"}, {"LastName": "Smith", "Phone": "   "}, False),
        ({"LastName": "Smith"}, {"LastName": "Smith"}, False),
        ({"LastName": "Smith", "Phone": "555-0100"}, {"LastName": "Smyth", "Phone": "555-0100"}, False),
    ],
    ids=["all-equal", "new-blank", "new-spaces", "both-blank", "one-differs"],
)
def test_a_rule_matches_only_when_every_field_is_set_and_equal(emu, raw, existing, new, duplicate):
    existing_id = seed(emu, "Contact", existing)
    results = collections(raw, "POST", [{"attributes": {"type": "Contact"}, **new}])
    if duplicate:
        message = "This contact may already exist."
        error = duplicate_error("Contact_Name_Phone", "Contact", [existing_id], True, message)
        assert (results, count(emu, "Contact")) == ([refused(error)], 1)
    else:
        assert (results[0]["success"], count(emu, "Contact")) == (True, 2)


# ------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "R", "object": "Leed", "fields": ["Email"], "action": "block"},
            "config.duplicate_rules[0].object: unknown object 'Leed'; known: "
            "['Account', 'Case', 'Contact', 'Lead', 'Opportunity']",
        ),
        (
            {"name": "R", "object": "Lead", "fields": ["Email", "Emial"], "action": "block"},
            "config.duplicate_rules[0].fields: Lead has no field 'Emial'",
        ),
        (
            {"name": "R", "object": "Lead", "fields": ["Address"], "action": "block"},
            "config.duplicate_rules[0].fields: Lead.Address (address) cannot be matched",
        ),
        (
            {"name": "R", "object": "Organization", "fields": ["Name"], "action": "block"},
            "config.duplicate_rules[0].object: unknown object 'Organization'; known: "
            "['Account', 'Case', 'Contact', 'Lead', 'Opportunity']",
        ),
        (
            {"name": "R", "object": "Lead", "fields": ["Email"], "action": "warn"},
            "config.duplicate_rules[0].action: 'warn' is not one of ['block', 'alert']",
        ),
        (
            {"name": "R", "object": "Lead", "fields": [], "action": "block"},
            "config.duplicate_rules[0].fields: must be a non-empty list of field names, got []",
        ),
        (
            {"name": "R", "object": "Lead", "fields": "Email", "action": "block"},
            "config.duplicate_rules[0].fields: must be a non-empty list of field names, got 'Email'",
        ),
        (
            {"name": "", "object": "Lead", "fields": ["Email"], "action": "block"},
            "config.duplicate_rules[0].name: must be a non-empty string, got ''",
        ),
        (
            {"name": "R", "object": "Lead", "fields": ["Email"]},
            "config.duplicate_rules[0]: DuplicateRule.__init__() missing 1 required positional argument: "
            "'action'",
        ),
        (
            {"name": "R", "object": "Lead", "fields": ["Email"], "action": "block", "when": "always"},
            "config.duplicate_rules[0]: unknown key(s) ['when']; allowed: "
            "['action', 'error_message', 'fields', 'name', 'object']",
        ),
    ],
)
def test_bad_rules_name_what_to_fix(rule, message):
    with pytest.raises(ConfigError) as exc:
        parse_config({"duplicate_rules": [rule]})
    assert str(exc.value) == message


def test_rules_on_custom_fields_and_rule_names_once():
    config = parse_config(
        {
            "custom_fields": {"Lead": [{"name": "Ext__c", "type": "external_id"}]},
            "duplicate_rules": [{"name": "R", "object": "Lead", "fields": ["ext__c"], "action": "alert"}],
        }
    )
    assert config.duplicate_rules == (DuplicateRule("R", "Lead", ("ext__c",), "alert"),)
    twice = [{"name": "R", "object": "Lead", "fields": ["Email"], "action": "block"}] * 2
    with pytest.raises(ConfigError) as exc:
        parse_config({"duplicate_rules": twice})
    assert str(exc.value) == "config.duplicate_rules[1].name: rule 'R' is named twice"


def test_the_emulator_refuses_to_start_with_a_bad_rule(tmp_path):
    (tmp_path / "org.yaml").write_text(
        "duplicate_rules:\n  - {name: R, object: Lead, fields: [Emial], action: block}\n"
    )
    with pytest.raises(EmulatorError) as exc:
        start_emulator(tmp_path / "data", config_path=tmp_path / "org.yaml")
    assert "error: config.duplicate_rules[0].fields: Lead has no field 'Emial'" in str(exc.value)


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (None, False),
        ("allowSave=true", True),
        ("allowSave = true", True),
        ("ALLOWSAVE=True", True),
        ("runAsCurrentUser=true; allowSave=true", True),
        ("allowSave=false", False),
        ("allowSave", False),
        ("allowSaves=true", False),
    ],
)
def test_the_header_value(header, allowed):
    assert allows_save(header) is allowed
