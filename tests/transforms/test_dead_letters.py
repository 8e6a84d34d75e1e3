"""WriteDeadLetters: counted by reason, written as JSON lines when a prefix is given."""

import glob
import json

import apache_beam as beam
import pytest

from schemas.dead_letter import DeadLetter
from tests.transforms.conftest import run_and_count
from transforms.dead_letters import WriteDeadLetters

LETTERS = [
    DeadLetter("parse", "invalid_json", "line is not JSON", False, "{x", "2026-11-28T00:00:00.000Z", "f"),
    DeadLetter("parse", "invalid_json", "line is not JSON", False, "{y", "2026-11-28T00:00:00.000Z", "f"),
    DeadLetter("write", "STRING_TOO_LONG", "too long", False, {"messageId": "m"}, "2026-11-28T00:00:00.000Z"),
]


def test_writes_json_lines_and_counts(tmp_path, p):
    prefix = str(tmp_path / "dead" / "letters")
    _ = p | "Letters" >> beam.Create(LETTERS) | "Write" >> WriteDeadLetters(prefix)
    counts = run_and_count(p)

    assert counts == {"dead_letter:invalid_json": 2, "dead_letter:STRING_TOO_LONG": 1}
    files = glob.glob(prefix + "*.jsonl")
    assert files
    written = [json.loads(line) for f in files for line in open(f, encoding="utf-8")]
    assert sorted(written, key=_canonical) == sorted(EXPECTED, key=_canonical)


def _canonical(d: dict) -> str:
    return json.dumps(d, sort_keys=True)


EXPECTED = [
    {
        "event": "{x",
        "message": "line is not JSON",
        "reason": "invalid_json",
        "retryable": False,
        "source": "f",
        "stage": "parse",
        "time": "2026-11-28T00:00:00.000Z",
    },
    {
        "event": "{y",
        "message": "line is not JSON",
        "reason": "invalid_json",
        "retryable": False,
        "source": "f",
        "stage": "parse",
        "time": "2026-11-28T00:00:00.000Z",
    },
    {
        "event": {"messageId": "m"},
        "message": "too long",
        "reason": "STRING_TOO_LONG",
        "retryable": False,
        "source": None,
        "stage": "write",
        "time": "2026-11-28T00:00:00.000Z",
    },
]


@pytest.mark.parametrize("prefix", [None, "", "out/", "/tmp/dead/"])
def test_needs_a_file_prefix(prefix):
    with pytest.raises(ValueError, match="needs a file prefix"):
        WriteDeadLetters(prefix)


@pytest.mark.parametrize(
    "event, line",
    [
        # A lone surrogate cannot be encoded as UTF-8: the line falls back to \u escapes, which read back.
        ({"name": "a\ud800b"}, '"event": {"name": "a\\ud800b"}'),
        ({"name": "caf\u00e9"}, '"event": {"name": "caf\u00e9"}'),
        # Never the non-JSON Infinity: the event is kept as text instead.
        ({"n": float("inf")}, '"event": "{\\"n\\": Infinity}"'),
    ],
)
def test_dead_letter_lines_are_always_valid_utf8_json(event, line):
    text = DeadLetter("write", "X", "m", True, event, "t").to_json()
    assert line in text
    text.encode("utf-8")
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in a dead letter"))
