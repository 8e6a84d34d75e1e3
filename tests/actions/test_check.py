"""Tests of the org checks of custom actions, against the local Salesforce's own describe of its objects."""

from dataclasses import replace

import pytest

from actions.check import check_against_org
from actions.config import ActionsConfigError, default_actions, parse_actions
from emulator.config import CustomField, OrgConfig
from emulator.objects import Field, build_objects
from salesforce.errors import SalesforceApiError
from schemas.fields import ObjectMeta

API_VERSION = "62.0"
CONFIG = OrgConfig(
    custom_fields={
        "Case": (
            CustomField("Beamforce_Message_Id__c", "external_id", unique=True),
            CustomField("Notes__c", "string"),
        ),
        "Contact": (CustomField("Segment_User_Id__c", "external_id"),),
    }
)


def _objects():
    objects = build_objects(CONFIG)
    # A field that field-level security lets integrations set on create only, as orgs often have.
    case = objects["Case"]
    created_from = Field("Created_From__c", "Created From", "string", 80, updateable=False, custom=True)
    objects["Case"] = replace(case, fields=case.fields + (created_from,))
    return objects


OBJECTS = _objects()


class OrgDescribe:
    """describe(name) as the client gives it: the org's describe of the object, read into ObjectMeta."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, name: str) -> ObjectMeta:
        self.calls.append(name)
        for canonical, sobject in OBJECTS.items():
            if canonical.lower() == name.lower():
                return ObjectMeta.from_describe(sobject.describe(API_VERSION))
        raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")


def check(text: str) -> list[str]:
    config = parse_actions("version: 1\nactions:\n" + text, "actions.yaml")
    with pytest.raises(ActionsConfigError) as info:
        check_against_org(config, OrgDescribe())
    return list(info.value.problems)


def test_the_describe_is_the_org_s_own():
    case = OrgDescribe()("case")
    assert case.name == "Case"
    assert case.get("casenumber").auto_number and not case.get("casenumber").createable
    assert case.get("Beamforce_Message_Id__c").external_id
    assert OrgDescribe()("Opportunity").get("ExpectedRevenue").calculated


def test_the_defaults_pass_against_the_standard_objects():
    describe = OrgDescribe()
    assert check_against_org(default_actions(), describe) is None
    assert describe.calls == ["Lead", "Account"]


def test_a_valid_config_passes_and_describes_each_object_once():
    config = parse_actions(
        """\
version: 1
actions:
  - name: issue
    trigger: {track: Issue Submitted}
    object: Case
    operation: create
    idempotency_field: beamforce_message_id__c
    fields: {subject: properties.title, Created_From__c: {literal: web}, Notes__c: properties.notes}
    create_defaults: {Origin: Web, Priority: High}
  - name: close
    trigger: {track: Issue Closed}
    object: case
    operation: update
    match: {SuppliedEmail: properties.email, Notes__c: properties.ticket}
    fields: {Status: {literal: Closed}}
  - name: read
    trigger: identify
    object: Contact
    operation: read
    match: {Segment_User_Id__c: userId}
    read_fields: [Id, email, AccountId]
  - name: drop
    trigger: {track: Account Deleted}
    object: CASE
    operation: delete
    match: {SuppliedCompany: properties.company}
"""
    )
    describe = OrgDescribe()
    check_against_org(config, describe)
    assert describe.calls == ["Case", "Contact"]


CASE = "  - name: c\n    trigger: {track: Issue Submitted}\n    object: Case\n"


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            "  - name: c\n    trigger: {track: Issue Submitted}\n    object: Cases\n    operation: create\n",
            [
                "actions.yaml:3: action 'c': object 'Cases' does not exist in the org, or the API user "
                "cannot see it; use the object's API name as Setup > Object Manager shows it (a custom "
                "object ends in __c)"
            ],
        ),
        (
            CASE + "    operation: create\n    fields:\n"
            "      Subjct: properties.title\n      Notes: properties.notes\n      Xyzzy__c: properties.x\n",
            [
                "actions.yaml:8: action 'c': field 'Subjct': Case has no field 'Subjct'; did you mean "
                "'Subject'?",
                "actions.yaml:9: action 'c': field 'Notes': Case has no field 'Notes'; did you mean "
                "'Notes__c'?",
                "actions.yaml:10: action 'c': field 'Xyzzy__c': Case has no field 'Xyzzy__c'; use the "
                "field's API name as Setup > Object Manager > Case > Fields & Relationships shows it (a "
                "custom field ends in __c)",
            ],
        ),
        (
            CASE
            + "    operation: create\n    fields: {CaseNumber: properties.n, isclosed: properties.closed}\n",
            [
                "actions.yaml:7: action 'c': field 'CaseNumber': Case.CaseNumber cannot be written by "
                "create: it is not createable; remove it from fields",
                "actions.yaml:7: action 'c': field 'isclosed': Case.IsClosed cannot be written by create: it "
                "is not createable; remove it from fields",
            ],
        ),
        (
            CASE + "    operation: update\n    match: {SuppliedEmail: properties.email}\n"
            "    fields: {Created_From__c: properties.channel, Subject: properties.title}\n",
            [
                "actions.yaml:8: action 'c': field 'Created_From__c': Case.Created_From__c cannot be written "
                "by update: it is not updateable; remove it from fields"
            ],
        ),
        (
            CASE + "    operation: upsert\n    match: {SuppliedEmail: properties.email}\n"
            "    fields: {Created_From__c: properties.channel, ContactEmail: properties.email}\n",
            [
                "actions.yaml:8: action 'c': field 'ContactEmail': Case.ContactEmail cannot be written by "
                "upsert: it is neither createable nor updateable; remove it from fields"
            ],
        ),
        (
            CASE + "    operation: upsert\n    match: {SuppliedEmail: properties.email}\n"
            "    create_defaults: {Origin: Web, CaseNumber: '0001'}\n",
            [
                "actions.yaml:8: action 'c': field 'CaseNumber': Case.CaseNumber cannot be set when a record "
                "is created: it is not createable; remove it from create_defaults"
            ],
        ),
        (
            # Found by a hostile review: wrong-typed defaults were dropped on every create, uncounted.
            CASE + "    operation: upsert\n    match: {SuppliedEmail: properties.email}\n"
            "    create_defaults: {Origin: Web, IsEscalated: maybe, Priority: High}\n",
            [
                "actions.yaml:8: action 'c': field 'IsEscalated': Case.IsEscalated is a boolean field, and "
                "'maybe' is not a value it can hold; give a boolean value, e.g. true"
            ],
        ),
        (
            CASE
            + "    operation: update\n    match:\n      id: properties.caseId\n      CreatedDate: timestamp\n"
            "      CaseNumber: properties.number\n      Subject: properties.title\n"
            "    fields: {Status: {literal: Closed}}\n",
            [
                "actions.yaml:8: action 'c': field 'id': Case.Id is the record ID: Salesforce sets it, not "
                "your data; match on a field your data holds, e.g. an External ID field",
                "actions.yaml:9: action 'c': field 'CreatedDate': Case.CreatedDate is a system field: "
                "Salesforce sets it, not your data; match on a field your data holds, e.g. an External ID "
                "field",
                "actions.yaml:10: action 'c': field 'CaseNumber': Case.CaseNumber is an auto-number field: "
                "Salesforce sets it, not your data; match on a field your data holds, e.g. an External ID "
                "field",
            ],
        ),
        (
            "  - name: o\n    trigger: group\n    object: Opportunity\n    operation: read\n"
            "    match: {ExpectedRevenue: traits.revenue}\n    read_fields: [Id]\n",
            [
                "actions.yaml:7: action 'o': field 'ExpectedRevenue': Opportunity.ExpectedRevenue is a "
                "formula field: Salesforce sets it, not your data; match on a field your data holds, e.g. an "
                "External ID field"
            ],
        ),
        (
            CASE + "    operation: create\n    idempotency_field: Subject\n",
            [
                "actions.yaml:7: action 'c': field 'Subject': Case.Subject is not an External ID field; mark "
                "it External ID in Setup (Object Manager > Case > Fields & Relationships > Subject)"
            ],
        ),
        (
            CASE + "    operation: create\n    idempotency_field: CaseNumber\n",
            [
                "actions.yaml:7: action 'c': field 'CaseNumber': Case.CaseNumber is not an External ID "
                "field; mark it External ID in Setup (Object Manager > Case > Fields & Relationships > "
                "CaseNumber)",
                "actions.yaml:7: action 'c': field 'CaseNumber': Case.CaseNumber cannot be set on create: it "
                "is not createable; name a createable External ID field, e.g. a custom text field "
                "Beamforce_Message_Id__c",
            ],
        ),
        (
            CASE + "    operation: create\n    idempotency_field: Beamforce_Message_Id\n",
            [
                "actions.yaml:7: action 'c': field 'Beamforce_Message_Id': Case has no field "
                "'Beamforce_Message_Id'; did you mean 'Beamforce_Message_Id__c'?"
            ],
        ),
        (
            CASE + "    operation: read\n    match: {SuppliedEmail: properties.email}\n"
            "    read_fields:\n      - Id\n      - Stauts\n      - Qwerty\n",
            [
                "actions.yaml:10: action 'c': field 'Stauts': Case has no field 'Stauts'; did you mean "
                "'Status'?",
                "actions.yaml:11: action 'c': field 'Qwerty': Case has no field 'Qwerty'; use the field's "
                "API name as Setup > Object Manager > Case > Fields & Relationships shows it (a custom field "
                "ends in __c)",
            ],
        ),
    ],
)
def test_org_problems(action, expected):
    assert check(action) == expected


def test_every_action_on_an_unknown_object_is_reported_and_it_is_described_once():
    config = parse_actions(
        """\
version: 1
actions:
  - name: a
    trigger: identify
    object: Invoice__c
    operation: create
    fields: {Anything__c: traits.x}
  - name: b
    trigger: group
    object: invoice__c
    operation: delete
    match: {Number__c: groupId}
""",
        "actions.yaml",
    )
    describe = OrgDescribe()
    with pytest.raises(ActionsConfigError) as info:
        check_against_org(config, describe)
    assert describe.calls == ["Invoice__c"]
    fix = "use the object's API name as Setup > Object Manager shows it (a custom object ends in __c)"
    assert info.value.problems == (
        "actions.yaml:3: action 'a': object 'Invoice__c' does not exist in the org, or the API user cannot "
        "see "
        f"it; {fix}",
        "actions.yaml:8: action 'b': object 'invoice__c' does not exist in the org, or the API user cannot "
        "see "
        f"it; {fix}",
    )


@pytest.mark.parametrize(
    "error",
    [
        SalesforceApiError(403, "INSUFFICIENT_ACCESS", "no access to the API"),
        ConnectionError("connection refused"),
    ],
)
def test_other_describe_errors_propagate(error):
    def describe(name: str) -> ObjectMeta:
        raise error

    with pytest.raises(type(error)) as info:
        check_against_org(default_actions(), describe)
    assert info.value is error


def test_a_field_no_query_can_filter_by_is_no_match_field():
    # A long text area's describe says filterable: false; Salesforce refuses it in a WHERE clause.
    assert check(CASE + "    operation: update\n    match: {Description: properties.text}\n") == [
        "actions.yaml:7: action 'c': field 'Description': Case.Description cannot be matched on: a query "
        "cannot filter by a textarea field; match on a field your data holds, e.g. an External ID field"
    ]
