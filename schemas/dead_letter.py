"""The dead-letter record: every event the pipeline could not deliver, as replayable data."""

import datetime
import json
from dataclasses import asdict, dataclass
from typing import Any

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

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True, default=str)

    @classmethod
    def of(
        cls,
        stage: str,
        reason: str,
        message: str,
        event: Any,
        retryable: bool = False,
        source: str | None = None,
    ) -> "DeadLetter":
        return cls(stage, reason, message, retryable, event, utc_now_iso(), source)
