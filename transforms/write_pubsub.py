"""WriteDeadLettersToPubSub: count dead letters by reason and publish each to a Pub/Sub topic, as JSON."""

import dataclasses
import json

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, WriteToPubSub, parse_topic

from schemas.dead_letter import DeadLetter
from transforms.dead_letters import CountByReason

# Pub/Sub takes at most 10 MB of data a message (attributes and framing count too): room is left.
MAX_DATA_BYTES = 9_000_000
# Attribute values may be 1024 bytes; a reason is a short code, anything longer is cut.
MAX_ATTRIBUTE_CHARS = 256


def to_message(dead_letter: DeadLetter, max_bytes: int = MAX_DATA_BYTES) -> PubsubMessage:
    """The dead letter's JSON line as the message's data (valid --input for a replay, as the files are),
    with `stage`, `reason` and `retryable` attributes for subscription filters.

    A dead letter too large for a message keeps the first part of its event, as text, and says so in its
    message and a `truncated` attribute: replayed, it comes back as a dead letter, never as a wrong event.
    """
    data = dead_letter.to_json().encode("utf-8")
    attributes = {
        "stage": dead_letter.stage[:MAX_ATTRIBUTE_CHARS],
        "reason": dead_letter.reason[:MAX_ATTRIBUTE_CHARS],
        "retryable": "true" if dead_letter.retryable else "false",
    }
    if len(data) > max_bytes:
        attributes["truncated"] = "true"
        data = truncated_line(dead_letter, len(data), max_bytes, "a Pub/Sub message")
    return PubsubMessage(data, attributes)


def truncated_line(dead_letter: DeadLetter, size: int, max_bytes: int, sink: str) -> bytes:
    """The dead letter's JSON line within `max_bytes`: the first part of its event, as text, and a note in
    its message naming the original size and the `sink` it had to fit (e.g. "a Kafka message")."""
    event = dead_letter.event
    text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False, default=str)
    text = text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate, which UTF-8 cannot hold
    note = f" [event truncated from {size} bytes to fit {sink}]"
    shell = dataclasses.replace(
        dead_letter, event="", message=dead_letter.message[: MAX_ATTRIBUTE_CHARS * 4] + note
    )
    room = max(0, max_bytes - len(shell.to_json().encode("utf-8")))
    # The line holds the event as a JSON string: as much of its escaped form as there is room for. The
    # line is all ASCII escapes when another field holds a lone surrogate (DeadLetter.to_json).
    for ascii_only in (False, True):
        escaped = (
            json.dumps(text, ensure_ascii=ascii_only)[1:-1].encode("utf-8")[:room].decode("utf-8", "ignore")
        )
        data = dataclasses.replace(shell, event=_unescaped(escaped)).to_json().encode("utf-8")
        if len(data) <= max_bytes:
            return data
    return shell.to_json().encode("utf-8")


def _unescaped(escaped: str) -> str:
    """The text of a JSON string's body cut anywhere: a cut escape sequence or surrogate pair is dropped."""
    for end in range(len(escaped), max(-1, len(escaped) - 7), -1):
        try:
            text = json.loads(f'"{escaped[:end]}"')
        except ValueError:  # the cut fell inside an escape sequence (at most 6 characters)
            continue
        return text[:-1] if text and "\ud800" <= text[-1] <= "\udbff" else text
    return ""


class WriteDeadLettersToPubSub(beam.PTransform):
    """Counts `dead_letter:<reason>` and `dead_letter_retryable`, and publishes every dead letter to
    `topic` (`projects/P/topics/T`) as one message (see to_message). Bounded or unbounded input.
    """

    def __init__(self, topic: str) -> None:
        super().__init__()
        try:
            parse_topic(topic or "")
        except ValueError as e:
            raise ValueError(
                f"WriteDeadLettersToPubSub: {e}; e.g. 'projects/my-project/topics/beamforce-dead-letters'"
            ) from None
        self._topic = topic

    def expand(self, dead_letters: beam.PCollection) -> beam.PCollection:
        return (
            dead_letters
            | "CountByReason" >> CountByReason()
            | "ToMessage" >> beam.Map(to_message).with_output_types(PubsubMessage)
            | "Publish" >> WriteToPubSub(self._topic, with_attributes=True)
        )
