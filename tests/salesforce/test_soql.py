"""Tables for SOQL literals and the IN-list splitter's byte budget, checked against what requests sends."""

import pytest
import requests

from salesforce.soql import MAX_SOQL_CHARS, encoded_length, fold, in_clause_queries, quote

SELECT = "SELECT Id, Email, LastModifiedDate FROM Lead"
PATH = "/services/data/v59.0/query/?q="


def sent_uri_bytes(soql: str, version: str = "59.0") -> int:
    """Length of the request URI exactly as simple-salesforce's sf.query() has requests build it."""
    prepared = requests.Request(
        "GET", f"https://example.my.salesforce.com/services/data/v{version}/query/", params={"q": soql}
    ).prepare()
    return len(prepared.path_url.encode("ascii"))


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain@example.com", "'plain@example.com'"),
        ("o'brien@example.com", r"'o\'brien@example.com'"),
        ("back\\slash@example.com", r"'back\\slash@example.com'"),
        ('say "hi"@example.com', r"'say \"hi\"@example.com'"),
        ("line\nbreak", r"'line\nbreak'"),
        ("cr\rtab\t", r"'cr\rtab\t'"),
        ("bell\bform\f", r"'bell\bform\f'"),
        ("\\'", r"'\\\''"),
        ("", "''"),
        ("josé@exämple.com", "'josé@exämple.com'"),
        ("日本@例え.jp", "'日本@例え.jp'"),
        ("100%_done", "'100%_done'"),  # % and _ are only special after LIKE
        ("a,b) OR Id != null", "'a,b) OR Id != null'"),
    ],
)
def test_quote(value: str, literal: str) -> None:
    assert quote(value) == literal


@pytest.mark.parametrize(
    "soql",
    [
        SELECT + " WHERE Email IN ('a@b.com')",
        SELECT + r" WHERE Email IN ('o\'b@x.com','c\\d@x.com')",
        SELECT + " WHERE Email IN ('josé@exämple.com','日本@例え.jp','a+b@x.com','~x@y')",
        SELECT + " WHERE Email IN ('100%_done&x=1#frag?y')",
        SELECT + " WHERE Email IN ('a b@x.com','\t\x7f\x00:/@!$&()*,;=[]{}|^`<>\"')",  # ASCII, counted fast
    ],
)
def test_encoded_length_is_what_requests_sends(soql: str) -> None:
    assert encoded_length(soql, PATH) == sent_uri_bytes(soql)


def test_values_are_deduplicated_ignoring_case_keeping_the_first() -> None:
    [query] = in_clause_queries(SELECT, "Email", ["A@x.com", "a@X.com", "b@x.com", "a@x.com", "B@X.COM"])
    assert query == SELECT + " WHERE Email IN ('A@x.com','b@x.com')"


def test_no_values_no_queries() -> None:
    assert in_clause_queries(SELECT, "Email", []) == []


def test_order_by_comes_after_the_in_list() -> None:
    [query] = in_clause_queries(SELECT, "Email", ["a@x.com"], order_by="LastModifiedDate DESC, Id DESC")
    assert query == SELECT + " WHERE Email IN ('a@x.com') ORDER BY LastModifiedDate DESC, Id DESC"


@pytest.mark.parametrize("budget", [300, 301, 302, 357, 1000, 4096])
@pytest.mark.parametrize(
    "values",
    [
        [f"person{i}@example.com" for i in range(200)],
        [f"o'brien+{i}@exä mple.com" for i in range(200)],  # quotes, pluses, spaces, two-byte characters
        [f"日本{i}\\@例え.jp" for i in range(200)],  # three-byte characters and backslashes
    ],
)
def test_split_respects_the_byte_budget_exactly(budget: int, values: list[str]) -> None:
    queries = in_clause_queries(SELECT, "Email", values, max_url_bytes=budget, api_path=PATH)
    for query in queries:
        assert sent_uri_bytes(query) <= budget
    # Every value exactly once, in order.
    literals = [q[len(SELECT + " WHERE Email IN (") : -1] for q in queries]
    assert ",".join(literals) == ",".join(quote(v) for v in values)
    # Greedy: adding the next query's first value would have broken the budget.
    for query, following in zip(queries, queries[1:], strict=False):
        first = following[len(SELECT + " WHERE Email IN (") :].split("',")[0].rstrip(")")
        first = first if first.endswith("'") else first + "'"
        grown = query[:-1] + "," + first + ")"
        assert sent_uri_bytes(grown) > budget


def test_a_query_may_use_the_budget_to_the_last_byte() -> None:
    values = ["a@x.com", "b@x.com"]
    [both] = in_clause_queries(SELECT, "Email", values, api_path=PATH)
    exact = sent_uri_bytes(both)
    assert in_clause_queries(SELECT, "Email", values, max_url_bytes=exact, api_path=PATH) == [both]
    assert len(in_clause_queries(SELECT, "Email", values, max_url_bytes=exact - 1, api_path=PATH)) == 2


def test_the_api_path_counts() -> None:
    values = [f"p{i}@example.com" for i in range(100)]
    short = in_clause_queries(SELECT, "Email", values, max_url_bytes=2000, api_path="/q?q=")
    long = in_clause_queries(SELECT, "Email", values, max_url_bytes=2000, api_path="/" + "x" * 1500 + "?q=")
    assert len(long) > len(short)
    assert all(encoded_length(q, "/" + "x" * 1500 + "?q=") <= 2000 for q in long)


def test_statement_length_stays_under_soqls_limit() -> None:
    # Plain ASCII encodes one byte a character, so a huge URI budget leaves SOQL's own limit to bind.
    values = [f"person{i:06d}@example.com" for i in range(10_000)]
    queries = in_clause_queries(SELECT, "Email", values, max_url_bytes=10_000_000)
    assert len(queries) > 1
    assert all(len(q) <= MAX_SOQL_CHARS for q in queries)


def test_a_value_that_cannot_fit_alone_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        in_clause_queries(SELECT, "Email", ["x" * 400], max_url_bytes=300)


def test_fold_ignores_case() -> None:
    assert fold("Peter.Gibbons@Example.COM") == fold("peter.gibbons@example.com")
