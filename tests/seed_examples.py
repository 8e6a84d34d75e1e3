"""The seed document's example calls (examples/events/seed-calls.jsonl) and the records it documents."""

from pathlib import Path

SEED_CALLS_FILE = Path(__file__).resolve().parents[1] / "examples" / "events" / "seed-calls.jsonl"

# The calls as JSON lines, verbatim: the first identify is the seed's JavaScript object literal with
# `state` twice ('California', then 'RI'); the last one wins, in JavaScript as in JSON parsers.
SEED_IDENTIFY_FLAT, SEED_IDENTIFY_OBJECTS, SEED_GROUP = SEED_CALLS_FILE.read_text().splitlines()

# What both identify calls make of the Lead (Status is Salesforce's default, not ours).
SEED_LEAD = {
    "FirstName": "Peter",
    "LastName": "Gibbons",
    "Title": "VP of Derp",
    "Email": "peter.gibbons@example.com",
    "Company": "Initech",
    "Phone": "570-690-4150",
    "Rating": "Hot",
    "Street": "19123 forest lane",
    "City": "east greenwich",
    "State": "RI",
    "PostalCode": "94115",
    "Country": "USA",
}

# Exactly the record the seed documents for its group call.
SEED_ACCOUNT = {
    "Name": "Teemo Industries",
    "AccountNumber": "813",
    "BillingCity": "East Greenwich",
    "BillingCountry": "US",
    "BillingPostalCode": "02818",
    "BillingState": "RI",
    "BillingStreet": "9000 Forest Lane",
    "NumberOfEmployees": 4,
    "Phone": "222-555-4444",
    "Website": "https://example.com",
    "Description": "Makes great husky products",
}
