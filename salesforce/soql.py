"""SOQL building: string literals and IN-list lookups split to fit Salesforce's URI and statement limits."""

from collections.abc import Iterable
from urllib.parse import quote_plus

# Salesforce answers 414 past 16,384 bytes of URI; SOQL statements may be 100,000 characters.
MAX_SOQL_CHARS = 100_000
DEFAULT_MAX_URL_BYTES = 16_000
DEFAULT_QUERY_PATH = "/services/data/v59.0/query/?q="

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


_ESCAPE_TABLE = str.maketrans(_ESCAPES)
# What quote_plus(safe="") never changes: a literal's unsafe characters are what deleting these leaves.
_UNCHANGED_BY_QUOTE_PLUS = str.maketrans(
    "", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
)


def quote(value: str) -> str:
    """The SOQL string literal for `value`: quoted, with \\' \\\\ \\" \\n \\r \\t \\b \\f escaped."""
    return "'" + value.translate(_ESCAPE_TABLE) + "'"


def fold(value: str) -> str:
    """The form two keys are compared in: SOQL's = and IN on text fields ignore case."""
    return value.lower()


def encoded_length(soql: str, api_path: str = DEFAULT_QUERY_PATH) -> int:
    """Bytes of the request URI (path and query string) that requests sends for `sf.query(soql)`.

    requests encodes `params` with urlencode, i.e. quote_plus over UTF-8 (space -> '+'), and its
    requoting leaves that output unchanged.
    """
    return len(api_path.encode("utf-8")) + _quote_plus_bytes(soql)


def _quote_plus_bytes(text: str) -> int:
    """len(quote_plus(text, safe="")), counted at C speed for ASCII text: a space is one byte ('+'),
    any other character quote_plus changes is three (%XX). Lookups count it for every key."""
    if not text.isascii():
        return len(quote_plus(text, safe=""))
    unsafe = text.translate(_UNCHANGED_BY_QUOTE_PLUS)
    return len(text) + 2 * (len(unsafe) - unsafe.count(" "))


def in_clause_queries(
    select: str,
    field: str,
    values: Iterable[str],
    max_url_bytes: int = DEFAULT_MAX_URL_BYTES,
    api_path: str = DEFAULT_QUERY_PATH,
    order_by: str | None = None,
) -> list[str]:
    """`select + " WHERE field IN ('a','b')"` statements covering every value once (case-insensitively).

    Each statement's URL-encoded request URI (`api_path` + encoded SOQL) is at most `max_url_bytes`
    and its text at most 100,000 characters. `order_by` (e.g. "LastModifiedDate DESC") is appended
    as an ORDER BY clause. Raises ValueError for a value too long to fit in a statement of its own.
    """
    head = f"{select} WHERE {field} IN ("
    tail = ")" + (f" ORDER BY {order_by}" if order_by else "")
    # Costs add up piece by piece: quote_plus works character by character, so the encoded
    # length of a concatenation is the sum of the encoded lengths of its parts.
    fixed_bytes = encoded_length(head + tail, api_path)
    fixed_chars = len(head) + len(tail)
    comma_bytes = _quote_plus_bytes(",")

    queries: list[str] = []
    literals: list[str] = []
    used_bytes, used_chars = fixed_bytes, fixed_chars
    seen: set[str] = set()
    for value in values:
        folded = fold(value)
        if folded in seen:
            continue
        seen.add(folded)
        literal = quote(value)
        lit_bytes = _quote_plus_bytes(literal)
        if fixed_bytes + lit_bytes > max_url_bytes or fixed_chars + len(literal) > MAX_SOQL_CHARS:
            raise ValueError(
                f"a {field} value of {len(value)} characters does not fit in one query of at most "
                f"{max_url_bytes} URI bytes"
            )
        extra_bytes = lit_bytes + (comma_bytes if literals else 0)
        extra_chars = len(literal) + (1 if literals else 0)
        if literals and (
            used_bytes + extra_bytes > max_url_bytes or used_chars + extra_chars > MAX_SOQL_CHARS
        ):
            queries.append(head + ",".join(literals) + tail)
            literals, used_bytes, used_chars = [], fixed_bytes, fixed_chars
            extra_bytes, extra_chars = lit_bytes, len(literal)
        literals.append(literal)
        used_bytes += extra_bytes
        used_chars += extra_chars
    if literals:
        queries.append(head + ",".join(literals) + tail)
    return queries
