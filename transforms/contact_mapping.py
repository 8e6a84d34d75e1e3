"""A converted Lead's fields as its Contact takes them (Salesforce's standard conversion mapping)."""

import dataclasses
from typing import Any

from schemas.records import MergedOp

SOBJECT = "Contact"

# Lead field -> Contact field, as Salesforce's lead conversion maps standard fields. Lead fields that
# convert to the Account or Opportunity (Company, Website, Industry, NumberOfEmployees, Rating) and the
# Lead's own state (Status) have no place on the Contact. Custom fields keep their names: the org maps
# them to Contact fields of the same name, and fitting drops those the Contact lacks (and says so).
LEAD_TO_CONTACT: dict[str, str] = {
    "salutation": "Salutation",
    "firstname": "FirstName",
    "lastname": "LastName",
    "email": "Email",
    "phone": "Phone",
    "mobilephone": "MobilePhone",
    "fax": "Fax",
    "title": "Title",
    "leadsource": "LeadSource",
    "description": "Description",
    "street": "MailingStreet",
    "city": "MailingCity",
    "state": "MailingState",
    "postalcode": "MailingPostalCode",
    "country": "MailingCountry",
}
CUSTOM_SUFFIX = "__c"


def contact_fields(lead_fields: dict[str, Any]) -> dict[str, Any]:
    """The Contact fields of a Lead's: standard ones renamed, custom ones as they are, others left out."""
    out: dict[str, Any] = {}
    for name, value in lead_fields.items():
        target = LEAD_TO_CONTACT.get(name.lower())
        if target is None and name.lower().endswith(CUSTOM_SUFFIX):
            target = name
        if target is not None:
            out[target] = value
    return out


def contact_op(op: MergedOp) -> MergedOp:
    """`op` (a merged Lead update) as an update of the Contact the Lead was converted to."""
    fields = contact_fields(op.fields)
    times = contact_fields(op.field_times)
    return dataclasses.replace(op, sobject=SOBJECT, fields=fields, create_defaults={}, field_times=times)
