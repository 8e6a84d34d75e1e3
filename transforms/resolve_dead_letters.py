"""ResolveDeadLetters: write-stage failures, which hold references to events, into full dead letters.

The merging and writing stages carry one EventRef per event instead of the event itself, so that a
backfill's memory grows with its records, not its events. When a write fails, the events are fetched
back: inline from the reference (streams), or by reading the file's lines again (files), grouped per
file so that each file is read once, up to its last failed line.
"""

import json
from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from schemas.dead_letter import DeadLetter, UndeliveredEvent
from transforms.parsing import is_dead_letter, without_surrogates
from transforms.read_archives import read_archive_lines
from transforms.read_events import READ_ERRORS


def original_event(text: str | bytes | None) -> Any:
    """The event a line holds as a dead letter carries it: the JSON object, or a replayed dead letter's
    own event; the text itself when it is not JSON (None when there is no text)."""
    if text is None:
        return None
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="backslashreplace")
    try:
        obj = json.loads(text.lstrip("\ufeff"))
    except (ValueError, RecursionError):
        return text
    if isinstance(obj, dict) and is_dead_letter(obj):
        obj = obj["event"]
    # As the parser gave it to the pipeline: lone surrogates (which UTF-8 cannot hold) as U+FFFD.
    return without_surrogates(obj) if "\\u" in text else obj


def dead_letter_of(
    failure: UndeliveredEvent,
    event: Any,
    message_suffix: str = "",
    replay_actions: frozenset[str] = frozenset(),
) -> DeadLetter:
    """The dead letter of a failure; it names the failed action when that is one of `replay_actions`
    (actions whose trigger has others), so that a replay redoes only that one."""
    return DeadLetter.of(
        failure.stage,
        failure.reason,
        failure.message + message_suffix,
        event,
        retryable=failure.retryable,
        source=failure.ref.source,
        action=failure.action if failure.action in replay_actions else None,
    )


def _is_inline(failure: UndeliveredEvent) -> bool:
    ref = failure.ref
    return ref.raw is not None or not ref.source or ref.seq <= 0


def _inline(failure: UndeliveredEvent, replay_actions: frozenset[str]) -> DeadLetter:
    if failure.ref.raw is None:
        return dead_letter_of(failure, None, " (the event itself was not kept)", replay_actions)
    return dead_letter_of(failure, original_event(failure.ref.raw), replay_actions=replay_actions)


def _by_file(failure: UndeliveredEvent) -> tuple[str, UndeliveredEvent]:
    return failure.ref.source or "", failure


class _ReadFailedLines(beam.DoFn):
    """Reads one file's failed lines again and gives each failure its event."""

    def __init__(self, replay_actions: frozenset[str]) -> None:
        self._replay_actions = replay_actions

    def process(self, element: tuple[str, Iterable[UndeliveredEvent]]):
        source, failures = element
        by_line: dict[int, list[UndeliveredEvent]] = {}
        for failure in failures:
            by_line.setdefault(failure.ref.seq, []).append(failure)
        found: set[int] = set()
        try:
            # JSON lines or Avro records, read as the source read them.
            for number, text in read_archive_lines(source, set(by_line)):
                found.add(number)
                event = original_event(text)
                for failure in by_line[number]:
                    yield dead_letter_of(failure, event, replay_actions=self._replay_actions)
        except READ_ERRORS as e:
            suffix = f" (the event could not be read again from line {{}}: {type(e).__name__})"
        else:
            suffix = " (line {} could not be found again: the file changed during the run)"
        for number, rest in by_line.items():
            if number not in found:
                for failure in rest:
                    yield dead_letter_of(failure, None, suffix.format(number), self._replay_actions)


class ResolveDeadLetters(beam.PTransform):
    """UndeliveredEvents into DeadLetters, each with its original event.

    `rereadable`: whether failures may refer to files to read again (bounded input). Streaming
    sources always carry their events inline; a grouping there would never fire. `replay_actions`: the
    actions whose dead letters name them (their trigger has other actions: see DeadLetter.action).
    """

    def __init__(self, rereadable: bool = True, replay_actions: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self._rereadable = rereadable
        self._replay_actions = frozenset(replay_actions)

    def expand(self, failures: beam.PCollection) -> beam.PCollection:
        resolve = beam.Map(_inline, self._replay_actions).with_output_types(DeadLetter)
        if not self._rereadable:
            return failures | "FromRefs" >> resolve
        inline, in_files = failures | "InlineOrInFiles" >> beam.Partition(
            lambda f, _: 0 if _is_inline(f) else 1, 2
        )
        from_refs = inline | "FromRefs" >> resolve
        from_files = (
            in_files
            | "KeyByFile" >> beam.Map(_by_file).with_output_types(tuple[str, UndeliveredEvent])
            | "GroupByFile" >> beam.GroupByKey()
            | "ReadFailedLines"
            >> beam.ParDo(_ReadFailedLines(self._replay_actions)).with_output_types(DeadLetter)
        )
        return (from_refs, from_files) | "Resolved" >> beam.Flatten()
