"""query / queryAll with server-side cursors: 2,000-record pages, nextRecordsUrl, batch size, errors."""

import re

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.emulator.conftest import API, calls


def _create_leads(sf, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 200):
        records = [
            {"attributes": {"type": "Lead"}, "LastName": f"L{i:05d}", "Company": "Paging Inc"}
            for i in range(start, min(start + 200, count))
        ]
        results = sf.restful("composite/sobjects", method="POST", json={"records": records})
        ids += [r["id"] for r in results]
    return ids


@pytest.fixture
def leads(emu, sf) -> list[str]:
    created = _create_leads(sf, 4500)
    emu.admin("POST", "calls/reset")
    return created


def test_query_pages_at_2000_records(emu, sf, leads):
    first = sf.query("SELECT Id, LastName FROM Lead ORDER BY LastName")
    assert (first["totalSize"], first["done"], len(first["records"])) == (4500, False, 2000)
    match = re.fullmatch(rf"/services/data/v{API}/query/(01g\w{{15}})-2000", first["nextRecordsUrl"])
    assert match is not None
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert (second["done"], len(second["records"])) == (False, 2000)
    assert second["nextRecordsUrl"] == f"/services/data/v{API}/query/{match.group(1)}-4000"
    third = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert (third["totalSize"], third["done"], len(third["records"])) == (4500, True, 500)
    assert "nextRecordsUrl" not in third
    names = [r["LastName"] for page in (first, second, third) for r in page["records"]]
    assert names == [f"L{i:05d}" for i in range(4500)]
    assert calls(emu) == {"query": 3}


def test_query_all_follows_every_page(emu, sf, leads):
    result = sf.query_all("SELECT Id FROM Lead")
    assert (result["totalSize"], result["done"]) == (4500, True)
    assert sorted(r["Id"] for r in result["records"]) == sorted(leads)
    assert calls(emu) == {"query": 3}


def test_query_more_by_locator_and_replay(emu, sf, leads):
    first = sf.query("SELECT Id FROM Lead")
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    by_locator = sf.query_more(locator)
    assert by_locator == sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)


@pytest.mark.parametrize(("asked", "page"), [("500", 500), ("100", 200), ("5000", 2000), ("x", 2000)])
def test_batch_size_header(emu, raw, leads, asked, page):
    response = raw(
        "GET",
        "query/",
        params={"q": "SELECT Id FROM Lead"},
        headers={"Sforce-Query-Options": f"batchSize={asked}"},
    )
    assert len(response.json()["records"]) == page
    more = raw("GET", response.json()["nextRecordsUrl"], absolute=True)
    assert len(more.json()["records"]) == page


def test_count_query(emu, sf, leads):
    assert sf.query("SELECT COUNT() FROM Lead") == {"totalSize": 4500, "done": True, "records": []}


def test_query_all_sees_deleted_records(emu, sf):
    lead_id = sf.Lead.create({"LastName": "Gone", "Company": "X"})["id"]
    sf.Lead.delete(lead_id)
    assert sf.query("SELECT Id FROM Lead")["totalSize"] == 0
    deleted = sf.query("SELECT Id, IsDeleted FROM Lead", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in deleted] == [(lead_id, True)]


def test_invalid_locator(emu, raw):
    for locator in ("01g000000000000AAA-2000", "junk", "01g8c0000000001AAA-x"):
        response = raw("GET", f"query/{locator}")
        assert (response.status_code, response.json()) == (
            400,
            [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}],
        )


def test_missing_query_string(emu, raw):
    response = raw("GET", "query/")
    assert (response.status_code, response.json()) == (
        400,
        [{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}],
    )


@pytest.mark.parametrize(
    ("soql", "code", "contains"),
    [
        ("SELECT Id FROM", "MALFORMED_QUERY", "ERROR at Row:1:Column:"),
        ("SELECT Id, Foo FROM Lead", "INVALID_FIELD", "No such column 'Foo' on entity 'Lead'."),
        ("SELECT Id FROM Nope", "INVALID_TYPE", "sObject type 'Nope' is not supported."),
    ],
)
def test_soql_errors_are_400(emu, sf, soql, code, contains):
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    assert err.value.status == 400
    [error] = err.value.content
    assert error["errorCode"] == code
    assert contains in error["message"]
