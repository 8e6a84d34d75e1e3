"""A converted Lead's fields as its Contact takes them."""

import pytest

from schemas.records import MergedOp
from transforms.contact_mapping import contact_fields, contact_op


@pytest.mark.parametrize(
    ("lead", "contact"),
    [
        ({"FirstName": "Ann", "LastName": "Lee"}, {"FirstName": "Ann", "LastName": "Lee"}),
        ({"email": "a@example.com", "TITLE": "CTO"}, {"Email": "a@example.com", "Title": "CTO"}),
        (
            {"Street": "1 Main St", "City": "Austin", "State": "TX", "PostalCode": "78701", "Country": "USA"},
            {
                "MailingStreet": "1 Main St",
                "MailingCity": "Austin",
                "MailingState": "TX",
                "MailingPostalCode": "78701",
                "MailingCountry": "USA",
            },
        ),
        # What converts to the Account or the Opportunity, and the Lead's own state, stay behind.
        ({"Company": "Acme", "Website": "acme.com", "NumberOfEmployees": 5, "Status": "Open"}, {}),
        # Custom fields keep their names; fitting drops those the Contact lacks.
        ({"plan__c": "team", "Phone": "555"}, {"plan__c": "team", "Phone": "555"}),
        (
            {"MobilePhone": "1", "Fax": "2", "LeadSource": "Web", "Description": "d", "Salutation": "Dr."},
            {"MobilePhone": "1", "Fax": "2", "LeadSource": "Web", "Description": "d", "Salutation": "Dr."},
        ),
    ],
)
def test_contact_fields(lead, contact):
    assert contact_fields(lead) == contact


def test_contact_op_keeps_the_events_and_their_times_and_never_creates():
    op = MergedOp(
        sobject="Lead",
        match_field="Email",
        match_value="a@example.com",
        fields={"Title": "CTO", "Company": "Acme"},
        create_defaults={"LastName": "n/a", "Company": "n/a"},
        field_times={"Title": "2026-01-01T00:00:00.000Z", "Company": "2026-01-01T00:00:00.000Z"},
        refs=(),
    )
    contact = contact_op(op)
    assert (contact.sobject, contact.fields, contact.create_defaults) == ("Contact", {"Title": "CTO"}, {})
    assert contact.field_times == {"Title": "2026-01-01T00:00:00.000Z"}
    assert (contact.match_field, contact.match_value, contact.refs) == (
        op.match_field,
        op.match_value,
        op.refs,
    )
