"""Lone UTF-16 surrogates (JSON's `"\\ud800"`), which UTF-8 text cannot hold, as U+FFFD."""

import re
from typing import Any

REPLACEMENT = "\ufffd"

# json.loads joins a valid pair of escapes into one character: a surrogate left after it is a lone one.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def may_hold_surrogates(raw: bytes) -> bool:
    """False when the JSON text `raw` cannot decode to a surrogate, so that most bodies skip the walk."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def replace_surrogates(value: Any) -> Any:
    """`value` with every surrogate in its strings, keys included, as U+FFFD.

    Salesforce stores text as UTF-8: what it gives back holds no surrogate either. Recursive, so
    RecursionError for a value nested too deeply (the caller's JSON parser answers those anyway).
    """
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, list):
        return [replace_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {replace_surrogates(k): replace_surrogates(v) for k, v in value.items()}
    return value


def replace_surrogates_in_text(text: str) -> str:
    """`text` with every surrogate character as U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, text)
