"""Leads seeded as converted: the Contact and Account convertLead would create, and the API's view of them."""

from datetime import UTC, datetime

import pytest

from emulator.process import EmulatorError
from tests.emulator.conftest import API

# Stamped with the time of the seed; the tests compare everything else.
_STAMPS = ("CreatedDate", "LastModifiedDate", "SystemModstamp", "ConvertedDate")
USER = "005000000000001AAA"
ADDRESS = {
    "Street": "1 Main St",
    "City": "Springfield",
    "State": "IL",
    "PostalCode": "62701",
    "Country": "US",
}
LEAD = {
    "FirstName": "Jane",
    "LastName": "Doe",
    "Company": "Acme",
    "Email": "jane@example.com",
    "Phone": "555-0100",
    "Title": "CTO",
    **ADDRESS,
    "Description": "Met at the fair",
    "IsConverted": True,
}


def seed(emu, sobject: str, record: dict) -> str:
    return emu.admin("POST", f"records/{sobject}", json=record)["id"]


def stored(emu, sobject: str) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in _STAMPS}
        for r in emu.admin("GET", f"records/{sobject}")["records"]
    ]


def compound(prefix: str) -> dict:
    values = {"street": "1 Main St", "city": "Springfield", "state": "IL", "postalCode": "62701"}
    return {
        f"{prefix}Address": {
            **values,
            "country": "US",
            "latitude": None,
            "longitude": None,
            "geocodeAccuracy": None,
        },
        **{f"{prefix}{k}": v for k, v in ADDRESS.items()},
    }


def audit(record_id: str) -> dict:
    return {
        "Id": record_id,
        "IsDeleted": False,
        "OwnerId": USER,
        "CreatedById": USER,
        "LastModifiedById": USER,
    }


def test_a_converted_seed_creates_its_contact_and_account(emu):
    before = datetime.now(UTC).date().isoformat()
    lead_id = seed(emu, "Lead", LEAD)
    after = datetime.now(UTC).date().isoformat()

    [account] = stored(emu, "Account")
    [contact] = stored(emu, "Contact")
    assert account == {
        **audit(account["Id"]),
        "Name": "Acme",
        "Phone": "555-0100",
        **compound("Billing"),
    }
    assert contact == {
        **audit(contact["Id"]),
        "HasOptedOutOfEmail": False,
        "HasOptedOutOfFax": False,
        "DoNotCall": False,
        "IsEmailBounced": False,
        "AccountId": account["Id"],
        "FirstName": "Jane",
        "LastName": "Doe",
        "Name": "Jane Doe",
        "Email": "jane@example.com",
        "Phone": "555-0100",
        "Title": "CTO",
        "Description": "Met at the fair",
        **compound("Mailing"),
    }
    [lead] = emu.admin("GET", "records/Lead")["records"]
    assert lead["ConvertedDate"] in (before, after)
    assert {k: lead[k] for k in ("Id", "IsConverted", "ConvertedContactId", "ConvertedAccountId")} == {
        "Id": lead_id,
        "IsConverted": True,
        "ConvertedContactId": contact["Id"],
        "ConvertedAccountId": account["Id"],
    }


def test_the_api_reads_it_and_cannot_update_it(emu, sf, raw):
    lead_id = seed(emu, "Lead", LEAD)
    [contact] = stored(emu, "Contact")
    rows = sf.query("SELECT Id, Email, IsConverted, ConvertedContactId FROM Lead")["records"]
    assert rows == [
        {
            "attributes": {"type": "Lead", "url": f"/services/data/v{API}/sobjects/Lead/{lead_id}"},
            "Id": lead_id,
            "Email": "jane@example.com",
            "IsConverted": True,
            "ConvertedContactId": contact["Id"],
        }
    ]
    refused = {"message": "cannot reference converted lead", "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD"}
    update = raw("PATCH", f"sobjects/Lead/{lead_id}", json={"Title": "CEO"})
    assert (update.status_code, update.json()) == (400, [{**refused, "fields": []}])


@pytest.mark.parametrize(
    ("names", "account_name"),
    [
        ({"Company": "Acme"}, "Acme"),
        ({"FirstName": "Jane", "MiddleName": "Q", "LastName": "Doe", "Suffix": "Jr."}, "Jane Q Doe Jr."),
        ({"LastName": "Doe"}, "Doe"),
    ],
)
def test_the_account_is_named_after_the_company_or_else_the_person(emu, names, account_name):
    seed(emu, "Lead", {"LastName": "Doe", **names, "IsConverted": True})
    assert [a["Name"] for a in stored(emu, "Account")] == [account_name]


def test_a_given_converted_contact_is_kept(emu):
    contact_id = seed(emu, "Contact", {"LastName": "Doe"})
    lead_id = seed(emu, "Lead", {**LEAD, "ConvertedContactId": contact_id, "ConvertedDate": "2024-05-01"})
    [lead] = emu.admin("GET", "records/Lead")["records"]
    assert (
        lead["Id"],
        lead["ConvertedContactId"],
        lead.get("ConvertedAccountId"),
        lead["ConvertedDate"],
    ) == (
        lead_id,
        contact_id,
        None,
        "2024-05-01",
    )
    assert ([c["Id"] for c in stored(emu, "Contact")], stored(emu, "Account")) == ([contact_id], [])


def test_a_given_converted_account_gets_the_contact(emu):
    account_id = seed(emu, "Account", {"Name": "Existing"})
    seed(emu, "Lead", {**LEAD, "ConvertedAccountId": account_id})
    [contact] = stored(emu, "Contact")
    [lead] = emu.admin("GET", "records/Lead")["records"]
    assert (contact["AccountId"], lead["ConvertedAccountId"], lead["ConvertedContactId"]) == (
        account_id,
        account_id,
        contact["Id"],
    )
    assert [a["Name"] for a in stored(emu, "Account")] == ["Existing"]


@pytest.mark.parametrize("converted", [{}, {"IsConverted": False}])
def test_an_unconverted_seed_creates_nothing_else(emu, converted):
    fields = {k: v for k, v in LEAD.items() if k != "IsConverted"}
    seed(emu, "Lead", {**fields, **converted})
    [lead] = emu.admin("GET", "records/Lead")["records"]
    assert (stored(emu, "Contact"), stored(emu, "Account"), lead.get("ConvertedContactId")) == ([], [], None)


def test_a_refused_seed_list_leaves_no_contact_behind(emu):
    with pytest.raises(EmulatorError, match="HTTP 400"):
        emu.admin("POST", "records/Lead", json=[LEAD, {"LastName": "X", "Email": "not-an-email"}])
    assert (stored(emu, "Lead"), stored(emu, "Contact"), stored(emu, "Account")) == ([], [], [])
