"""WriteToSalesforce: creates, updates, converted Leads, rejected records, field fitting, batch failures."""

import json

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.display import DisplayData

from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import ApiLimitExceeded, SalesforceApiError, TransientError
from schemas.events import EventRef
from schemas.records import MergedOp
from tests.transforms import fake_salesforce
from tests.transforms.conftest import run_and_count
from transforms.write_to_salesforce import WriteToSalesforce, WrittenRecord, fit_item

CREDENTIALS = Credentials("api@example.com", "s3cret-password", "s3cret-token")
SETTINGS = ConnectionSettings(login_url="https://login.example.com")
DEFAULTS = {"LastName": "n/a", "Company": "n/a"}


def _lead(email, fields, *message_ids):
    """A merged Lead op whose events came from one file each, named after their messageId."""
    refs = tuple(EventRef(f"in/{m}.jsonl", 1, json.dumps({"messageId": m})) for m in message_ids)
    fields = {"Email": email, **fields}
    return MergedOp("Lead", "Email", email, fields, dict(DEFAULTS), {}, refs)


def _write(p, batches):
    return (
        p
        | "Batches" >> beam.Create(batches)
        | "Write" >> WriteToSalesforce(CREDENTIALS, SETTINGS, client_factory=fake_salesforce.FakeClient)
    )


def _dead_letter_summary(d):
    return (d.stage, d.reason, d.retryable, json.loads(d.ref.raw)["messageId"], d.ref.source, d.message)


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
                    "in/m4.jsonl",
                    "The Lead 00Q2 matching Email='gone@example.com' was converted; Salesforce "
                    "refuses updates to converted Leads",
                ),
                (
                    "write",
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    False,
                    "m5",
                    "in/m5.jsonl",
                    "Title may not be 'reject'",
                ),
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
        # Records with such fields (which fields: the string sets, see test_field_notes_are_bounded).
        "fields_trimmed": 1,
        "fields_converted": 1,
        "fields_dropped_unknown": 1,
        "fields_dropped_type": 1,  # Company None on a field that cannot be empty
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


# Login and describe fail before any record is looked up: the whole batch is handed back.
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
            "login_unreachable",
            "transient_error",
            True,
            "Salesforce did not answer in time: ConnectionError: login request failed (after 6 attempt(s))",
        ),
        (  # describe
            "limit_exceeded",
            "REQUEST_LIMIT_EXCEEDED",
            True,
            "The org's API request limit is exhausted: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.",
        ),
        (  # describe
            "unavailable",
            "transient_error",
            True,
            "Salesforce did not answer in time: SERVER_UNAVAILABLE: try again later (after 6 attempt(s))",
        ),
        (  # describe
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
        equal_to([("write", reason, retryable, m, f"in/{m}.jsonl", message) for m in ("m1", "m2", "m3")]),
        label="CheckDeadLetters",
    )
    run_and_count(p)
    assert fake_salesforce.STATE["records"] == {}


LIMIT = ApiLimitExceeded("TotalRequests Limit exceeded.")
LIMIT_DL = ("REQUEST_LIMIT_EXCEEDED", True, "TotalRequests Limit exceeded.")
UPDATED_OLD = WrittenRecord("Lead", "old@example.com", "updated", "00Q1", 1)


# upsert_by_key reports a call that failed as a failed outcome per record, with Salesforce's code;
# m1 is an update of old@example.com, m2 a create of new@example.com.
@pytest.mark.parametrize(
    "raise_on, written, dead_letters",
    [
        ({"query_all": LIMIT}, [], {"m1": LIMIT_DL, "m2": LIMIT_DL}),
        # Nothing more is sent once the limit is reached: the create is not even tried.
        ({"update_many": LIMIT}, [], {"m1": LIMIT_DL, "m2": LIMIT_DL}),
        ({"create_many": LIMIT}, [UPDATED_OLD], {"m2": LIMIT_DL}),
        (
            {"query_all": TransientError("SERVER_UNAVAILABLE", "Server Unavailable", attempts=6)},
            [],
            {m: ("SERVER_UNAVAILABLE", True, "Server Unavailable") for m in ("m1", "m2")},
        ),
        (
            {"query_all": SalesforceApiError(400, "INVALID_FIELD", "No such column 'IsConverted'")},
            [],
            {m: ("INVALID_FIELD", False, "No such column 'IsConverted'") for m in ("m1", "m2")},
        ),
        (
            # Looked up again after every failed create (it may have been applied), then given up.
            {"create_many": TransientError("ReadTimeout", "no answer", attempts=1, maybe_applied=True)},
            [UPDATED_OLD],
            {"m2": ("ReadTimeout", True, "no answer")},
        ),
    ],
    ids=[
        "limit_on_lookup",
        "limit_on_update",
        "limit_on_create",
        "lookup_unavailable",
        "bad_lookup",
        "create_timed_out",
    ],
)
def test_failed_upsert_calls_dead_letter_with_salesforces_code(p, raise_on, written, dead_letters):
    fake_salesforce.reset({"Lead": EXISTING}, raise_on=raise_on)
    batch = [_lead("old@example.com", {"FirstName": "Bill"}, "m1"), _lead("new@example.com", {}, "m2")]
    result = _write(p, [batch])

    assert_that(result.output, equal_to(written), label="CheckWritten")
    assert_that(
        result.dead_letter | "Summarize" >> beam.Map(_dead_letter_summary),
        equal_to(
            [
                ("write", reason, retryable, m, f"in/{m}.jsonl", message)
                for m, (reason, retryable, message) in dead_letters.items()
            ]
        ),
        label="CheckDeadLetters",
    )
    run_and_count(p)
    leads = fake_salesforce.STATE["records"]["Lead"]
    assert [r["Id"] for r in leads] == ["00Q1", "00Q2"]  # nothing created
    assert leads[0].get("FirstName") == ("Bill" if written else None)


# Records Salesforce refuses one by one: retryable only when its code says a retry may succeed.
@pytest.mark.parametrize(
    "title, reason, retryable, message",
    [
        ("too long", "STRING_TOO_LONG", False, "Title: data value too large: too long (max length=128)"),
        ("reject", "FIELD_CUSTOM_VALIDATION_EXCEPTION", False, "Title may not be 'reject'"),
        # Retried LOCK_RETRIES times within the batch, then handed back for a later replay.
        ("locked", "UNABLE_TO_LOCK_ROW", True, "unable to obtain exclusive access to this record"),
    ],
)
def test_refused_records_say_whether_a_retry_may_succeed(p, title, reason, retryable, message):
    fake_salesforce.reset({"Lead": EXISTING})
    batch = [
        _lead("old@example.com", {"Title": title}, "m1"),
        _lead("new@example.com", {"Title": title}, "m2"),
    ]
    result = _write(p, [batch])

    assert_that(result.output, equal_to([]), label="CheckNothingWritten")
    assert_that(
        result.dead_letter | "Summarize" >> beam.Map(_dead_letter_summary),
        equal_to([("write", reason, retryable, m, f"in/{m}.jsonl", message) for m in ("m1", "m2")]),
        label="CheckDeadLetters",
    )
    run_and_count(p)
    assert fake_salesforce.STATE["records"]["Lead"] == EXISTING


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


def test_a_match_value_too_long_for_its_field_is_a_dead_letter_not_trimmed(p):
    # Trimmed, the key would name another record, which the next run's lookup would not find.
    fake_salesforce.reset({"Lead": []})
    long_email = "a" * 69 + "@example.com"
    result = _write(p, [[_lead(long_email, {"Title": "t"}, "m1"), _lead("ok@example.com", {}, "m2")]])
    assert_that(
        result.output | "Keys" >> beam.Map(lambda w: (w.match_value, w.action)),
        equal_to([("ok@example.com", "created")]),
        label="CheckWritten",
    )
    assert_that(
        result.dead_letter
        | "Summarize" >> beam.Map(lambda d: (d.stage, d.reason, d.retryable, d.message[:33])),
        equal_to([("write", "STRING_TOO_LONG", False, "Lead.Email holds 80 characters an")]),
        label="CheckDeadLetters",
    )
    counts = run_and_count(p)
    assert "fields_trimmed" not in counts
    assert [r["Email"] for r in fake_salesforce.STATE["records"]["Lead"]] == ["ok@example.com"]


def test_the_pickled_writer_carries_where_credentials_are_not_the_secrets(tmp_path, monkeypatch):
    from apache_beam.internal.cloudpickle import cloudpickle

    from salesforce.credentials import CredentialsSource

    secrets = tmp_path / "sf.env"
    secrets.write_text(
        "SALESFORCE_USERNAME=api@example.com\nSALESFORCE_PASSWORD=s3cret-password\n"
        "SALESFORCE_SECURITY_TOKEN=s3cret-token\n"
    )
    transform = WriteToSalesforce(CredentialsSource(str(secrets)), SETTINGS)
    graph = cloudpickle.dumps(transform)  # what Beam puts in the job's graph, before compressing it
    assert b"s3cret" not in graph and str(secrets).encode() in graph
    # The worker reads them when it starts.
    assert CredentialsSource(str(secrets)).resolve({}).password == "s3cret-password"


@pytest.mark.parametrize(
    "text, message",
    [
        ("SALESFORCE_USERNAME api@example.com\n", "line 1: expected NAME=VALUE"),
        ("# comment\n\nSALESFORCE_USERNAME=a@b.c\n", "SALESFORCE_PASSWORD is not set"),
    ],
)
def test_a_bad_credentials_file_names_the_line_not_the_secret(tmp_path, text, message):
    from salesforce.credentials import CredentialsSource
    from salesforce.errors import ConfigurationError

    path = tmp_path / "sf.env"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as raised:
        CredentialsSource(str(path)).resolve({})
    assert "api@example.com" not in str(raised.value)


def test_a_ca_bundle_missing_on_a_worker_dead_letters_every_event_naming_the_file(p, tmp_path):
    """The launcher checks --salesforce_ca_bundle; a worker is another machine, where the file may be
    missing: its writer must not crash in setup(), and the events stay replayable."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked here")
    settings = ConnectionSettings(login_url="https://login.example.com", ca_bundle=str(bundle))
    bundle.unlink()  # as on a worker that does not have it
    fake_salesforce.reset({})
    batches = [[_lead("a@example.com", {}, "m1", "m2")], [_lead("b@example.com", {}, "m3")]]
    result = (
        p
        | "Batches" >> beam.Create(batches)
        | "Write" >> WriteToSalesforce(CREDENTIALS, settings, client_factory=fake_salesforce.FakeClient)
    )
    message = (
        f"this worker cannot log in: --salesforce_ca_bundle '{bundle}' is missing on this worker: put the "
        "file at the same path on every worker (e.g. in the worker image) and replay these dead letters"
    )
    assert_that(result.output, equal_to([]), label="CheckNothingWritten")
    assert_that(
        result.dead_letter | "Summarize" >> beam.Map(_dead_letter_summary),
        equal_to([("write", "login_failed", True, m, f"in/{m}.jsonl", message) for m in ("m1", "m2", "m3")]),
        label="CheckDeadLetters",
    )
    run_and_count(p)
    assert fake_salesforce.STATE["records"] == {}
