"""Tests of Salesforce record ids: checksum suffix, 15/18 conversion, validation and generation."""

import pytest

from emulator import ids


@pytest.mark.parametrize(
    ("id15", "suffix"),
    [
        ("001D000000IqhSL", "IAZ"),  # the sample id of Salesforce's "Create a Record" documentation
        ("005000000000001", "AAA"),  # no uppercase letter: every chunk encodes 0
        ("00QABCDE0000000", "2HA"),  # "00QAB": bits 2,3,4 -> 28 -> "2"; "CDE00": bits 0,1,2 -> 7 -> "H"
        ("aaaaaAAAAAzzzzz", "A5A"),
        ("ZZZZZZZZZZZZZZZ", "555"),
    ],
)
def test_checksum(id15, suffix):
    assert ids.checksum(id15) == suffix


def _checksum_by_the_rule(text: str) -> str:
    """Salesforce's rule spelt out: bit i of chunk c is set when char 5c+i is an ASCII capital."""
    return "".join(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")]
        for chunk in (text[0:5], text[5:10], text[10:15])
    )


@pytest.mark.parametrize(
    "text",
    [
        "001D000000IqhSL",
        "ÄÖÜ000000000000",  # not ASCII: capitals beyond A-Z set no bit
        "00QAB",  # shorter or longer than 15 characters
        "00QABCDE0000000XYZ",
        "",
        "A-Z_a z!0000000",
    ],
)
def test_checksum_follows_the_rule_for_any_text(text):
    assert ids.checksum(text) == _checksum_by_the_rule(text)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("001D000000IqhSL", "001D000000IqhSLIAZ"),
        ("001D000000IqhSLIAZ", "001D000000IqhSLIAZ"),
        ("001d000000iqhsliaz", "001D000000IqhSLIAZ"),  # 18-char ids are case-insensitive
        ("001D000000IQHSLIAZ", "001D000000IqhSLIAZ"),
        ("005000000000001", "005000000000001AAA"),
    ],
)
def test_to18(given, canonical):
    assert ids.to18(given) == canonical
    assert ids.is_valid(given)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "001D000000IqhS",  # 14 chars
        "001D000000IqhSLIA",  # 17 chars
        "001D000000IqhSLIAZX",  # 19 chars
        "001D000000Iqh-L",  # not alphanumeric
        "001D000000IqhSLIA9",  # '9' is not a suffix character
        "001D000000IqhSL5AZ",  # suffix says chunk 1 is all uppercase, but it holds digits
    ],
)
def test_malformed(bad):
    assert not ids.is_valid(bad)
    with pytest.raises(ValueError, match=f"malformed id {bad}"):
        ids.to18(bad)


@pytest.mark.parametrize("value", [None, 15, b"001D000000IqhSL"])
def test_non_strings_are_not_ids(value):
    assert not ids.is_valid(value)


@pytest.mark.parametrize(
    ("prefix", "sequence", "expected"),
    [
        ("00Q", 1, "00Q8c0000000001EAA"),  # the Q of the prefix is uppercase: first chunk "E"
        ("001", 61, "0018c000000000zAAA"),
        ("003", 62, "0038c0000000010AAA"),
        ("500", 62**9 - 1, "5008c0zzzzzzzzzAAA"),
    ],
)
def test_make_id(prefix, sequence, expected):
    made = ids.make_id(prefix, sequence)
    assert made == expected
    assert ids.to18(made) == made


def test_make_id_is_unique_per_sequence():
    made = {ids.make_id("00Q", n) for n in range(5000)}
    assert len(made) == 5000


@pytest.mark.parametrize(("prefix", "sequence"), [("00", 1), ("00QQ", 1), ("00Q", -1), ("00Q", 62**9)])
def test_make_id_rejects(prefix, sequence):
    with pytest.raises(ValueError):
        ids.make_id(prefix, sequence)
