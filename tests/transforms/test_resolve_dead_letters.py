"""ResolveDeadLetters: write failures hold references; the events come back from the files or inline."""

import gzip
import json

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.dead_letter import UndeliveredEvent
from schemas.events import EventRef
from tests.transforms.conftest import run_and_count
from transforms.resolve_dead_letters import ResolveDeadLetters, original_event


def _failure(source, seq, raw=None, reason="REQUEST_LIMIT_EXCEEDED"):
    return UndeliveredEvent(EventRef(source, seq, raw), "write", reason, "limit", True)


def _shape(d):
    return (d.stage, d.reason, d.retryable, d.source, json.dumps(d.event, sort_keys=True), d.message)


def test_events_come_back_from_their_files_and_inline(tmp_path, p):
    plain = tmp_path / "a.jsonl"
    plain.write_text('{"messageId": "a1"}\n\n{"messageId": "a3", "name": "\\ud800"}\n{"messageId": "a4"}\n')
    packed = tmp_path / "b.jsonl.gz"
    replayed = {"stage": "write", "reason": "X", "message": "m", "retryable": True, "time": "t"}
    packed.write_bytes(
        gzip.compress((json.dumps({**replayed, "event": {"messageId": "b1"}}) + "\r\n").encode())
    )
    failures = [
        _failure(str(plain), 3),
        _failure(str(plain), 1, reason="UNABLE_TO_LOCK_ROW"),
        _failure(str(packed), 1),  # a replayed dead letter: its own event comes back, not the wrapper
        _failure("stream", 7, raw='{"messageId": "s7"}'),
        _failure(str(plain), 99),  # the file changed under the run
        _failure(str(tmp_path / "gone.jsonl"), 1),
    ]
    resolved = p | beam.Create(failures) | ResolveDeadLetters()
    assert_that(
        resolved | beam.Map(_shape),
        equal_to(
            [
                (
                    "write",
                    "REQUEST_LIMIT_EXCEEDED",
                    True,
                    str(plain),
                    '{"messageId": "a3", "name": "\\ufffd"}',
                    "limit",
                ),
                ("write", "UNABLE_TO_LOCK_ROW", True, str(plain), '{"messageId": "a1"}', "limit"),
                ("write", "REQUEST_LIMIT_EXCEEDED", True, str(packed), '{"messageId": "b1"}', "limit"),
                ("write", "REQUEST_LIMIT_EXCEEDED", True, "stream", '{"messageId": "s7"}', "limit"),
                (
                    "write",
                    "REQUEST_LIMIT_EXCEEDED",
                    True,
                    str(plain),
                    "null",
                    "limit (line 99 could not be found again: the file changed during the run)",
                ),
                (
                    "write",
                    "REQUEST_LIMIT_EXCEEDED",
                    True,
                    str(tmp_path / "gone.jsonl"),
                    "null",
                    "limit (the event could not be read again from line 1: FileNotFoundError)",
                ),
            ]
        ),
    )
    run_and_count(p)


def test_streaming_mode_never_reads_files(p):
    failures = [_failure("topic", 1, raw='{"a": 1}'), _failure("topic", 2)]
    resolved = p | beam.Create(failures) | ResolveDeadLetters(rereadable=False)
    assert_that(
        resolved | beam.Map(lambda d: (d.event, d.message)),
        equal_to([({"a": 1}, "limit"), (None, "limit (the event itself was not kept)")]),
    )
    run_and_count(p)


@pytest.mark.parametrize(
    "text, event",
    [
        ('{"a": 1}', {"a": 1}),
        ('\ufeff{"a": 1}', {"a": 1}),
        ("not json", "not json"),
        (b"\xff{}", "\\xff{}"),
        (None, None),
        (
            '{"stage": "s", "reason": "r", "message": "m", "retryable": false, "time": "t", "event": "{x"}',
            "{x",
        ),
    ],
)
def test_original_event(text, event):
    assert original_event(text) == event
