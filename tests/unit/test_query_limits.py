"""Keys against the size of a lookup query, and rows against Bulk CSV quoting: the fast checks agree
with the exact ones."""

from types import SimpleNamespace

import pytest

from salesforce.bulk import _csv_line, _csv_value, encode_csv, read_csv
from salesforce.connection import ConnectionSettings
from salesforce.soql import fold
from salesforce.upsert import _Entry, _reject_unqueryable, _Upsert


def _run() -> _Upsert:
    # queries() reads only the client's API version; no call is made.
    return _Upsert(SimpleNamespace(settings=ConnectionSettings()), "Lead", "Email", "IsConverted")


def _fits(run: _Upsert, key: str) -> bool:
    try:
        run.queries([_Entry(key, {}, {})])
    except ValueError:
        return False
    return True


def test_exactly_the_keys_no_query_can_hold_are_refused() -> None:
    run = _run()
    # Around the limit, in characters of every cost: plain, escaped and URL-encoded, multi-byte, spaces.
    keys = [c * n for c in ("a", "'", "\\", "\n", "é", "😀", " ", "%") for n in range(500, 16_500, 500)]
    entries = {fold(k): _Entry(k, {}, {}) for k in keys}

    _reject_unqueryable(run, entries)

    refused = {k for k in keys if entries[fold(k)].outcome is not None}
    assert refused == {k for k in keys if not _fits(run, k)}
    assert 0 < len(refused) < len(keys)
    assert {entries[fold(k)].outcome.error_code for k in refused} == {"KEY_TOO_LONG"}


@pytest.mark.parametrize("length", [0, 1, 80, 2_000])
def test_keys_that_fit_are_left_alone(length: int) -> None:
    entries = {str(n): _Entry(f"{n}" + "'" * length, {}, {}) for n in range(3)}

    _reject_unqueryable(_run(), entries)

    assert [e.outcome for e in entries.values()] == [None, None, None]


@pytest.mark.parametrize(
    "row",
    [
        [],
        [""],
        ["a"],
        ["a", "b", ""],
        ["a,b"],
        ["x", "a,b", "y"],
        ['say "hi"'],
        ["two\nlines"],
        ["lone\rcr"],
        ["crlf\r\n"],
        [",", ",", ","],
        ["ünï 😀", "#N/A"],
    ],
)
def test_a_row_is_quoted_exactly_where_a_value_needs_it(row: list[str]) -> None:
    assert _csv_line(row) == ",".join(map(_csv_value, row)) + "\n"
    if "".join(row):  # a line with nothing on it is no row for a CSV reader
        assert read_csv(encode_csv(["h"] * len(row), [row]).decode("utf-8"))[1] == [row]
