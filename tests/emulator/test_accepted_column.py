"""Bulk's check of a whole column (accepted_column) answers as validate's check of each value (accepted)."""

import pytest

from emulator.objects import Field
from emulator.validation import REFUSED, accepted, accepted_column

TEXT = Field("Title", "Title", "string", length=10)
EMAIL = Field("Email", "Email", "email", length=80)
RATING = Field("Rating", "Rating", "picklist", length=40, picklist=("Hot", "Warm", "Cold"), restricted=True)
SOURCE = Field("LeadSource", "Lead Source", "picklist", length=40, picklist=("Web",))
BORN = Field("Born__c", "Born", "date")
REVENUE = Field("AnnualRevenue", "Annual Revenue", "currency", precision=18, scale=2)
SCORE = Field("Score__c", "Score", "double", precision=5, scale=2)
EMPLOYEES = Field("NumberOfEmployees", "Employees", "int", digits=8)
ACTIVE = Field("Active__c", "Active", "boolean")

COLUMNS = [
    (TEXT, ["VP", "CTO", "0123456789"]),
    (TEXT, ["VP", "01234567890"]),  # one too long
    (TEXT, ["VP", "\U0001f600" * 5, "\U0001f600" * 6]),  # UTF-16: 10 units fit, 12 do not
    (TEXT, ["VP", 7, True]),  # not text: each value alone
    (EMAIL, ["a@example.com", "b.c@example.org"]),
    (EMAIL, ["a@example.com", "not an email"]),
    (EMAIL, ["a@example.com", "x" * 70 + "@example.com"]),
    (RATING, ["Hot", "Cold"]),
    (RATING, ["Hot", "Lukewarm"]),
    (SOURCE, ["Web", "Anything goes"]),
    (BORN, ["2026-02-28", "2024-02-29"]),
    (BORN, ["2026-02-28", "2026-02-30", "2026-13-01"]),
    (BORN, ["2026-02-28", "2026-02-28T10:00:00Z"]),
    (REVENUE, ["1", "2.345", "-0.005", "1e3"]),
    (REVENUE, ["1", "1e30"]),
    (SCORE, ["999.99", "999.995"]),  # rounded to 1000.00: out of range
    (SCORE, ["1.5", "abc"]),
    (REVENUE, [1.5, 2]),  # JSON numbers: each value alone
    (EMPLOYEES, [1, 99999999, 100000000]),
    (ACTIVE, [True, False]),
    (ACTIVE, [True, "true", "no"]),
    (TEXT, ["VP", None]),
    (TEXT, ["VP", ""]),
]


@pytest.mark.parametrize("field, values", COLUMNS)
def test_a_column_is_accepted_as_each_of_its_values(field, values):
    assert accepted_column(field, values) == [accepted(field, value) for value in values]


def test_the_columns_cover_both_answers():
    answers = [a for field, values in COLUMNS for a in accepted_column(field, values)]
    assert REFUSED in answers
    assert any(a is not REFUSED for a in answers)
