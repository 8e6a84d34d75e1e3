"""Against Google's Pub/Sub emulator: events read through ReadPubSub on the streaming DirectRunner, dead
letters published to a topic and replayed, and events published to Pub/Sub arriving as the exact Leads and
Accounts in the local Salesforce."""

import gc
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp

from examples.brokers import popen_interruptible
from pipeline.graph import build
from pipeline.main import STREAMING_RUNNER, counters
from pipeline.options import BeamforceOptions, validate
from pipeline.summary import Summary
from salesforce.connection import ConnectionSettings
from salesforce.credentials import CredentialsSource
from salesforce.errors import ConfigurationError
from schemas.dead_letter import DeadLetter
from schemas.events import EventLine
from tests.e2e.conftest import (
    ALLOCATION_USED_UP,
    export_credentials,
    records,
    run_pipeline,
    stderr_until,
    streaming_options,
)
from tests.e2e.streaming_helpers import (
    TIMES_FIELD,
    at,
    by_match,
    expected_records,
    group,
    identify,
)
from tests.pipeline.test_options import ENV
from tests.pubsub.conftest import PROJECT, Heartbeat, publish, pull, run_until
from transforms.parse_events import ParseEvents
from transforms.read_pubsub import ReadPubSub
from transforms.write_pubsub import WriteDeadLettersToPubSub

pytestmark = pytest.mark.e2e

# How long a run may take to show what the test waits for, before the test gives up on it.
RUN_TIMEOUT = 30.0


@pytest.fixture
def org(keyed_emulator, monkeypatch):
    """The local Salesforce, emptied, its credentials in the environment (where the writers read them)."""
    keyed_emulator.admin("POST", "/_emulator/reset")
    export_credentials(keyed_emulator, monkeypatch)
    return keyed_emulator


# What each run's collector saw, by run: the DirectRunner runs DoFns in this process.
_seen: dict[str, list[tuple[EventLine, int]]] = {}
_seen_lock = threading.Lock()


class _Collect(beam.DoFn):
    """Keeps each EventLine with its element timestamp (microseconds) under its run's name."""

    def __init__(self, run: str) -> None:
        self._run = run

    def process(self, line: EventLine, timestamp=beam.DoFn.TimestampParam):
        with _seen_lock:
            _seen.setdefault(self._run, []).append((EventLine(*line), timestamp.micros))


def _collecting(read: ReadPubSub, run: str) -> beam.Pipeline:
    _seen.pop(run, None)
    p = beam.Pipeline(runner=STREAMING_RUNNER, options=PipelineOptions(["--streaming"]))
    _ = (p | "Read" >> read).output | "Collect" >> beam.ParDo(_Collect(run))
    return p


def _read_until(read: ReadPubSub, run: str, count: int) -> tuple[list[tuple], dict[str, int]]:
    """Runs `read` into the collector until `count` lines arrived: (line, timestamp)s sorted, the counters."""
    p = _collecting(read, run)
    result, done = run_until(p, lambda _: len(_seen.get(run, ())) >= count, RUN_TIMEOUT)
    assert done, f"{len(_seen.get(run, ()))} of {count} lines arrived within {RUN_TIMEOUT:.0f}s"
    return sorted(_seen.pop(run), key=repr), counters(result)[0]


def _events() -> list[dict]:
    return [
        *(identify(f"i{n}", n, email=f"person{n % 4}@example.com", title=f"title {n}") for n in range(1, 13)),
        *(group(f"g{n}", 20 + n, f"G-{n % 3}", name=f"Company {n}") for n in range(1, 7)),
    ]


def _micros(iso: str) -> int:
    return Timestamp.from_rfc3339(iso).micros


def _org(emu) -> dict[str, dict]:
    return {
        "Lead": by_match(records(emu, "Lead"), "Email"),
        "Account": by_match(records(emu, "Account"), "AccountNumber"),
    }


def test_a_subscription_delivers_every_published_event_as_its_exact_line(pubsub):
    topic, subscription = pubsub.new_topic("events")
    witness = pubsub.subscribe(topic, subscription.rsplit("/", 1)[1] + "-witness")
    events = [json.dumps(e) for e in _events()]
    not_utf8 = b'{"bad": "\xff"}'
    publish(topic, [*events, not_utf8])
    published = {m.data: m.publish_us for m in pull(witness, len(events) + 1)}
    source = f"pubsub://{subscription}"

    with Heartbeat(topic):
        lines, counts = _read_until(ReadPubSub(subscription=subscription), "subscription", len(events) + 1)

    # seq is the publish time; an event is stamped with its own time (earlier than that), and a line
    # without one (here: not even text, so left as bytes for the parser) with its publish time.
    assert lines == sorted(
        [
            *(
                (EventLine(source, published[line.encode()], line), _micros(json.loads(line)["timestamp"]))
                for line in events
            ),
            (EventLine(source, published[not_utf8], not_utf8), published[not_utf8]),
        ],
        key=repr,
    )
    assert counts["events_read"] == len(events) + 1


def test_a_timestamp_attribute_stamps_each_event(pubsub):
    topic, subscription = pubsub.new_topic("stamped")
    # The attribute, not the event's own time (nor the publish time), is the element's timestamp.
    events = {at(100 + n): json.dumps(identify(f"s{n}", n, email=f"s{n}@example.com")) for n in range(3)}
    for stamp, line in events.items():
        publish(topic, [line], event_time=stamp)

    with Heartbeat(topic):
        lines, _ = _read_until(ReadPubSub(subscription, timestamp_attribute="event_time"), "stamped", 3)

    assert sorted((line.line, stamp) for line, stamp in lines) == sorted(
        (line, _micros(stamp)) for stamp, line in events.items()
    )


def test_a_topic_is_read_through_a_subscription_of_its_own(pubsub):
    topic, witness = pubsub.new_topic("topic-read")
    events = [json.dumps(e) for e in _events()[:5]]
    runner_subscriptions: set[str] = set()

    def publish_once_subscribed(result) -> bool:
        # The runner's own subscription, made when the read starts, sees only what is published after it.
        if not runner_subscriptions:
            runner_subscriptions.update(pubsub.subscriptions(topic) - {witness})
            if not runner_subscriptions:
                return False
            publish(topic, events)
        return len(_seen.get("topic", ())) >= len(events)

    p = _collecting(ReadPubSub(topic=topic), "topic")
    with Heartbeat(topic):
        result, done = run_until(p, publish_once_subscribed, RUN_TIMEOUT)
    published = {m.data: m.publish_us for m in pull(witness, len(events))}

    assert done, f"{len(_seen.get('topic', ()))} of {len(events)} lines arrived within {RUN_TIMEOUT:.0f}s"
    assert len(runner_subscriptions) == 1
    assert sorted(line for line, _ in _seen.pop("topic")) == sorted(
        EventLine(f"pubsub://{topic}", published[line.encode()], line) for line in events
    )
    # The runner deletes its subscription when the pipeline is collected: none is left to pile up messages.
    del p, result
    gc.collect()
    assert pubsub.subscriptions(topic) == {witness}


def test_dead_letters_are_published_to_a_topic_as_replayable_json_lines(pubsub, org, tmp_path):
    topic, subscription = pubsub.new_topic("dead-letters")
    replayed = identify("m1", 1, email="replayed@example.com", title="Replayed")
    dead = [
        DeadLetter(
            "parse", "invalid_json", "not JSON", False, "{oops", "2026-12-01T09:00:00.000Z", "in.jsonl"
        ),
        DeadLetter("write", "REQUEST_LIMIT_EXCEEDED", "limit", True, replayed, "2026-12-01T09:00:01.000Z"),
    ]
    p = beam.Pipeline(runner="FnApiRunner")
    _ = p | beam.Create(dead) | "WriteDeadLetters" >> WriteDeadLettersToPubSub(topic)
    result = p.run()
    result.wait_until_finish()

    received = pull(subscription, len(dead))

    assert sorted((m.data, m.attributes) for m in received) == sorted(
        (
            d.to_json().encode(),
            {"stage": d.stage, "reason": d.reason, "retryable": str(d.retryable).lower()},
        )
        for d in dead
    )
    assert counters(result)[0] == {
        "dead_letter:invalid_json": 1,
        "dead_letter:REQUEST_LIMIT_EXCEEDED": 1,
        "dead_letter_retryable": 1,
    }
    # The messages saved one a line are --input for a replay: the event is written, and the line that
    # is not JSON comes back as the same dead letter.
    summary, again = run_pipeline(org, tmp_path, [m.data.decode() for m in received], name="replay")
    assert _org(org) == expected_records([replayed])
    assert [(d["stage"], d["reason"], d["event"], d["retryable"]) for d in again] == [
        ("parse", "invalid_json", "{oops", False)
    ]
    assert (summary.events_read, summary.dead_lettered) == (2, {"invalid_json": 1})


def test_a_streaming_run_publishes_its_dead_letters_as_they_happen(pubsub):
    topic, subscription = pubsub.new_topic("stream-in")
    dead_letter_topic, dead_letters = pubsub.new_topic("stream-dead-letters")
    bad = ["{oops", '{"type": "identify", "messageId": "x1"}']
    publish(topic, bad)
    p = beam.Pipeline(runner=STREAMING_RUNNER, options=PipelineOptions(["--streaming"]))
    parsed = (p | "Read" >> ReadPubSub(subscription=subscription)).output | "Parse" >> ParseEvents(True)
    _ = parsed.dead_letter | "WriteDeadLetters" >> WriteDeadLettersToPubSub(dead_letter_topic)

    def all_dead_lettered(result) -> bool:
        return sum(v for k, v in counters(result)[0].items() if k.startswith("dead_letter:")) == len(bad)

    with Heartbeat(topic):
        _, done = run_until(p, all_dead_lettered, RUN_TIMEOUT)
    received = sorted((json.loads(m.data) for m in pull(dead_letters, len(bad))), key=lambda d: d["reason"])

    assert done
    source = f"pubsub://{subscription}"
    assert [(d["stage"], d["reason"], d["event"], d["source"]) for d in received] == [
        ("parse", "invalid_json", "{oops", source),
        ("parse", "missing_user_id", json.loads(bad[1]), source),
    ]


def test_events_published_to_pubsub_arrive_as_the_exact_leads_and_accounts(pubsub, org, tmp_path):
    topic, subscription = pubsub.new_topic("segment")
    events = _events()
    # Out of order, and two of them delivered twice (the same messageId), as Segment's retries do.
    arrivals = [events[i] for i in (5, 0, 13, 2, 1, 17, 3, 4, 6, 12, 7, 8, 14, 9, 10, 15, 11, 16)] + [
        events[0],
        events[13],
    ]
    publish(topic, [json.dumps(e) for e in arrivals])
    expected = expected_records(events)
    prefix = str(tmp_path / "dead" / "dead_letters")
    options = streaming_options(org, prefix)
    settings = ConnectionSettings(login_url=org.info["login_url"], ca_bundle=org.info["ca_bundle"])
    p = beam.Pipeline(runner=STREAMING_RUNNER, options=options)
    build(
        p,
        options.view_as(BeamforceOptions),
        CredentialsSource(),
        settings,
        source=ReadPubSub(subscription=subscription),
        streaming=True,
    )

    def written(result) -> bool:
        totals, string_sets = counters(result)
        summary = Summary.from_metrics(totals, string_sets, dead_letter_output=prefix)
        return summary.events_read == len(arrivals) and summary.balanced and _org(org) == expected

    with Heartbeat(topic):
        result, done = run_until(p, written, RUN_TIMEOUT)

    assert _org(org) == expected
    assert done
    summary = Summary.from_metrics(*counters(result), dead_letter_output=prefix)
    assert (summary.events_read, summary.deduplicated, summary.dead_lettered) == (len(arrivals), 2, {})
    assert expected["Lead"]["person1@example.com"]["Title"] == "title 9"
    assert expected["Account"]["G-0"][TIMES_FIELD]["Name"] == at(26)


@pytest.mark.parametrize(
    "flag, kind", [("--input_subscription", "subscription"), ("--dead_letter_topic", "topic")]
)
def test_a_pubsub_name_that_does_not_exist_is_refused_before_the_run(pubsub, tmp_path, flag, kind):
    # Found at the first dead letter, a missing topic would end the run after Salesforce was written.
    topic, subscription = pubsub.new_topic("names")
    missing = f"projects/{PROJECT}/{kind}s/no-such-{kind}"
    given = {"--input_subscription": subscription, "--dead_letter_topic": topic, flag: missing}
    argv = ["--streaming", *(a for pair in given.items() for a in pair)]
    environ = {"PUBSUB_EMULATOR_HOST": pubsub.host, **ENV}
    with pytest.raises(ConfigurationError) as raised:
        validate(PipelineOptions(argv), environ)
    assert str(raised.value) == (
        f"{flag} '{missing}': Pub/Sub has no such {kind} (or not in that project): create it (gcloud pubsub "
        f"{kind}s create ...), or give the full name of one that exists, projects/PROJECT/{kind}s/NAME"
    )
    validate(
        PipelineOptions(["--streaming", "--input_subscription", subscription, "--dead_letter_topic", topic]),
        environ,
    )


def _waiting_lines(folder: Path) -> int:
    """Complete lines in a streaming run's temporary files (its window still open)."""
    return sum(f.read_bytes().count(b"\n") for f in folder.glob(".temp-dead_letters-*/*") if f.is_file())


def test_ctrl_c_stops_a_stream_waiting_for_the_api_allocation(pubsub, org, tmp_path):
    """Found by a review: a stream waits when the org's allocation is used up (its default), and Ctrl-C did
    not stop it: the writer went on checking the limits, 5 s, 10 s, 20 s ... up to 5 minutes apart, for as
    long as the allocation stayed used up."""
    org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    topic, subscription = pubsub.new_topic("waiting")
    argv = [
        *(sys.executable, "-m", "pipeline", "--input_subscription", subscription),
        *("--dead_letter_output", str(tmp_path / "dead_letters"), "--max_buffering_seconds", "0.5"),
        *("--salesforce_login_url", org.info["login_url"], "--salesforce_ca_bundle", org.info["ca_bundle"]),
    ]
    proc = popen_interruptible(
        argv, cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    before: list[str] = []
    try:
        publish(topic, [json.dumps(identify("w1", 0, email="w1@example.com"))])
        with Heartbeat(topic):  # keeps the local runner's reads going
            before = stderr_until(proc, ALLOCATION_USED_UP)  # waiting for the allocation
        proc.send_signal(signal.SIGINT)
        # The first wait is 5 s, the next 10 s: without the stop, the stream would still be waiting.
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(before) + err
    assert "checking its limits again" not in err  # no second wait
    assert "Traceback" not in err, err  # the writers' ended waits are not reported as failures
    # The event in hand is told apart from events lost to a bug.
    assert "  balanced:          no: stopped with 1 events read and not handled yet" in out.splitlines(), out
    assert org.admin("GET", "/_emulator/records/Lead")["records"] == []


def test_ctrl_c_on_a_stream_keeps_the_dead_letters_of_the_open_window(pubsub, org, tmp_path):
    """Found by a hostile review: the summary said they were written, but they sat in Beam's temporary
    files, which the next run never reads."""
    topic, subscription = pubsub.new_topic("stopped")
    folder = tmp_path / "dead"
    argv = [
        *(sys.executable, "-m", "pipeline", "--input_subscription", subscription),
        *("--dead_letter_output", str(folder / "dead_letters"), "--summary_output", str(tmp_path / "s.json")),
        *("--salesforce_login_url", org.info["login_url"], "--salesforce_ca_bundle", org.info["ca_bundle"]),
    ]
    # SIGINT's default disposition in the child: a suite started in the background ignores SIGINT, and
    # so would the pipeline.
    proc = popen_interruptible(argv, cwd=Path(__file__).parents[2], stderr=subprocess.PIPE, text=True)
    try:
        publish(topic, [f"not json {n}" for n in range(5)])
        deadline = time.monotonic() + 60
        with Heartbeat(topic):  # keeps the local runner's reads going
            while _waiting_lines(folder) < 5 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
        assert _waiting_lines(folder) == 5  # the 60 s window is still open
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    [kept] = folder.glob("dead_letters-*-stopped-000-*-00000-of-00001.jsonl")
    assert sorted(json.loads(line)["event"] for line in kept.read_text().splitlines()) == [
        f"not json {n}" for n in range(5)
    ]
    assert sorted(p.name for p in folder.iterdir()) == [kept.name]  # no temporary folder left
    assert f"5 dead letters of the window still open when the run stopped: written to {kept}" in err
    assert json.loads((tmp_path / "s.json").read_text())["events_dead_lettered"] == 5
