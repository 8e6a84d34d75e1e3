"""Tests for the emulator's SOQL subset: results, ordering, literals and Salesforce-shaped errors."""

from datetime import UTC, datetime

import pytest

from emulator.soql import Compare, SoqlError, execute, invalid_type, parse

FIELD_TYPES = {
    "Id": "id",
    "Email": "email",
    "LastName": "string",
    "Company": "string",
    "Status": "picklist",
    "Description": "textarea",
    "NumberOfEmployees": "int",
    "AnnualRevenue": "currency",
    "IsConverted": "boolean",
    "CreatedDate": "datetime",
    "Birthdate__c": "date",
    "OwnerId": "reference",
}


def _id(n: int) -> str:
    return f"00Q00000000000{n}AAA"


ROWS = [
    {
        "Id": _id(1),
        "Email": "ann@example.com",
        "LastName": "Ann",
        "Company": "Acme",
        "Status": "Open",
        "NumberOfEmployees": 10,
        "AnnualRevenue": 1000.5,
        "IsConverted": False,
        "CreatedDate": "2026-11-01T10:00:00.000+0000",
        "Birthdate__c": "1990-05-01",
    },
    {
        "Id": _id(2),
        "Email": "Bob.O'Brien@Example.com",
        "LastName": "O'Brien",
        "Company": "acme",
        "Status": "Working",
        "NumberOfEmployees": 200,
        "AnnualRevenue": None,
        "IsConverted": True,
        "CreatedDate": "2026-11-28T18:00:00.000+0000",
    },
    {
        "Id": _id(3),
        "Email": "back\\slash@example.com",
        "LastName": "Back",
        "Company": "Globex",
        "Status": "Open",
        "AnnualRevenue": 50,
        "IsConverted": False,
        "CreatedDate": "2026-11-27T23:59:59.000+0000",
        "Birthdate__c": "2000-01-01",
    },
    {
        "Id": _id(4),
        "Email": None,
        "LastName": "100%_Sure",
        "Company": "Initech",
        "Status": None,
        "Description": "line1\nline2",
        "NumberOfEmployees": 5,
        "IsConverted": False,
        "CreatedDate": "2025-01-01T00:00:00.000+0000",
    },
]

NOW = datetime(2026, 11, 28, 18, 30, tzinfo=UTC)  # a Saturday

WSDL = "Please reference your WSDL or the describe call for the appropriate names."


def _numbers(soql: str) -> list[int]:
    """The rows a query returns, as the row numbers 1-4 (the 15th character of their Id)."""
    result = execute(parse(soql), ROWS, FIELD_TYPES, now=NOW)
    assert isinstance(result, list)
    return [int(r["Id"][14]) for r in result]


def _error(soql: str) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        execute(parse(soql), ROWS, FIELD_TYPES, now=NOW)
    return info.value


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # = and != on strings: case-insensitive; a null field differs from every value
        ("Email = 'ANN@example.com'", [1]),
        ("Email = 'bob.o\\'brien@example.com'", [2]),
        ("Email = 'back\\\\slash@example.com'", [3]),
        ("Email != 'ann@example.com'", [2, 3, 4]),
        ("Email <> 'ann@example.com'", [2, 3, 4]),
        ("Email = null", [4]),
        ("Email != null", [1, 2, 3]),
        ("Email < null", []),
        ("Status = 'open' AND Company LIKE 'g%'", [3]),
        ("LastName > 'b'", [2, 3]),  # 'Back' > 'b': ordering of strings is case-insensitive too
        ("LastName < 'B'", [1, 4]),
        ("Description = 'line1\\nline2'", [4]),
        # numbers
        ("NumberOfEmployees > 10", [2]),
        ("NumberOfEmployees >= 10", [1, 2]),
        ("NumberOfEmployees < 10", [4]),
        ("NumberOfEmployees <= 10", [1, 4]),
        ("NumberOfEmployees = 10.0", [1]),
        ("NumberOfEmployees != 10", [2, 3, 4]),
        ("AnnualRevenue < 100", [3]),
        ("AnnualRevenue > -1.5", [1, 3]),
        ("NumberOfEmployees IN (5, 200)", [2, 4]),
        # booleans
        ("IsConverted = true", [2]),
        ("IsConverted = FALSE", [1, 3, 4]),
        ("IsConverted IN (true)", [2]),
        # datetimes compare by instant, whatever the literal's form
        ("CreatedDate > 2026-11-28T00:00:00Z", [2]),
        ("CreatedDate = 2026-11-28T18:00:00.000+0000", [2]),
        ("CreatedDate = 2026-11-28T20:00:00+02:00", [2]),
        ("CreatedDate < 2026-01-01T00:00:00Z", [4]),
        ("CreatedDate >= 2026-11-27T23:59:59Z", [2, 3]),
        # dates
        ("Birthdate__c < 1995-01-01", [1]),
        ("Birthdate__c = 2000-01-01", [3]),
        ("Birthdate__c != 2000-01-01", [1, 2, 4]),
        # IN / NOT IN: case-insensitive; NOT IN keeps nulls unless null is listed
        ("Company IN ('ACME', 'initech')", [1, 2, 4]),
        ("Company NOT IN ('acme')", [3, 4]),
        ("Status NOT IN ('Open')", [2, 4]),
        ("Status NOT IN ('Open', null)", [2]),
        ("Status IN ('Open', null)", [1, 3, 4]),
        ("Email IN ('BOB.O\\'BRIEN@EXAMPLE.COM', 'back\\\\slash@example.com')", [2, 3]),
        # LIKE: % and _, case-insensitive, \% and \_ literal, whole value
        ("Email LIKE '%@EXAMPLE.com'", [1, 2, 3]),
        ("LastName LIKE 'o\\'%'", [2]),
        ("LastName LIKE '_nn'", [1]),
        ("LastName LIKE 'an'", []),
        ("LastName LIKE '100\\%\\_%'", [4]),
        ("LastName LIKE '100%'", [4]),
        ("LastName LIKE '1_0\\%%'", [4]),
        ("LastName LIKE 'Ann\\_'", []),
        ("Email LIKE '%\\\\%'", [3]),
        ("Description LIKE 'line1%line2'", [4]),
        ("Email LIKE '%.%'", [1, 2, 3]),  # regex characters are literal
        # AND, OR, NOT, parentheses
        ("NOT Company = 'acme'", [3, 4]),
        ("Company = 'acme' AND NumberOfEmployees > 50", [2]),
        ("Company = 'Globex' OR Email = null", [3, 4]),
        ("(Company = 'acme' OR Company = 'globex') AND IsConverted = false", [1, 3]),
        ("NOT (Company = 'acme' OR Status = null)", [3]),
        ("Company = 'acme' AND (NOT Status = 'open')", [2]),
        ("((Email != null))", [1, 2, 3]),
        ("Email = 'a' OR Email = 'b' OR Email LIKE 'ann%'", [1]),
        # ids: 15 and 18 characters name the same record; 15 are case-sensitive, while an 18-character
        # id is case-insensitive (its suffix says which letters of the first 15 are uppercase)
        ("Id = '00Q000000000001'", [1]),
        ("Id = '00q000000000001'", []),
        ("Id = '00Q000000000001EAA'", [1]),
        ("Id = '00q000000000001eaa'", [1]),
        ("Id = '00Q000000000001AAA'", []),  # this suffix says the Q is lowercase: another record
        ("Id IN ('00Q000000000002', '00Q000000000003EAA')", [2, 3]),
        ("Id != '00Q000000000002'", [1, 3, 4]),
        ("OwnerId = null", [1, 2, 3, 4]),
        # a field qualified with the queried object's name
        ("Lead.Email = 'ann@example.com'", [1]),
    ],
)
def test_where(where: str, expected: list[int]) -> None:
    assert _numbers(f"SELECT Id FROM Lead WHERE {where}") == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("CreatedDate = TODAY", [2]),
        ("CreatedDate = YESTERDAY", [3]),
        ("CreatedDate = TOMORROW", []),
        ("CreatedDate != TODAY", [1, 3, 4]),
        ("CreatedDate > YESTERDAY", [2]),
        ("CreatedDate >= YESTERDAY", [2, 3]),
        ("CreatedDate <= YESTERDAY", [1, 3, 4]),
        ("CreatedDate < YESTERDAY", [1, 4]),
        ("CreatedDate = LAST_N_DAYS:1", [2, 3]),
        ("CreatedDate = last_n_days:30", [1, 2, 3]),
        ("CreatedDate = N_DAYS_AGO:27", [1]),
        ("CreatedDate = THIS_WEEK", [2, 3]),  # the week of Sunday 2026-11-22
        ("CreatedDate = THIS_MONTH", [1, 2, 3]),
        ("CreatedDate < THIS_MONTH", [4]),
        ("CreatedDate = THIS_YEAR", [1, 2, 3]),
        ("CreatedDate = LAST_YEAR", [4]),
        ("CreatedDate = NEXT_N_DAYS:5", []),
        ("Birthdate__c = LAST_N_YEARS:40", [1, 3]),
        ("Birthdate__c = TODAY", []),
        # Other literals' bounds beyond year 1 were made too, and failed (year -974, a 500).
        ("CreatedDate = LAST_N_DAYS:3000", [1, 2, 3, 4]),
        # A bound beyond the years a date holds: the first or the last day there is.
        ("CreatedDate = LAST_N_DAYS:2147483647", [1, 2, 3, 4]),
        ("CreatedDate = N_DAYS_AGO:2147483647", []),
        ("Birthdate__c = LAST_N_YEARS:9999", [1, 3]),
        ("CreatedDate = NEXT_N_YEARS:9999", []),
        ("CreatedDate = NEXT_N_MONTHS:2147483647", []),
    ],
)
def test_relative_date_literals(where: str, expected: list[int]) -> None:
    assert _numbers(f"SELECT Id FROM Lead WHERE {where}") == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("Company", [1, 2, 3, 4]),  # 'Acme' and 'acme' tie: input order kept
        ("Company DESC", [4, 3, 1, 2]),
        ("LastName", [4, 1, 3, 2]),
        ("NumberOfEmployees", [3, 4, 1, 2]),  # ASC: nulls first
        ("NumberOfEmployees ASC", [3, 4, 1, 2]),
        ("NumberOfEmployees DESC", [2, 1, 4, 3]),  # DESC: nulls last
        ("NumberOfEmployees ASC NULLS LAST", [4, 1, 2, 3]),
        ("NumberOfEmployees desc nulls first", [3, 2, 1, 4]),
        ("Status, LastName DESC", [4, 3, 1, 2]),
        ("IsConverted DESC, Id", [2, 1, 3, 4]),
        ("CreatedDate DESC", [2, 3, 1, 4]),
        ("Birthdate__c DESC NULLS LAST, Id DESC", [3, 1, 4, 2]),
    ],
)
def test_order_by(order_by: str, expected: list[int]) -> None:
    assert _numbers(f"SELECT Id FROM Lead ORDER BY {order_by}") == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("ORDER BY LastName LIMIT 2", [4, 1]),
        ("ORDER BY LastName LIMIT 2 OFFSET 1", [1, 3]),
        ("ORDER BY LastName OFFSET 3", [2]),
        ("LIMIT 0", []),
        ("LIMIT 100", [1, 2, 3, 4]),
        ("WHERE Company = 'acme' ORDER BY Id DESC LIMIT 1", [2]),
    ],
)
def test_limit_and_offset(tail: str, expected: list[int]) -> None:
    assert _numbers(f"SELECT Id FROM Lead {tail}") == expected


@pytest.mark.parametrize(
    ("soql", "expected"),
    [
        ("SELECT COUNT() FROM Lead", 4),
        ("SELECT COUNT() FROM Lead WHERE Company = 'acme'", 2),
        ("select count() from Lead where Email = null", 1),
        ("SELECT COUNT() FROM Lead LIMIT 3", 3),
    ],
)
def test_count(soql: str, expected: int) -> None:
    query = parse(soql)
    assert query.is_count and query.fields == ()
    assert execute(query, ROWS, FIELD_TYPES, now=NOW) == expected


@pytest.mark.parametrize(
    ("soql", "code", "message"),
    [
        (
            "SELECT Id FROM Lead OFFSET 2001",
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Maximum SOQL offset allowed is 2000",
        ),
        # Beyond a Java int; int() itself fails past 4,300 digits (a 500 before).
        ("SELECT Id FROM Lead LIMIT 2147483648", "MALFORMED_QUERY", "unexpected token: '2147483648'"),
        ("SELECT Id FROM Lead LIMIT " + "9" * 5000, "MALFORMED_QUERY", "unexpected token: '999"),
        ("SELECT Id FROM Lead OFFSET " + "9" * 5000, "MALFORMED_QUERY", "unexpected token: '999"),
        (
            "SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS:" + "9" * 5000,
            "MALFORMED_QUERY",
            "unexpected token: 'LAST_N_DAYS:999",
        ),
    ],
)
def test_counts_out_of_range(soql: str, code: str, message: str) -> None:
    with pytest.raises(SoqlError) as raised:
        parse(soql)
    assert raised.value.error_code == code
    assert message in raised.value.message


def test_the_largest_counts_are_read() -> None:
    assert parse("SELECT Id FROM Lead LIMIT 2147483647 OFFSET 2000").limit == 2147483647
    assert _numbers("SELECT Id FROM Lead ORDER BY Id OFFSET 2000") == []


def test_select_returns_canonical_names_in_select_order_with_nulls() -> None:
    query = parse("SELECT lastname, EMAIL, Lead.Id, annualrevenue FROM Lead WHERE Id = '00Q000000000002'")
    assert query.fields == ("lastname", "EMAIL", "Lead.Id", "annualrevenue")
    assert query.sobject == "Lead"
    result = execute(query, ROWS, FIELD_TYPES)
    assert result == [
        {"LastName": "O'Brien", "Email": "Bob.O'Brien@Example.com", "Id": _id(2), "AnnualRevenue": None}
    ]
    assert list(result[0]) == ["LastName", "Email", "Id", "AnnualRevenue"]


def test_keywords_are_case_insensitive() -> None:
    soql = (
        "select Id from Lead where email in ('ANN@EXAMPLE.COM') and not isconverted = TRUE order by email asc"
    )
    assert _numbers(soql + " nulls last limit 1 offset 0") == [1]
    assert parse("SeLeCt Id FrOm Lead LiMiT 7").limit == 7


def test_field_names_that_start_with_keywords_are_fields() -> None:
    types = {
        "Id": "id",
        "Industry": "picklist",
        "Notes__c": "string",
        "OrderNumber__c": "string",
        "Selected__c": "boolean",
    }
    rows = [{"Id": _id(1), "Industry": "Tech", "Notes__c": "n", "OrderNumber__c": "7", "Selected__c": True}]
    query = parse(
        "SELECT Id FROM Lead WHERE Industry IN ('tech') AND Notes__c = 'N' AND OrderNumber__c LIKE '7' "
        "AND Selected__c = true ORDER BY OrderNumber__c"
    )
    assert execute(query, rows, types) == [{"Id": _id(1)}]


def test_order_is_an_object_name_not_a_keyword_and_rows_may_be_any_iterable() -> None:
    query = parse("SELECT Id FROM Order ORDER BY Id DESC LIMIT 2")
    assert (query.sobject, query.limit) == ("Order", 2)
    assert execute(query, (r for r in ROWS), FIELD_TYPES) == [{"Id": _id(4)}, {"Id": _id(3)}]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'plain'", "plain"),
        ("'o\\'brien'", "o'brien"),
        ("'back\\\\slash'", "back\\slash"),
        ("'say \\\"hi\\\"'", 'say "hi"'),
        ("'a\\nb\\rc\\td\\be\\ff'", "a\nb\rc\td\be\ff"),
        ("'caf\\u00e9'", "café"),
        ("'\\%\\_'", "%_"),
        ("'100%'", "100%"),
        ("''", ""),
        ("'multi word with \"double\" quotes'", 'multi word with "double" quotes'),
    ],
)
def test_string_escapes(literal: str, value: str) -> None:
    where = parse(f"SELECT Id FROM Lead WHERE Email = {literal}").where
    assert isinstance(where, Compare)
    assert where.literal.value == value


def _at(query: str, column: int, detail: str, echo_from: int = 0) -> str:
    """Salesforce's message for an error in a one-line query, echoed from `echo_from`, caret under `column`.

    Salesforce echoes only the neighbourhood of the error (here: whole tokens within 40 characters).
    """
    caret = " " * (column - 1 - echo_from)
    return f"\n{query[echo_from:]}\n{caret}^\nERROR at Row:1:Column:{column}\n{detail}"


@pytest.mark.parametrize(
    ("soql", "message"),
    [
        (
            "SELECT Id FROM Lead WHERE",
            "\nSELECT Id FROM Lead WHERE\n                         ^\nERROR at Row:1:Column:26\n"
            "unexpected token: '<EOF>'",
        ),
        ("SELECT Id FROM Lead WHERE   ", _at("SELECT Id FROM Lead WHERE", 26, "unexpected token: '<EOF>'")),
        ("SELECT Id, FROM Lead", _at("SELECT Id, FROM Lead", 12, "unexpected token: 'FROM'")),
        ("SELECT FROM Lead", _at("SELECT FROM Lead", 8, "unexpected token: 'FROM'")),
        ("SELECT Id FROM", _at("SELECT Id FROM", 15, "unexpected token: '<EOF>'")),
        ("DELETE FROM Lead", _at("DELETE FROM Lead", 1, "unexpected token: 'DELETE'")),
        ("", "\n\n^\nERROR at Row:1:Column:1\nunexpected token: '<EOF>'"),
        ("SELECT Id FROM Lead LIMIT x", _at("SELECT Id FROM Lead LIMIT x", 27, "unexpected token: 'x'")),
        ("SELECT Id FROM Lead LIMIT 1.5", _at("SELECT Id FROM Lead LIMIT 1.5", 28, "unexpected token: '.5'")),
        (
            "SELECT Id FROM Lead WHERE Email IN ()",
            _at("SELECT Id FROM Lead WHERE Email IN ()", 37, "unexpected token: ')'"),
        ),
        (
            "SELECT Id FROM Lead WHERE Email LIKE 5",
            _at("SELECT Id FROM Lead WHERE Email LIKE 5", 38, "unexpected token: '5'"),
        ),
        (
            "SELECT Id FROM Lead WHERE Email = = 'x'",
            _at("SELECT Id FROM Lead WHERE Email = = 'x'", 35, "unexpected token: '='"),
        ),
        (
            "SELECT Id FROM Lead WHERE Email 'x'",
            _at("SELECT Id FROM Lead WHERE Email 'x'", 33, "unexpected token: ''x''"),
        ),
        (
            "SELECT Id FROM Lead WHERE Email = 'it''s'",
            _at("SELECT Id FROM Lead WHERE Email = 'it''s'", 39, "unexpected token: ''s''"),
        ),
        (
            "SELECT Id FROM Lead WHERE A = 1 AND B = 2 OR C = 3",
            "\nId FROM Lead WHERE A = 1 AND B = 2 OR C = 3\n"
            "                                   ^\nERROR at Row:1:Column:43\nunexpected token: 'OR'",
        ),
        (
            "SELECT Id FROM Lead WHERE Email = 'a\\qb'",
            _at(
                "SELECT Id FROM Lead WHERE Email = 'a\\qb'",
                35,
                "Invalid string literal 'a\\qb'. Illegal character sequence '\\q' in string literal.",
            ),
        ),
        (
            "SELECT Id FROM Lead WHERE CreatedDate = 2026-02-30T00:00:00Z",
            _at(
                "SELECT Id FROM Lead WHERE CreatedDate = 2026-02-30T00:00:00Z",
                41,
                "unexpected token: '2026-02-30T00:00:00Z'",
            ),
        ),
        (
            "SELECT Id\nFROM Lead\nWHERE Email = = 'x'",
            "\nWHERE Email = = 'x'\n              ^\nERROR at Row:3:Column:15\nunexpected token: '='",
        ),
        # errors from the lexer carry no caret, as Salesforce's do
        ("SELECT Id FROM Lead WHERE Email = 'abc", "line 1:38 mismatched character '<EOF>' expecting '''"),
        ('SELECT Id FROM Lead WHERE Email = "abc"', "line 1:34 no viable alternative at character '\"'"),
        ("SELECT Id FROM Lead WHERE Email = #", "line 1:34 no viable alternative at character '#'"),
        (
            "SELECT Id FROM Lead WHERE Email = 'caf\\u00e'",
            _at(
                "SELECT Id FROM Lead WHERE Email = 'caf\\u00e'",
                35,
                "Invalid string literal 'caf\\u00e'. Illegal character sequence '\\u' in string literal.",
            ),
        ),
    ],
)
def test_malformed_query(soql: str, message: str) -> None:
    with pytest.raises(SoqlError) as info:
        parse(soql)
    assert (info.value.error_code, info.value.message) == ("MALFORMED_QUERY", message)


def _no_such(field: str, entity: str) -> str:
    return (
        f"No such column '{field}' on entity '{entity}'. If you are attempting to use a custom field, "
        f"be sure to append the '__c' after the custom field name. {WSDL}"
    )


def _must_be(field: str, type_name: str, quoted: bool = False) -> str:
    should = "should" if quoted else "should not"
    return (
        f"value of filter criterion for field '{field}' must be of type {type_name} and {should} "
        "be enclosed in quotes"
    )


# Salesforce's own message for this query, as the reference quotes it, character for character.
SALESFORCE_INVALID_FIELD = (
    "\nSELECT Id, Foo FROM Lead\n           ^\nERROR at Row:1:Column:12\n"
    "No such column 'Foo' on entity 'Lead'. If you are attempting to use a custom field, be sure to "
    "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)


@pytest.mark.parametrize(
    ("soql", "code", "column", "detail"),
    [
        ("SELECT Id FROM Lead WHERE Foo__c = 'x'", "INVALID_FIELD", 27, _no_such("Foo__c", "Lead")),
        ("SELECT Id FROM Lead ORDER BY Bar", "INVALID_FIELD", 30, _no_such("Bar", "Lead")),
        # SELECT is checked before WHERE: Salesforce reports the first unknown name
        ("SELECT Nope FROM lead WHERE Bad = 1", "INVALID_FIELD", 8, _no_such("Nope", "lead")),
        (
            "SELECT Id, Owner.Name FROM Lead",
            "INVALID_FIELD",
            12,
            "Didn't understand relationship 'Owner' in field path. If you are attempting to use a custom "
            f"relationship, be sure to append the '__r' after the custom relationship name. {WSDL}",
        ),
        (
            "SELECT Id FROM Lead WHERE NumberOfEmployees = '5'",
            "INVALID_FIELD",
            47,
            _must_be("NumberOfEmployees", "integer"),
        ),
        (
            "SELECT Id FROM Lead WHERE AnnualRevenue IN (1, '2')",
            "INVALID_FIELD",
            48,
            _must_be("AnnualRevenue", "double"),
        ),
        (
            "SELECT Id FROM Lead WHERE Email = 5",
            "INVALID_FIELD",
            35,
            _must_be("Email", "string", quoted=True),
        ),
        (
            "SELECT Id FROM Lead WHERE IsConverted = 'true'",
            "INVALID_FIELD",
            41,
            _must_be("IsConverted", "boolean"),
        ),
        (
            "SELECT Id FROM Lead WHERE CreatedDate > 2026-01-01",
            "INVALID_FIELD",
            41,
            _must_be("CreatedDate", "dateTime"),
        ),
        (
            "SELECT Id FROM Lead WHERE Birthdate__c = '2026-01-01'",
            "INVALID_FIELD",
            42,
            _must_be("Birthdate__c", "date"),
        ),
        (
            "SELECT Id FROM Lead WHERE AnnualRevenue LIKE '5%'",
            "INVALID_FIELD",
            46,
            _must_be("AnnualRevenue", "double"),
        ),
        ("SELECT Id FROM Lead WHERE Id = 'abc'", "MALFORMED_QUERY", 32, "invalid ID field: abc"),
        (  # a suffix that cannot be: it marks digits as uppercase
            "SELECT Id FROM Lead WHERE Id = '00Q000000000001XYZ'",
            "MALFORMED_QUERY",
            32,
            "invalid ID field: 00Q000000000001XYZ",
        ),
        (
            "SELECT Id FROM Lead WHERE CreatedDate IN (TODAY)",
            "MALFORMED_QUERY",
            43,
            "unexpected token: 'TODAY'",
        ),
    ],
)
def test_errors_found_against_the_object(soql: str, code: str, column: int, detail: str) -> None:
    error = _error(soql)
    echo_from = 0 if column <= 41 else len("SELECT ")  # the 40 characters before the error, whole tokens
    assert (error.error_code, error.message) == (code, _at(soql, column, detail, echo_from))


def test_invalid_field_message_is_salesforces() -> None:
    error = _error("SELECT Id, Foo FROM Lead")
    assert (error.error_code, error.message) == ("INVALID_FIELD", SALESFORCE_INVALID_FIELD)


def test_invalid_id_in_a_list_points_at_the_bad_value() -> None:
    error = _error("SELECT Id FROM Lead WHERE OwnerId IN ('005000000000001AAA', '005-bad')")
    assert (error.error_code, error.message) == (
        "MALFORMED_QUERY",
        "\nWHERE OwnerId IN ('005000000000001AAA', '005-bad')\n"
        "                                        ^\nERROR at Row:1:Column:61\ninvalid ID field: 005-bad",
    )


def test_invalid_field_in_a_long_query_echoes_only_the_neighbourhood() -> None:
    values = ", ".join(f"'user{i}@example.com'" for i in range(300))
    soql = f"SELECT Id FROM Lead WHERE Email IN ({values}) AND Nope__c = 1"
    error = _error(soql)
    column = soql.index("Nope__c") + 1
    assert error.error_code == "INVALID_FIELD"
    assert error.message == (
        "\n, 'user299@example.com') AND Nope__c = 1\n"
        "                             ^\n"
        f"ERROR at Row:1:Column:{column}\n" + _no_such("Nope__c", "Lead")
    )


def test_invalid_type_names_the_object() -> None:
    error = invalid_type(parse("SELECT Id FROM Foo"))
    assert (error.error_code, error.message) == (
        "INVALID_TYPE",
        "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
        "sObject type 'Foo' is not supported. If you are attempting to use a custom object, be sure to "
        "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.",
    )


def test_parse_is_cached_and_queries_are_immutable() -> None:
    soql = "SELECT Id FROM Lead WHERE Email IN ('a@b.c') ORDER BY Id LIMIT 5"
    assert parse(soql) is parse(soql)
    assert hash(parse(soql)) == hash(parse(soql))


def test_big_in_list_over_thousands_of_rows() -> None:
    rows = [
        {
            "Id": f"00Q{i:012d}AAA",
            "Email": f"firstname.o'neil-{i:04d}@marketing.subdomain.example-company.com",
            "CreatedDate": None,
        }
        for i in range(3000)
    ]
    wanted = list(range(0, 3000, 10))  # 300 values, upper-cased and escaped as the pipeline sends them
    values = ",".join("'" + rows[i]["Email"].upper().replace("'", "\\'") + "'" for i in wanted)
    soql = f"SELECT Id, Email, CreatedDate FROM Lead WHERE Email IN ({values}) ORDER BY Email"
    assert len(soql) > 16_000
    result = execute(parse(soql), rows, FIELD_TYPES)
    assert isinstance(result, list)
    assert sorted(r["Id"] for r in result) == sorted(rows[i]["Id"] for i in wanted)
    assert [r["Email"] for r in result] == sorted(rows[i]["Email"] for i in wanted)
    assert execute(parse(soql.replace(" IN (", " NOT IN (")), rows, FIELD_TYPES) == [
        {"Id": r["Id"], "Email": r["Email"], "CreatedDate": None}
        for r in sorted((rows[i] for i in range(3000) if i % 10), key=lambda r: r["Email"])
    ]


@pytest.mark.parametrize(
    "where, required",
    [
        ("Email = 'a@x.com'", [("Email", ("a@x.com",))]),
        ("Lead.Email IN ('a@x.com', 'B@x.com')", [("Email", ("a@x.com", "B@x.com"))]),
        ("Name = 'n' AND (Code__c IN ('1') AND Tier__c != 'x')", [("Code__c", ("1",)), ("Name", ("n",))]),
        ("Email = 'a' OR Name = 'n'", []),  # either may hold: neither is required
        ("NOT Email = 'a'", []),
        ("Email NOT IN ('a')", []),
        ("Email != 'a'", []),
        ("Email IN ('a', null)", []),  # a null is in no index
        ("Email = null", []),
        ("Amount__c = 5", []),  # a number: compared as one, not as text
        ("Account.Name = 'n'", []),  # another object's field
    ],
)
def test_required_values_are_the_equalities_every_match_must_meet(where, required):
    from emulator.soql import required_values

    query = parse(f"SELECT Id FROM Lead WHERE {where}")
    assert sorted(required_values(query)) == required


def test_a_query_without_where_requires_nothing():
    from emulator.soql import required_values

    assert list(required_values(parse("SELECT Id FROM Lead"))) == []
