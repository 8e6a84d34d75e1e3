"""The streaming demo (examples/stream_demo.py): its pure parts by tables, and the whole demo end to end
through the Pub/Sub emulator and a Kafka broker, at a high rate over a small set of events."""

import gzip
import json

import pytest

from examples import brokers, stream_demo
from examples.stream_demo import Progress, RecordFeed, Settings
from pipeline.progress import progress_line
from tests.e2e.conftest import SYSTEM_FIELDS
from tests.seed_examples import SEED_ACCOUNT, SEED_GROUP, SEED_IDENTIFY_FLAT, SEED_IDENTIFY_OBJECTS, SEED_LEAD

ON = {"Salesforce": True}
SAMIR = {
    "type": "identify",
    "messageId": "demo-samir",
    "timestamp": "2026-11-01T11:00:00.000Z",
    "userId": "user-samir",
    "traits": {
        "email": "samir@example.com",
        "firstName": "Samir",
        "lastName": "Nagheenanajar",
        "company": "Initech",
    },
    "integrations": ON,
}
OPTED_OUT = {**SAMIR, "messageId": "demo-off", "traits": {"email": "off@example.com"}, "integrations": {}}
TRACK = {"type": "track", "messageId": "demo-track", "userId": "u", "event": "Clicked", "integrations": ON}
# The seed's calls, their group published twice (a redelivery), one event of each other outcome.
EVENTS = [
    SEED_IDENTIFY_FLAT,
    SEED_IDENTIFY_OBJECTS,
    SEED_GROUP,
    SEED_GROUP,
    json.dumps(SAMIR),
    json.dumps(OPTED_OUT),
    json.dumps(TRACK),
    "not json at all",
]
# Org-kept fields: the org set-up's key and field times (docs/org-setup.md).
ORG_KEPT = (SYSTEM_FIELDS - {"Status"}) | {"Beamforce_Key__c", "Beamforce_Field_Times__c"}
STATUS = "Open - Not Contacted"  # Salesforce's default Lead Status
EXPECTED_LEADS = [
    {**SEED_LEAD, "Status": STATUS},
    {"Email": "samir@example.com", "FirstName": "Samir", "LastName": "Nagheenanajar", "Company": "Initech"}
    | {"Status": STATUS},
]
EXPECTED_SUMMARY = {
    "events_read": 8,
    "events_written": 4,
    "events_filtered": 2,
    "filtered": {"integration_disabled": 1, "no_action_for_track": 1},
    "deduplicated": 1,
    "events_dead_lettered": 1,
    "dead_lettered": {"invalid_json": 1},
    "balanced": True,
}


@pytest.mark.parametrize(
    "totals, expected",
    [
        ({}, Progress()),
        (
            {
                "events_read": 9,
                "events_written:Lead:create": 2,
                "events_written:Account:update": 3,
                "filtered:integration_disabled": 1,
                "deduplicated": 1,
                "dead_letter:invalid_json": 2,
            },
            Progress(read=9, written=5, filtered=1, deduplicated=1, dead_lettered=2),
        ),
    ],
)
def test_the_pipelines_progress_line_is_read_back(totals, expected):
    line = f"INFO pipeline.progress: {progress_line(totals, {'api_calls_remaining': 7})}"
    assert stream_demo.parse_progress(line) == expected


def test_accounted_events_are_those_with_an_outcome():
    assert Progress(read=10, written=5, filtered=1, deduplicated=1, dead_lettered=2).accounted == 9


@pytest.mark.parametrize("line", ["", "INFO something else", "progress: read 3"])
def test_other_lines_are_not_progress(line):
    assert stream_demo.parse_progress(line) is None


@pytest.mark.parametrize(
    "line, expected",
    [
        (json.dumps(SAMIR), (json.dumps(SAMIR).encode(), "user-samir", {"messageId": "demo-samir"})),
        ('{"anonymousId": 12, "messageId": ""}', (b'{"anonymousId": 12, "messageId": ""}', "12", {})),
        ('{"groupId": "g1"}', (b'{"groupId": "g1"}', "g1", {})),
        ("not json at all", (b"not json at all", None, {})),
        ('["an", "array"]', (b'["an", "array"]', None, {})),
        ("caf\udce9", (b"caf\xe9", None, {})),  # a line that was not UTF-8 goes out as it came
    ],
)
def test_a_line_is_published_as_it_is_with_its_key_and_message_id(line, expected):
    assert stream_demo.message_of(line) == expected


@pytest.mark.parametrize(
    "rate, seconds, expected",
    [(10, 0.3, ["a", "b", "c"]), (10, 30, ["a", "b", "c", "d"]), (0.1, 1, ["a"])],
)
def test_the_demo_publishes_rate_times_seconds_events_at_most(rate, seconds, expected):
    assert stream_demo.events_to_publish(["a", "b", "c", "d"], rate, seconds) == expected


def test_events_are_read_in_the_order_of_the_globs_without_blank_lines(tmp_path):
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b"b1\n\nb2\n"))
    (tmp_path / "a.jsonl").write_text("a1\n  \na2\r\n")
    (tmp_path / "c.jsonl").write_text("c1\n")
    found = stream_demo.read_events([str(tmp_path / "c.jsonl"), str(tmp_path / "[ab].jsonl*")])
    assert found == ["c1", "a1", "a2", "b1", "b2"]


@pytest.mark.parametrize("rate, seconds", [(100, 3), (10, 3), (1, 9), (0.5, 18)])
def test_a_kafka_read_stops_well_after_the_gap_between_records_of_a_partition(rate, seconds):
    assert stream_demo.kafka_idle_seconds(rate) == seconds


def _summary(read, written=0, filtered=0, deduplicated=0, dead=0, balanced=True) -> dict:
    return {
        "events_read": read,
        "events_written": written,
        "events_filtered": filtered,
        "deduplicated": deduplicated,
        "events_dead_lettered": dead,
        "balanced": balanced,
    }


@pytest.mark.parametrize(
    "published, summary, exit_code, dead_letters, problems",
    [
        (5, _summary(5, 2, 1, 1, 1), 130, 1, []),
        (5, _summary(5, 5), 0, 0, []),
        (5, _summary(5, 4, dead=1), 3, 1, []),  # retryable dead letters are accounted for
        (5, _summary(6, 4, deduplicated=2), 130, 0, []),  # a redelivery, deduplicated
        (5, _summary(5, 3, dead=2), 130, 3, []),  # a dead letter delivered twice
        (5, _summary(3, 3), 130, 0, ["2 of the 5 events published were not read"]),
        (5, _summary(5, 3, dead=2), 130, 1, ["1 of the 2 dead letters counted never arrived"]),
        (
            5,
            _summary(5, 3, balanced=False),
            1,
            0,
            [
                "the pipeline exited with status 1 (see its log)",
                "the counts do not add up: 5 events read, 3 accounted for",
            ],
        ),
        (
            5,
            None,
            2,
            0,
            [
                "the pipeline exited with status 2 (see its log)",
                "the pipeline wrote no summary: no event can be shown as accounted for",
            ],
        ),
    ],
)
def test_the_outcome_names_every_event_not_accounted_for(
    published, summary, exit_code, dead_letters, problems
):
    assert stream_demo.check_outcome(published, summary, exit_code, dead_letters) == problems


@pytest.mark.parametrize(
    "data, line",
    [
        (
            json.dumps({"stage": "parse", "reason": "invalid_json", "event": "not json at all"}),
            "parse/invalid_json: not json at all",
        ),
        (
            json.dumps({"stage": "map", "reason": "missing_email", "event": {"type": "identify"}}),
            'map/missing_email: {"type": "identify"}',
        ),
        ("x" * 70, "x" * 60 + "..."),
    ],
)
def test_a_dead_letter_arrives_as_one_line(data, line):
    assert stream_demo.dead_letter_line(data.encode()) == f"  x dead letter {line}"


def test_the_feed_shows_each_record_once_and_counts_updates():
    feed = RecordFeed()
    first = [{"Id": "1", "LastModifiedDate": "t1"}, {"Id": "2", "LastModifiedDate": "t1"}]
    assert feed.update("Lead", first) == (first, 0)
    later = [{"Id": "1", "LastModifiedDate": "t2"}, {"Id": "2", "LastModifiedDate": "t1"}, {"Id": "3"}]
    assert feed.update("Lead", later) == ([{"Id": "3"}], 1)
    assert feed.update("Account", [{"Id": "1"}]) == ([{"Id": "1"}], 0)


@pytest.mark.parametrize(
    "sobject, record, line",
    [
        (
            "Lead",
            {"Email": "a@example.com", "FirstName": "Ada", "LastName": "L", "Company": "X"},
            "a@example.com  Ada L, X",
        ),
        ("Lead", {"Email": "b@example.com", "LastName": "B", "Company": None}, "b@example.com  B, "),
        ("Account", {"AccountNumber": "813", "Name": "Teemo", "BillingCity": "Paris"}, "813  Teemo, Paris"),
    ],
)
def test_a_record_arrives_as_one_line(sobject, record, line):
    assert stream_demo.record_line(sobject, record) == f"  + {sobject:<7} {line}"


def _fields(records: list[dict], sobject: str) -> list[dict]:
    """Records as the pipeline wrote them: no org-kept fields (a Lead's Name is derived), nulls or
    compound fields; in key order."""
    skip = ORG_KEPT | ({"Name"} if sobject == "Lead" else set())
    kept = [
        {k: v for k, v in r.items() if k not in skip and v is not None and not isinstance(v, dict)}
        for r in records
    ]
    return sorted(kept, key=lambda r: r.get("Email") or r.get("AccountNumber") or "")


def _demo(tmp_path_factory, kafka: bool):
    reason = stream_demo.missing(kafka)
    if reason:
        pytest.skip(f"the {'Kafka' if kafka else 'Pub/Sub'} demo cannot run here: {reason}")
    root = tmp_path_factory.mktemp("kafka-demo" if kafka else "pubsub-demo")
    (root / "events.jsonl").write_text("".join(line + "\n" for line in EVENTS))
    said: list[str] = []
    settings = Settings(
        kafka=kafka, events=(str(root / "events.jsonl"),), rate=100, drain_seconds=60, out=root / "out"
    )
    try:
        outcome = stream_demo.run_demo(settings, say=said.append)
    except brokers.BrokerError as e:
        pytest.fail(str(e))
    return outcome, said, root / "out"


@pytest.fixture(scope="module", params=["pubsub", "kafka"])
def demo(request, tmp_path_factory):
    return _demo(tmp_path_factory, kafka=request.param == "kafka")


@pytest.mark.e2e
def test_every_event_published_arrives_as_the_exact_records_and_is_accounted_for(demo):
    outcome, said, out = demo
    assert outcome.problems == []
    assert outcome.published == len(EVENTS)
    assert outcome.exit_code in (0, 130)  # Kafka ends on its own once idle; Pub/Sub is stopped with SIGINT
    assert _fields(outcome.records["Lead"], "Lead") == EXPECTED_LEADS
    assert _fields(outcome.records["Account"], "Account") == [SEED_ACCOUNT]
    assert {k: outcome.summary[k] for k in EXPECTED_SUMMARY} == EXPECTED_SUMMARY
    assert json.loads((out / "summary.json").read_text()) == outcome.summary
    dead = [json.loads(line) for line in outcome.dead_letters]
    assert [(d["stage"], d["reason"], d["event"]) for d in dead] == [
        ("parse", "invalid_json", "not json at all")
    ]
    assert (out / "dead_letters.jsonl").read_bytes() == outcome.dead_letters[0] + b"\n"
    assert "  x dead letter parse/invalid_json: not json at all" in said
    assert "  + Lead    samir@example.com  Samir Nagheenanajar, Initech" in said
    assert "  + Account 813  Teemo Industries, East Greenwich" in said
    assert said[-1] == (
        f"\nOK: all {len(EVENTS)} events published were accounted for: 4 written, 2 filtered, "
        "1 deduplicated, 1 dead-lettered"
    )
