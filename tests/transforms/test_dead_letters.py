"""WriteDeadLetters: counted by reason, written as JSON lines when a prefix is given."""

import glob
import json
import logging

import apache_beam as beam

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


def test_without_prefix_only_counts_and_warns(p, caplog):
    with caplog.at_level(logging.WARNING, logger="transforms.dead_letters"):
        _ = p | "Letters" >> beam.Create(LETTERS) | "Write" >> WriteDeadLetters(None)
    counts = run_and_count(p)
    assert counts == {"dead_letter:invalid_json": 2, "dead_letter:STRING_TOO_LONG": 1}
    assert [r.getMessage() for r in caplog.records] == [
        "No --dead_letter_output: dead letters are only counted, not written"
    ]
