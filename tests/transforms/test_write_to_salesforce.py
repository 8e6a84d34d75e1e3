"""WriteToSalesforce: creates, updates, converted Leads, rejected records, field fitting, batch failures."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.display import DisplayData

from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from schemas.records import MergedOp
from tests.transforms import fake_salesforce
from tests.transforms.conftest import run_and_count
from transforms.write_to_salesforce import WriteToSalesforce, WrittenRecord, fit_item

CREDENTIALS = Credentials("api@example.com", "s3cret-password", "s3cret-token")
SETTINGS = ConnectionSettings(login_url="https://login.example.com")
DEFAULTS = {"LastName": "n/a", "Company": "n/a"}


def _lead(email, fields, *message_ids):
    events = tuple({"messageId": m} for m in message_ids)
    return MergedOp("Lead", "Email", email, {"Email": email, **fields}, dict(DEFAULTS), events, message_ids)


def _write(p, batches):
    return (
        p
        | "Batches" >> beam.Create(batches)
        | "Write" >> WriteToSalesforce(CREDENTIALS, SETTINGS, client_factory=fake_salesforce.FakeClient)
    )


def _dead_letter_summary(d):
    return (d.stage, d.reason, d.retryable, d.event["messageId"], d.message)


EXISTING = [
    {
        "Id": "00Q1",
        "Email": "Old@Example.com",
        "LastName": "Lumbergh",
        "Company": "Initech",
        "IsConverted": False,
        "LastModifiedDate": "1",
    },
    {
        "Id": "00Q2",
        "Email": "gone@example.com",
        "LastName": "Smykowski",
        "Company": "Initech",
        "IsConverted": True,
        "LastModifiedDate": "1",
    },
]


def test_creates_updates_skips_and_rejects(p):
    fake_salesforce.reset({"Lead": EXISTING})
    batch = [
        _lead("new@example.com", {"Title": "x" * 200, "nope__c": 1, "NumberOfEmployees": "4"}, "m1", "m2"),
        _lead("old@example.com", {"FirstName": "Bill", "Company": None}, "m3"),
        _lead("gone@example.com", {"Title": "CEO"}, "m4"),
        _lead("bad@example.com", {"Title": "reject"}, "m5"),
    ]
    result = _write(p, [batch])

    assert_that(
        result.output | "DropIds" >> beam.Map(lambda w: w._replace(record_id=w.record_id[:3])),
        equal_to(
            [
                WrittenRecord("Lead", "new@example.com", "created", "00Q", 2),
                WrittenRecord("Lead", "old@example.com", "updated", "00Q", 1),
            ]
        ),
        label="CheckWritten",
    )
    assert_that(
        result.dead_letter | "Summarize" >> beam.Map(_dead_letter_summary),
        equal_to(
            [
                (
                    "write",
                    "lead_converted",
                    False,
                    "m4",
                    "The Lead 00Q2 matching Email='gone@example.com' was converted; Salesforce "
                    "refuses updates to converted Leads",
                ),
                ("write", "FIELD_CUSTOM_VALIDATION_EXCEPTION", False, "m5", "Title may not be 'reject'"),
            ]
        ),
        label="CheckDeadLetters",
    )
    counts = run_and_count(p)

    assert counts == {
        "api_calls": 5,  # login, describe, query, update, create
        "records_written:Lead:create": 1,
        "events_written:Lead:create": 2,
        "records_written:Lead:update": 1,
        "events_written:Lead:update": 1,
        "trimmed:Lead.Title": 1,
        "converted:Lead.NumberOfEmployees": 1,
        "dropped_unknown:Lead.nope__c": 1,
        "dropped_type:Lead.Company": 1,  # None on a field that cannot be empty
    }
    leads = {r["Email"].lower(): r for r in fake_salesforce.STATE["records"]["Lead"]}
    created = leads["new@example.com"]
    assert {k: v for k, v in created.items() if k not in ("Id", "LastModifiedDate")} == {
        "Email": "new@example.com",
        "Title": "x" * 128,
        "NumberOfEmployees": 4,
        "LastName": "n/a",
        "Company": "n/a",
    }
    # The create defaults never overwrite what the org holds.
    assert leads["old@example.com"] == {**EXISTING[0], "Email": "old@example.com", "FirstName": "Bill"}
    assert leads["gone@example.com"] == EXISTING[1]


@pytest.mark.parametrize(
    "switch, reason, retryable, message",
    [
        (
            "login_error",
            "login_failed",
            True,
            "Salesforce login failed (INVALID_LOGIN): Invalid username, password, security token",
        ),
        (
            "limit_exceeded",
            "REQUEST_LIMIT_EXCEEDED",
            True,
            "The org's API request limit is exhausted: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.",
        ),
        (
            "unavailable",
            "transient_error",
            True,
            "Salesforce did not answer in time: SERVER_UNAVAILABLE: try again later (after 6 attempt(s))",
        ),
        (
            "no_access",
            "NOT_FOUND",
            False,
            "NOT_FOUND (HTTP 404): The requested resource does not exist",
        ),
    ],
)
def test_a_failed_batch_dead_letters_every_event(p, switch, reason, retryable, message):
    fake_salesforce.reset({}, **{switch: True})
    batches = [[_lead("a@example.com", {}, "m1", "m2")], [_lead("b@example.com", {}, "m3")]]
    result = _write(p, batches)

    assert_that(result.output, equal_to([]), label="CheckNothingWritten")
    assert_that(
        result.dead_letter | "Summarize" >> beam.Map(_dead_letter_summary),
        equal_to([("write", reason, retryable, m, message) for m in ("m1", "m2", "m3")]),
        label="CheckDeadLetters",
    )
    run_and_count(p)
    assert fake_salesforce.STATE["records"] == {}


def test_fit_item_puts_create_only_values_in_create_defaults():
    op = _lead("a@example.com", {"LastName": "Gibbons", "IsConverted": True}, "m1")
    fitted = fit_item(op, fake_salesforce.DESCRIBES["Lead"])
    assert fitted.item.fields == {"Email": "a@example.com", "LastName": "Gibbons"}
    assert fitted.item.create_defaults == {"Company": "n/a"}
    assert fitted.notes["dropped_readonly"] == ("IsConverted",)


def test_credentials_stay_out_of_display_data():
    transform = WriteToSalesforce(CREDENTIALS, SETTINGS)
    shown = repr(DisplayData.create_from(transform).items)
    assert "login.example.com" in shown
    assert "s3cret" not in shown
    assert "s3cret" not in repr(transform) + repr(CREDENTIALS)


def test_rejects_missing_credentials():
    with pytest.raises(ValueError, match="Credentials"):
        WriteToSalesforce(None, SETTINGS)
