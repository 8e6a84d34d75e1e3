"""Acceptance: SOQL over query/queryAll as a user writes it, and paging as the REST API guide documents it."""

import re

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.emulator.conftest import API, Raw

NAMES = ["O'Brien", "back\\slash", "per%cent", "under_score", 'Quote"d', "plain", "PLAIN2"]
_LOCATOR = re.compile(rf"/services/data/v{re.escape(API)}/query/[0-9A-Za-z]+-(\d+)")


@pytest.fixture
def people(emu) -> dict[str, str]:
    """LastName -> Id of leads whose names need escaping, with distinct CreatedDates."""
    ids = emu.admin(
        "POST",
        "records/Lead",
        [
            {"LastName": name, "Company": "C", "CreatedDate": f"2024-01-0{i + 1}T12:00:00.000+0000"}
            for i, name in enumerate(NAMES)
        ],
    )["ids"]
    return dict(zip(NAMES, ids, strict=True))


def _names(sf: Salesforce, soql: str) -> list[str]:
    return [r["LastName"] for r in sf.query(soql)["records"]]


def _literal(value: str) -> str:
    """A SOQL string literal, escaped as the SOQL reference defines (backslash first)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"') + "'"


def test_query_records_carry_attributes_with_type_and_url(sf: Salesforce, people: dict):
    result = sf.query("SELECT Id, LastName FROM Lead WHERE LastName = 'plain'")

    record_id = people["plain"]
    assert result == {
        "totalSize": 1,
        "done": True,
        "records": [
            {
                "attributes": {"type": "Lead", "url": f"/services/data/v{API}/sobjects/Lead/{record_id}"},
                "Id": record_id,
                "LastName": "plain",
            }
        ],
    }


def test_unselected_id_still_gives_attributes_url_but_no_id_field(sf: Salesforce, people: dict):
    [record] = sf.query("SELECT LastName FROM Lead WHERE LastName = 'plain'")["records"]

    assert record == {
        "attributes": {"type": "Lead", "url": f"/services/data/v{API}/sobjects/Lead/{people['plain']}"},
        "LastName": "plain",
    }


@pytest.mark.parametrize("name", NAMES)
def test_equals_with_escaped_literals(sf: Salesforce, people: dict, name: str):
    assert _names(sf, f"SELECT LastName FROM Lead WHERE LastName = {_literal(name)}") == [name]


def test_in_with_quotes_and_backslashes(sf: Salesforce, people: dict):
    wanted = ["O'Brien", "back\\slash", 'Quote"d']
    soql = (
        f"SELECT LastName FROM Lead WHERE LastName IN ({', '.join(map(_literal, wanted))}) ORDER BY LastName"
    )

    assert _names(sf, soql) == ["back\\slash", "O'Brien", 'Quote"d']


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("pla%", ["plain", "PLAIN2"]),  # case-insensitive, % for any run
        ("p_ain", ["plain"]),  # _ for one character
        ("per\\%%", ["per%cent"]),  # \% is a literal percent sign
        ("under\\_%", ["under_score"]),  # \_ is a literal underscore
        ("%'%", ["O'Brien"]),
    ],
)
def test_like(sf: Salesforce, people: dict, pattern: str, expected: list[str]):
    literal = "'" + pattern.replace("'", "\\'") + "'"

    assert (
        _names(sf, f"SELECT LastName FROM Lead WHERE LastName LIKE {literal} ORDER BY LastName") == expected
    )


def test_id_literals_of_15_and_18_characters_in_any_case(sf: Salesforce, people: dict):
    record_id = people["plain"]

    for literal in (record_id, record_id[:15], record_id.lower(), record_id.upper()):
        [record] = sf.query(f"SELECT Id FROM Lead WHERE Id IN ('{literal}')")["records"]
        assert record["Id"] == record_id, literal
    # A 15-character id is case-sensitive: lowercased, it names another (absent) record.
    assert sf.query(f"SELECT Id FROM Lead WHERE Id = '{record_id[:15].lower()}'")["totalSize"] == 0


def test_string_equality_is_case_insensitive(sf: Salesforce, people: dict):
    assert _names(sf, "SELECT LastName FROM Lead WHERE LastName = 'PLAIN'") == ["plain"]


def test_order_by_dates_both_ways_and_limit(sf: Salesforce, people: dict):
    newest = _names(sf, "SELECT LastName FROM Lead ORDER BY CreatedDate DESC LIMIT 2")
    oldest = _names(sf, "SELECT LastName FROM Lead ORDER BY CreatedDate ASC LIMIT 2")

    assert newest == ["PLAIN2", "plain"]
    assert oldest == ["O'Brien", "back\\slash"]


def test_datetime_literals_compare_with_datetimes(sf: Salesforce, people: dict):
    soql = "SELECT LastName FROM Lead WHERE CreatedDate >= 2024-01-06T00:00:00Z ORDER BY CreatedDate"

    assert _names(sf, soql) == ["plain", "PLAIN2"]


def test_and_or_not_parentheses_and_null(sf: Salesforce, people: dict):
    soql = (
        "SELECT LastName FROM Lead WHERE Email = null AND NOT (LastName LIKE 'p%' OR LastName LIKE 'u%') "
        "AND LastName NOT IN ('Quote\\\"d') ORDER BY LastName"
    )

    assert _names(sf, soql) == ["back\\slash", "O'Brien"]


def test_count_answers_total_size_and_no_records(sf: Salesforce, people: dict):
    assert sf.query("SELECT COUNT() FROM Lead") == {"totalSize": 7, "done": True, "records": []}
    assert sf.query("SELECT COUNT() FROM Lead WHERE LastName LIKE 'p%'")["totalSize"] == 3


def test_query_all_sees_deleted_records_and_query_does_not(sf: Salesforce, people: dict):
    sf.Lead.delete(people["plain"])

    live = sf.query("SELECT Id FROM Lead WHERE LastName = 'plain'")
    everything = sf.query_all("SELECT Id, IsDeleted FROM Lead WHERE LastName = 'plain'", include_deleted=True)

    assert live["totalSize"] == 0
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]] == [(people["plain"], True)]


@pytest.mark.parametrize(
    ("soql", "code", "tail"),
    [
        ("SELECT Id, Shoe__c FROM Lead", "INVALID_FIELD", "No such column 'Shoe__c' on entity 'Lead'."),
        ("SELECT Id FROM Widget", "INVALID_TYPE", "sObject type 'Widget' is not supported."),
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
        ("SELECT FROM Lead", "MALFORMED_QUERY", "unexpected token: 'FROM'"),
    ],
)
def test_soql_errors_have_salesforces_code_and_row_column(raw: Raw, soql: str, code: str, tail: str):
    response = raw("GET", "query/", params={"q": soql})

    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == code
    assert error["message"].startswith(f"\n{soql}\n")
    assert "\nERROR at Row:1:Column:" in error["message"]
    assert tail in error["message"]


def test_simple_salesforce_raises_malformed_request_for_bad_soql(sf: Salesforce):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELEC Id FROM Lead")

    assert caught.value.content[0]["errorCode"] == "MALFORMED_QUERY"


# ------------------------------------------------------------------------------------------ paging


@pytest.fixture
def many(emu) -> int:
    count = 2450
    emu.admin("POST", "records/Lead", [{"LastName": f"L{i:04d}", "Company": "C"} for i in range(count)])
    return count


def test_pages_of_2000_with_next_records_url_and_total_size(raw: Raw, many: int):
    first = raw("GET", "query/", params={"q": "SELECT Id, LastName FROM Lead ORDER BY LastName"}).json()

    assert (first["totalSize"], first["done"], len(first["records"])) == (many, False, 2000)
    match = _LOCATOR.fullmatch(first["nextRecordsUrl"])
    assert match is not None and match.group(1) == "2000"
    second = raw("GET", first["nextRecordsUrl"], absolute=True).json()
    assert (second["totalSize"], second["done"], len(second["records"])) == (many, True, many - 2000)
    assert "nextRecordsUrl" not in second
    assert second["records"][0]["LastName"] == "L2000"


def test_batch_size_header_sets_the_page_size(raw: Raw, many: int):
    headers = {"Sforce-Query-Options": "batchSize=200"}

    first = raw("GET", "query/", params={"q": "SELECT Id FROM Lead"}, headers=headers).json()

    assert (first["totalSize"], first["done"], len(first["records"])) == (many, False, 200)
    assert first["nextRecordsUrl"].endswith("-200")


def test_limit_above_a_page_still_pages(raw: Raw, many: int):
    first = raw("GET", "query/", params={"q": "SELECT Id FROM Lead LIMIT 2100"}).json()
    second = raw("GET", first["nextRecordsUrl"], absolute=True).json()

    assert (first["totalSize"], len(first["records"]), first["done"]) == (2100, 2000, False)
    assert (second["totalSize"], len(second["records"]), second["done"]) == (2100, 100, True)


def test_query_all_and_iter_walk_every_page(sf: Salesforce, many: int):
    result = sf.query_all("SELECT Id FROM Lead")
    ids = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Lead")]

    assert (result["totalSize"], len(result["records"]), result["done"]) == (many, many, True)
    assert len(ids) == len(set(ids)) == many


def test_query_all_pages_carry_deleted_records_under_a_query_url(emu, raw: Raw, sf: Salesforce):
    # "The URI specified in the nextRecordsUrl field of a QueryAll response body contains query instead
    # of queryAll ... you can use either ... The remaining results include deleted records" (REST guide).
    ids = emu.admin("POST", "records/Lead", [{"LastName": f"L{i:03d}", "Company": "C"} for i in range(250)])[
        "ids"
    ]
    sf.Lead.delete(ids[-1])
    soql = "SELECT Id, IsDeleted FROM Lead ORDER BY LastName"

    first = raw(
        "GET", "queryAll/", params={"q": soql}, headers={"Sforce-Query-Options": "batchSize=200"}
    ).json()
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    via_query = raw("GET", first["nextRecordsUrl"], absolute=True).json()
    via_query_all = raw("GET", f"queryAll/{locator}").json()

    assert _LOCATOR.fullmatch(first["nextRecordsUrl"]) is not None
    assert (first["totalSize"], len(first["records"])) == (250, 200)
    assert via_query == via_query_all
    assert (via_query["done"], len(via_query["records"])) == (True, 50)
    assert via_query["records"][-1] == {
        "attributes": {"type": "Lead", "url": f"/services/data/v{API}/sobjects/Lead/{ids[-1]}"},
        "Id": ids[-1],
        "IsDeleted": True,
    }


def test_an_unknown_locator_is_invalid_query_locator(raw: Raw):
    response = raw("GET", "query/01gXXXXXXXXXXXXXXX-2000")

    assert response.status_code == 400
    assert response.json() == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]
