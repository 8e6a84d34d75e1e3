"""The whole pipeline over event files against the local Salesforce, checked record by record."""

import json
import socket

import pytest

from pipeline.main import main, run
from pipeline.summary import FieldNotes
from tests.e2e.conftest import (
    SANDBOX_USER,
    calls,
    client,
    connection_flags,
    environ,
    records,
    run_pipeline,
    write_lines,
)
from tests.seed_examples import SEED_ACCOUNT, SEED_GROUP, SEED_IDENTIFY_FLAT, SEED_IDENTIFY_OBJECTS, SEED_LEAD

pytestmark = pytest.mark.e2e

ON = {"Salesforce": True}


def identify(message_id, traits, **extra):
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": f"user-{message_id}",
        "timestamp": "2026-11-28T12:00:00.000Z",
        "traits": traits,
        "integrations": ON,
        **extra,
    }


def _canonical(d) -> str:
    return json.dumps(d, sort_keys=True)


def _without_time(dead_letters):
    return [{k: v for k, v in d.items() if k != "time"} for d in dead_letters]


def test_seed_calls_make_exactly_the_documented_lead_and_account(org, tmp_path):
    summary, dead = run_pipeline(org, tmp_path, [SEED_IDENTIFY_FLAT, SEED_IDENTIFY_OBJECTS, SEED_GROUP])

    assert records(org, "Lead") == [SEED_LEAD]
    # The seed's record, plus the Account's Name-derived fields the org fills itself (none here).
    assert records(org, "Account") == [SEED_ACCOUNT]
    assert dead == []
    assert summary.written == {"Lead": {"create": 2}, "Account": {"create": 1}}
    assert summary.records_written == {"Lead": {"create": 1}, "Account": {"create": 1}}
    assert (summary.events_read, summary.balanced) == (3, True)
    assert summary.api_calls == calls(org)["total"]


def test_shipping_address_mapping(org, tmp_path):
    run_pipeline(org, tmp_path, [SEED_GROUP], "--address_mapping", "shipping")
    shipping = {k.replace("Billing", "Shipping"): v for k, v in SEED_ACCOUNT.items()}
    assert records(org, "Account") == [shipping]


def test_existing_lead_is_updated_and_keeps_its_last_name_and_company(org, tmp_path):
    existing = {
        "Email": "Bill.Lumbergh@Initech.example",
        "LastName": "Lumbergh",
        "Company": "Initech",
        "Title": "Boss",
    }
    [created] = client(org).create_many("Lead", [existing])
    assert created.success

    summary, dead = run_pipeline(
        org, tmp_path, [identify("m1", {"email": "bill.lumbergh@initech.example", "title": "Division VP"})]
    )

    assert records(org, "Lead") == [
        {
            "Email": "bill.lumbergh@initech.example",
            "LastName": "Lumbergh",
            "Company": "Initech",
            "Title": "Division VP",
        }
    ]
    assert dead == []
    assert summary.written == {"Lead": {"update": 1}}


VALID_EMAILS = ["o'brien@example.com", "o'reilly+news@example.com"]
# Salesforce refuses these as email addresses; they still go through the lookup's IN list, which
# fails as a whole (MALFORMED_QUERY) unless every literal is escaped.
INVALID_EMAILS = ['quote"d@example.com', "back\\slash@example.com"]


def test_quotes_and_backslashes_in_emails_are_escaped_and_matched_again(org, tmp_path):
    emails = VALID_EMAILS + INVALID_EMAILS
    first_events = [identify(f"m{i}", {"email": e, "lastName": f"L{i}"}) for i, e in enumerate(emails)]
    first, dead_first = run_pipeline(org, tmp_path, first_events, name="first")
    again_events = [identify(f"n{i}", {"email": e.upper(), "title": "again"}) for i, e in enumerate(emails)]
    second, dead_second = run_pipeline(org, tmp_path, again_events, name="second")

    assert sorted(records(org, "Lead"), key=lambda r: r["LastName"]) == [
        {"Email": e.upper(), "LastName": f"L{i}", "Company": "n/a", "Title": "again"}
        for i, e in enumerate(VALID_EMAILS)
    ]
    runs = (("first", first_events, dead_first), ("second", again_events, dead_second))
    for name, events, dead in runs:
        rejected = events[len(VALID_EMAILS) :]
        assert sorted(_without_time(dead), key=_canonical) == sorted(
            [
                {
                    "stage": "write",
                    "reason": "INVALID_EMAIL_ADDRESS",
                    "message": f"Email: invalid email address: {e['traits']['email']}",
                    "retryable": False,
                    "event": e,
                    "source": str(tmp_path / f"{name}.jsonl"),
                }
                for e in rejected
            ],
            key=_canonical,
        )
    assert first.written == {"Lead": {"create": 2}}
    assert second.written == {"Lead": {"update": 2}}


def test_custom_fields_present_are_written_and_missing_ones_named(org, tmp_path):
    summary, dead = run_pipeline(
        org,
        tmp_path,
        [
            identify(
                "m1", {"email": "c@example.com", "lastName": "C", "testProp": "yes", "favoriteColor": "red"}
            )
        ],
    )

    assert records(org, "Lead") == [
        {"Email": "c@example.com", "LastName": "C", "Company": "n/a", "testProp__c": "yes"}
    ]
    assert dead == []
    assert summary.dropped_unknown == FieldNotes(1, {"Lead.favoriteColor__c"})
    assert summary.missing_fields == ["Lead.favoriteColor__c"]
    assert (
        "Fields missing in the org (create them to receive these values): 1 records\n"
        "    Lead.favoriteColor__c\n"
    ) in summary.format_text()


def test_long_values_are_trimmed(org, tmp_path):
    summary, dead = run_pipeline(
        org, tmp_path, [identify("m1", {"email": "t@example.com", "title": "x" * 200})]
    )

    assert records(org, "Lead") == [
        {"Email": "t@example.com", "LastName": "n/a", "Company": "n/a", "Title": "x" * 128}
    ]
    assert dead == []
    assert summary.trimmed == FieldNotes(1, {"Lead.Title"})


def test_bad_lines_become_dead_letters_and_the_counts_add_up(org, tmp_path):
    no_email = identify("m2", {"name": "No Email"})
    no_name = {
        "type": "group",
        "messageId": "m3",
        "userId": "u",
        "groupId": "9",
        "traits": {},
        "integrations": ON,
    }
    disabled = identify("m4", {"email": "off@example.com"}, integrations={"Salesforce": False})
    track = {"type": "track", "messageId": "m5", "userId": "u", "event": "Signed Up", "integrations": ON}
    good = identify("m1", {"email": "good@example.com", "lastName": "Good"})
    events = ["{not json", "[1]", "", good, good, no_email, no_name, disabled, track, '{"type": "purchase"}']
    summary_path = tmp_path / "summary.json"

    summary, dead = run_pipeline(org, tmp_path, events, "--summary_output", str(summary_path))

    source = str(tmp_path / "events.jsonl")
    assert sorted(_without_time(dead), key=_canonical) == sorted(
        [
            {
                "stage": "parse",
                "reason": "invalid_json",
                "message": "line is not JSON: Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1)",
                "retryable": False,
                "event": "{not json",
                "source": source,
            },
            {
                "stage": "parse",
                "reason": "not_an_object",
                "message": "line is a JSON array, not an object (a Segment call)",
                "retryable": False,
                "event": "[1]",
                "source": source,
            },
            {
                "stage": "parse",
                "reason": "unknown_type",
                "message": "type 'purchase' is not one of identify, group, track, page, screen, alias",
                "retryable": False,
                "event": {"type": "purchase"},
                "source": source,
            },
            {
                "stage": "map",
                "reason": "missing_email",
                "message": "identify has no traits.email: a Lead cannot be matched without it; "
                "add traits.email",
                "retryable": False,
                "event": no_email,
                "source": source,
            },
            {
                "stage": "map",
                "reason": "missing_name",
                "message": "group has no traits.name: Salesforce requires an Account Name; add traits.name",
                "retryable": False,
                "event": no_name,
                "source": source,
            },
        ],
        key=_canonical,
    )
    assert records(org, "Lead") == [{"Email": "good@example.com", "LastName": "Good", "Company": "n/a"}]
    assert records(org, "Account") == []
    assert (summary.events_read, summary.blank_lines) == (9, 1)
    assert summary.written == {"Lead": {"create": 1}}
    assert summary.filtered == {"integration_disabled": 1, "no_action_for_track": 1}
    assert summary.deduplicated == 1
    assert summary.dead_lettered == {
        "invalid_json": 1,
        "not_an_object": 1,
        "unknown_type": 1,
        "missing_email": 1,
        "missing_name": 1,
    }
    assert summary.balanced
    assert json.loads(summary_path.read_text()) == json.loads(summary.to_json())


def test_bad_credentials_stop_the_run_before_reading(org, tmp_path, capsys, monkeypatch):
    events = write_lines(tmp_path / "events.jsonl", [identify("m1", {"email": "x@example.com"})])
    for name, value in {**environ(org), "SALESFORCE_PASSWORD": "wrong"}.items():
        monkeypatch.setenv(name, value)

    status = main(["--input", str(events), *connection_flags(org)])

    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(f"beamforce: configuration error: Salesforce login at {org.info['login_url']} as ")
    assert "INVALID_LOGIN" in err and "wrong" not in err and "Traceback" not in err
    assert records(org, "Lead") == []
    assert calls(org)["by_kind"] == {"login": 1}


def test_an_untrusted_certificate_names_the_ca_bundle_option(org, tmp_path, capsys, monkeypatch):
    import certifi  # a real CA bundle, but not the one that signed the emulator's certificate

    events = write_lines(tmp_path / "events.jsonl", [identify("m1", {"email": "x@example.com"})])
    for name, value in environ(org).items():
        monkeypatch.setenv(name, value)
    url = org.info["login_url"]

    status = main(
        ["--input", str(events), "--salesforce_login_url", url, "--salesforce_ca_bundle", certifi.where()]
    )

    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith(f"beamforce: configuration error: the certificate of {url} is not trusted (")
    # The bundle given is named: it is the one to fix.
    assert err.endswith(
        f"): --salesforce_ca_bundle {certifi.where()} does not hold the CA that signed it: give a PEM file "
        "of that CA's certificate\n"
    )
    assert calls(org)["total"] == 0  # refused in the TLS handshake, once: nothing reached the API


def test_a_login_host_that_does_not_resolve_names_the_login_url_option(org, tmp_path, capsys, monkeypatch):
    host = "login.beamforce.invalid"
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(name, *args, **kwargs):  # answers for `host` without asking a DNS server
        if name == host:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    events = write_lines(tmp_path / "events.jsonl", [identify("m1", {"email": "x@example.com"})])
    for name, value in environ(org).items():
        monkeypatch.setenv(name, value)

    status = main(
        [
            "--input",
            str(events),
            "--salesforce_login_url",
            f"https://{host}",
            "--salesforce_ca_bundle",
            org.info["ca_bundle"],
        ]
    )

    assert status == 2
    assert capsys.readouterr().err == (
        f"beamforce: configuration error: cannot log in at https://{host}: the host {host} does not "
        "resolve. Check --salesforce_login_url for a typo\n"
    )


def test_sandbox_user_logs_in_with_the_sandbox_name_appended(org, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default dead-letter location is under the current directory
    events = write_lines(
        tmp_path / "events.jsonl", [identify("m1", {"email": "s@example.com", "lastName": "S"})]
    )
    env = {
        "SALESFORCE_USERNAME": SANDBOX_USER["username"],  # as in production: --sandbox appends ".uat"
        "SALESFORCE_PASSWORD": SANDBOX_USER["password"],
        "SALESFORCE_SECURITY_TOKEN": SANDBOX_USER["security_token"],
    }
    # The emulator stands in for test.salesforce.com, so its URL is given explicitly.
    summary = run(["--input", str(events), "--sandbox", "uat", *connection_flags(org)], env)

    assert summary.written == {"Lead": {"create": 1}}
    assert records(org, "Lead") == [{"Email": "s@example.com", "LastName": "S", "Company": "n/a"}]


def seed(emu, sobject, fields):
    """Puts a record in the org as a data load would (read-only fields such as IsConverted allowed)."""
    return emu.admin("POST", f"/_emulator/records/{sobject}", json=fields)["id"]


def raw_records(emu, sobject):
    """Every stored field of the org's records, by Id."""
    return {r["Id"]: r for r in emu.admin("GET", f"/_emulator/records/{sobject}")["records"]}


def test_a_converted_lead_is_not_updated_and_its_event_is_dead_lettered(org, tmp_path):
    converted = {"LastName": "X", "Company": "Y", "Email": "conv@example.com", "IsConverted": True}
    converted_id = seed(org, "Lead", converted)
    before = raw_records(org, "Lead")
    to_converted = identify("m1", {"email": "CONV@example.com", "title": "Changed"})
    new = identify("m2", {"email": "new@example.com", "lastName": "New"})

    # --converted_leads dead_letter (the default, contact, updates the Contact it became).
    summary, dead = run_pipeline(org, tmp_path, [to_converted, new], "--converted_leads", "dead_letter")

    after = raw_records(org, "Lead")
    assert after[converted_id] == before[converted_id]  # not a field touched, LastModifiedDate included
    # (The org filled ConvertedContactId, ConvertedAccountId and ConvertedDate when it was seeded.)
    leads = [{k: v for k, v in r.items() if not k.startswith("Converted")} for r in records(org, "Lead")]
    assert sorted(leads, key=lambda r: r["Email"]) == [
        {"Email": "conv@example.com", "LastName": "X", "Company": "Y"},
        {"Email": "new@example.com", "LastName": "New", "Company": "n/a"},
    ]
    assert _without_time(dead) == [
        {
            "stage": "write",
            "reason": "lead_converted",
            "message": f"The Lead {converted_id} matching Email='CONV@example.com' was converted; "
            "Salesforce refuses updates to converted Leads",
            "retryable": False,
            "event": to_converted,
            "source": str(tmp_path / "events.jsonl"),
        }
    ]
    assert summary.events_read == 2
    assert summary.written == {"Lead": {"create": 1}}
    assert summary.dead_lettered == {"lead_converted": 1}
    assert (summary.events_filtered, summary.deduplicated, summary.ambiguous_matches) == (0, 0, {})
    assert summary.balanced


def test_several_leads_with_one_email_the_latest_is_updated_and_counted(org, tmp_path):
    # The newer record is seeded first: neither creation order nor Id may decide, only LastModifiedDate.
    newer_id = seed(
        org,
        "Lead",
        {
            "Email": "DUP@example.com",
            "LastName": "Newer",
            "Company": "B",
            "LastModifiedDate": "2026-03-01T00:00:00.000+0000",
        },
    )
    older_id = seed(
        org,
        "Lead",
        {
            "Email": "dup@example.com",
            "LastName": "Older",
            "Company": "A",
            "LastModifiedDate": "2026-02-01T00:00:00.000+0000",
        },
    )
    before = raw_records(org, "Lead")

    summary, dead = run_pipeline(
        org, tmp_path, [identify("m1", {"email": "dup@example.com", "title": "Updated"})]
    )

    after = raw_records(org, "Lead")
    assert after[older_id] == before[older_id]
    assert {k: after[newer_id][k] for k in ("Email", "LastName", "Company", "Title")} == {
        "Email": "dup@example.com",
        "LastName": "Newer",
        "Company": "B",
        "Title": "Updated",
    }
    assert after[newer_id]["LastModifiedDate"] > "2026-03-01T00:00:00.000+0000"
    assert dead == []
    assert summary.ambiguous_matches == {"Lead": 1}
    assert summary.written == {"Lead": {"update": 1}}
    assert (summary.events_read, summary.balanced) == (1, True)
    assert "Several records matched (the most recently modified one was updated):\n    Lead: 1" in (
        summary.format_text()
    )


TWO_ACTIONS_ON_LEAD = """\
version: 1
actions:
  - name: identify_lead
    trigger: identify
    object: Lead
    operation: upsert
    preset: segment_lead
    match:
      Email: traits.email
  - name: form_lead
    trigger: {track: Form Submitted}
    object: Lead
    operation: upsert
    match:
      Email: properties.email
    fields:
      Description: properties.message
    create_defaults:
      LastName: n/a
      Company: n/a
"""


def test_two_actions_upserting_one_lead_by_email_in_one_run_create_it_once(org, tmp_path):
    # Without docs/org-setup.md's fields, nothing but the pipeline keeps two writers of one new Lead apart:
    # the two actions' records of an email must be written one after the other, not by two batches at once.
    emails = [f"both{i}@example.com" for i in range(300)]
    events = []
    for i, email in enumerate(emails):
        events.append(identify(f"i{i}", {"email": email, "lastName": f"L{i}", "title": f"T{i}"}))
        events.append(
            {
                "type": "track",
                "event": "Form Submitted",
                "messageId": f"t{i}",
                "userId": f"user-i{i}",
                "timestamp": "2026-11-28T12:00:01.000Z",
                "properties": {"email": email, "message": f"M{i}"},
                "integrations": ON,
            }
        )
    actions = tmp_path / "actions.yaml"
    actions.write_text(TWO_ACTIONS_ON_LEAD, encoding="utf-8")

    summary, dead = run_pipeline(
        org,
        tmp_path,
        events,
        "--actions_config",
        str(actions),
        "--write_method",
        "rest",
        "--batch_size",
        "7",
        "--writer_threads",
        "8",
    )

    leads = {r["Email"]: (r["LastName"], r.get("Title"), r.get("Description")) for r in records(org, "Lead")}
    assert len(records(org, "Lead")) == len(emails)
    assert leads == {email: (f"L{i}", f"T{i}", f"M{i}") for i, email in enumerate(emails)}
    assert summary.records_written == {"Lead": {"create": 300, "update": 300}}
    assert dead == []
