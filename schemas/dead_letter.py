"""The dead-letter record: every event the pipeline could not deliver, as replayable data."""

import datetime
import json
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from schemas.events import EventRef

STAGES = ("read", "parse", "map", "write")


def utc_now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class DeadLetter:
    """Why an event was not delivered, and the event itself.

    `reason` is a snake_case pipeline reason (`invalid_json`, `missing_email`, ...) or the
    Salesforce error code (`STRING_TOO_LONG`, ...). `event` is the parsed JSON object when the
    line parsed, else the raw line as a string. Never holds a credential.
    """

    stage: str
    reason: str
    message: str
    retryable: bool
    event: Any
    time: str
    source: str | None = None
    # The action that failed, when the event's trigger has several: a replay redoes only that one (the
    # others did their part). Left out of the JSON when None.
    action: str | None = None

    def to_json(self) -> str:
        """One JSON line, always valid input for a later run (so never NaN or Infinity).

        Text stays readable (not \\u-escaped) unless it holds a lone surrogate, which UTF-8 cannot
        encode: then the whole line is ASCII with escapes, which read back to the same text.
        """
        record = asdict(self)
        if record["action"] is None:
            del record["action"]
        try:
            text = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str, allow_nan=False)
        except ValueError:  # a non-finite number, which parsing refuses: keep the event as text
            record["event"] = json.dumps(record["event"], ensure_ascii=False, default=str)
            text = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(record, ensure_ascii=True, sort_keys=True, default=str, allow_nan=False)
        return text

    @classmethod
    def of(
        cls,
        stage: str,
        reason: str,
        message: str,
        event: Any,
        retryable: bool = False,
        source: str | None = None,
        action: str | None = None,
    ) -> "DeadLetter":
        return cls(stage, reason, message, retryable, event, utc_now_iso(), source, action)


class UndeliveredEvent(NamedTuple):
    """A write-stage failure of one event, before its dead letter is built: the writer holds only a
    reference to the event (see EventRef), which ResolveDeadLetters turns back into the event."""

    ref: EventRef
    stage: str
    reason: str
    message: str
    retryable: bool
    action: str | None = None  # the action whose write failed
