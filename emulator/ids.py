"""Salesforce record ids: 15-character base plus the 3-character case-safe checksum suffix."""

import re

_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM = re.compile(r"[0-9A-Za-z]+")
# Characters 4-6 of a real id name the pod/instance; ours is fixed so ids look like an org's.
_INSTANCE = "8c0"
_CASE_BITS = bytes(ord("1") if ord("A") <= b <= ord("Z") else ord("0") for b in range(256))


def checksum(id15: str) -> str:
    """The 3-character suffix: one char per 5-char chunk, encoding which of its chars are uppercase."""
    if len(id15) == 15 and id15.isascii():
        # Each chunk's bits as a binary number, its first char the lowest bit (the loop below, in C).
        bits = id15.encode().translate(_CASE_BITS)
        return (
            _SUFFIX_CHARS[int(bits[4::-1], 2)]
            + _SUFFIX_CHARS[int(bits[9:4:-1], 2)]
            + _SUFFIX_CHARS[int(bits[14:9:-1], 2)]
        )
    out = []
    for start in (0, 5, 10):
        bits = 0
        for i, ch in enumerate(id15[start : start + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX_CHARS[bits])
    return "".join(out)


def to18(record_id: str) -> str:
    """The canonical 18-character form of a 15- or 18-character id; ValueError if malformed."""
    if len(record_id) not in (15, 18) or not _ALNUM.fullmatch(record_id):
        raise ValueError(f"malformed id {record_id}")
    if len(record_id) == 15:
        return record_id + checksum(record_id)
    # 18-char ids are case-insensitive: the suffix says which letters of the base are uppercase.
    suffix = record_id[15:].upper()
    if checksum(record_id[:15]) == suffix:
        return record_id[:15] + suffix  # already canonical, as the ids the org hands out are
    if any(c not in _SUFFIX_CHARS for c in suffix):
        raise ValueError(f"malformed id {record_id}")
    chars = []
    for chunk, code in enumerate(suffix):
        bits = _SUFFIX_CHARS.index(code)
        for i, ch in enumerate(record_id[chunk * 5 : chunk * 5 + 5]):
            upper = bool(bits >> i & 1)
            if upper and not ch.isalpha():
                raise ValueError(f"malformed id {record_id}")
            chars.append(ch.upper() if upper else ch.lower())
    return "".join(chars) + suffix


def is_valid(record_id: object) -> bool:
    """Whether `record_id` is a well-formed 15- or 18-character Salesforce id."""
    if not isinstance(record_id, str):
        return False
    try:
        to18(record_id)
    except ValueError:
        return False
    return True


def make_id(key_prefix: str, sequence: int) -> str:
    """The 18-character id number `sequence` of an object with `key_prefix` (3 chars)."""
    if len(key_prefix) != 3 or sequence < 0:
        raise ValueError("key_prefix must be 3 characters and sequence non-negative")
    digits = []
    n = sequence
    while n:
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    number = "".join(reversed(digits)).rjust(9, "0")
    if len(number) > 9:
        raise ValueError(f"sequence {sequence} does not fit in an id")
    id15 = key_prefix + _INSTANCE + number
    return id15 + checksum(id15)
