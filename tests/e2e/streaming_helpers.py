"""For the end-to-end streaming tests: a TestStream source, the org the events imply, an emulator driver."""

import datetime
import json
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.testing.test_stream import TestStream as Stream  # a "Test*" name would be collected
from apache_beam.transforms.window import TimestampedValue

from schemas.dead_letter import DeadLetter
from schemas.events import EventLine
from transforms import metrics
from transforms.result import Result

STREAM = "teststream"
T0 = datetime.datetime(2026, 3, 1, 10, 0, tzinfo=datetime.UTC)
ON = {"Salesforce": True}

# Segment trait -> Salesforce field, for the traits these tests send (the seed's mapping).
LEAD_TRAITS = {
    "email": "Email",
    "firstName": "FirstName",
    "lastName": "LastName",
    "title": "Title",
    "phone": "Phone",
    "company": "Company",
}
ACCOUNT_TRAITS = {
    "name": "Name",
    "phone": "Phone",
    "description": "Description",
    "employees": "NumberOfEmployees",
}
LEAD_CREATE_DEFAULTS = {"LastName": "n/a", "Company": "n/a"}
KEY_FIELD = "Beamforce_Key__c"
TIMES_FIELD = "Beamforce_Field_Times__c"


def at(second: int) -> str:
    """The event time `second` seconds after T0, as Segment sends it."""
    return (T0 + datetime.timedelta(seconds=second)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def identify(message_id: str, second: int, **traits: Any) -> dict:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": f"user-{traits.get('email', message_id)}",
        "timestamp": at(second),
        "traits": traits,
        "integrations": ON,
    }


def group(message_id: str, second: int, group_id: str, **traits: Any) -> dict:
    return {
        "type": "group",
        "messageId": message_id,
        "userId": f"user-{message_id}",
        "groupId": group_id,
        "timestamp": at(second),
        "traits": traits,
        "integrations": ON,
    }


def _epoch(event: dict) -> float:
    return datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


class _CountRead(beam.DoFn):
    """Counts each line as read, as ReadEvents does for files (the summary's events_read)."""

    def __init__(self) -> None:
        self.events_read = Metrics.counter(metrics.NAMESPACE, metrics.EVENTS_READ)

    def process(self, line: EventLine):
        self.events_read.inc()
        yield line


class StreamEvents(beam.PTransform):
    """A TestStream of Segment events as the pipeline's source: Result(EventLines, no dead letters).

    `steps` are (events, processing seconds to advance after them): each step's events arrive together,
    in the order given, stamped with their own event times; the watermark follows the newest event
    time seen, so that an older event in a later step is late data.
    """

    def __init__(self, steps: Sequence[tuple[Sequence[dict], float]]) -> None:
        super().__init__()
        self._steps = steps

    def expand(self, pbegin: beam.pvalue.PBegin):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        stream = Stream()
        seq, watermark, advanced_to = 0, 0.0, None
        for events, advance in self._steps:
            stamped = []
            for event in events:
                seq += 1
                line = EventLine(STREAM, seq, json.dumps(event))
                stamped.append(TimestampedValue(line, _epoch(event)))
                watermark = max(watermark, _epoch(event))
            if stamped:
                stream = stream.add_elements(stamped)
            if watermark != advanced_to:  # TestStream's watermark must strictly advance
                stream = stream.advance_watermark_to(watermark)
                advanced_to = watermark
            if advance:
                stream = stream.advance_processing_time(advance)
        stream = stream.advance_watermark_to_infinity()
        lines = (
            pbegin
            | "Stream" >> stream.with_output_types(EventLine)
            | "CountRead" >> beam.ParDo(_CountRead()).with_output_types(EventLine)
        )
        none = lines | "NoDeadLetters" >> beam.FlatMap(lambda _: ()).with_output_types(DeadLetter)
        return Result(lines, none)


def expected_records(events: Iterable[dict]) -> dict[str, dict[str, dict]]:
    """What the org should hold after `events`, computed from the events alone: per sObject, match value
    -> fields, each field the value of the newest event that carried it (repeated messageIds count once);
    a Lead's create defaults where no event gave the field; docs/org-setup.md's normalized key, and its
    times field (as a dict) holding each written field's newest event time."""
    latest: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {}
    seen: set[str] = set()
    for event in events:
        if event["messageId"] in seen:
            continue
        seen.add(event["messageId"])
        traits = event["traits"]
        if event["type"] == "identify":
            sobject, match, mapping = "Lead", traits["email"], LEAD_TRAITS
        else:
            sobject, match, mapping = "Account", event["groupId"], ACCOUNT_TRAITS
            traits = {**traits, "groupId": event["groupId"]}
            mapping = {**mapping, "groupId": "AccountNumber"}
        record = latest.setdefault((sobject, match), {})
        for trait, name in mapping.items():
            if trait in traits and (name not in record or record[name][0] < event["timestamp"]):
                record[name] = (event["timestamp"], traits[trait])
    out: dict[str, dict[str, dict]] = {"Lead": {}, "Account": {}}
    for (sobject, match), record in latest.items():
        fields = {name: value for name, (_, value) in record.items()}
        if sobject == "Lead":
            fields = {**LEAD_CREATE_DEFAULTS, **fields}
        fields[KEY_FIELD] = match.strip().lower()
        fields[TIMES_FIELD] = {name: time_ for name, (time_, _) in record.items()}
        out[sobject][match] = fields
    return out


def by_match(rows: list[dict], match_field: str) -> dict[str, dict]:
    """The org's records keyed by match value, the times field read as a dict; fails on a duplicate."""
    out: dict[str, dict] = {}
    for row in rows:
        match = row[match_field]
        assert match not in out, f"two records with {match_field} {match!r}"
        out[match] = {**row, TIMES_FIELD: json.loads(row.get(TIMES_FIELD) or "{}")}
    return out


class OrgDriver(threading.Thread):
    """Drives the emulator while a run goes on, from its own thread: expires every session each
    `expire_every` seconds, and once the org reports no API calls remaining, waits `raise_after`
    seconds and raises the allocation to `raise_to`. Stops at stop() or after `timeout` seconds."""

    def __init__(
        self,
        emu: Any,
        raise_to: int,
        expire_every: float = 1.0,
        raise_after: float = 0.5,
        timeout: float = 45.0,
    ) -> None:
        super().__init__(name="org-driver", daemon=True)
        self._emu = emu
        self._raise_to = raise_to
        self._expire_every = expire_every
        self._raise_after = raise_after
        self._timeout = timeout
        self._done = threading.Event()
        self.sessions_expired = 0  # sessions the emulator expired at our request
        self.limit_reached = False
        self.limit_raised = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._drive()
        except BaseException as e:  # reported by stop(), in the test's thread
            self.error = e
        finally:
            if not self.limit_raised:
                # Whatever happened, a writer waiting for the allocation must not wait for ever.
                self._emu.admin("POST", "limits", json={"remaining": self._raise_to})

    def _drive(self) -> None:
        started = time.monotonic()
        next_expiry = started + self._expire_every
        while not self._done.is_set() and time.monotonic() - started < self._timeout:
            if not self.limit_raised and self._emu.admin("GET", "limits")["remaining"] == 0:
                self.limit_reached = True
                self._done.wait(self._raise_after)
                self._emu.admin("POST", "limits", json={"remaining": self._raise_to})
                self.limit_raised = True
            if time.monotonic() >= next_expiry:
                self.sessions_expired += self._emu.admin("POST", "sessions/expire")["expired"]
                next_expiry = time.monotonic() + self._expire_every
            self._done.wait(0.05)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)
        if self.error is not None:
            raise self.error
