"""The streaming demo: sample events published at a steady rate to Pub/Sub (or Kafka), the pipeline writing
them into a local Salesforce, records shown as they arrive, then a drain and the summary.

Run it as `./run_local.sh stream [--kafka]` (or `python -m examples.stream_demo` from the repository).

Pub/Sub: the local runner never ends a stream, so the demo drains it: once every published event is
accounted for in the pipeline's progress lines (written, filtered, deduplicated or dead-lettered) and every
dead letter has reached the dead-letter topic, it stops the pipeline with Ctrl-C (SIGINT); the pipeline then
prints its summary. Kafka: the local runners cannot run the Kafka reader unbounded, so the pipeline reads
as a catch-up run (--kafka_max_idle_seconds): it reads while the events are published, stops once no record
came for a few seconds, then writes what it read (records appear at the end) and ends with its summary.
Either way the demo compares what it published with what the summary accounts for, and fails when any
event is missing. Dead letters go to a topic, not files: a streaming run writes dead-letter files once a
minute's window closes, so a run stopped sooner would count dead letters that no file holds.
"""

import argparse
import dataclasses
import glob
import gzip
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from emulator.process import EmulatorProcess, start_emulator
from examples import brokers
from examples.run_local import ACCOUNT_COLUMNS, LEAD_COLUMNS, SEED_RECORDS, seed_record, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The seed document's calls first, so that a short demo shows their records too.
DEFAULT_EVENTS = (str(HERE / "events" / "seed-calls.jsonl"), str(HERE / "events" / "sample-mix.jsonl.gz"))
# The local runner's Pub/Sub read takes at most 10 messages a pull: it keeps up with about 10 events a
# second on this project's 2-core machines; a faster rate only makes the drain longer.
DEFAULT_RATE = 10.0
DEFAULT_SECONDS = 30.0
DEFAULT_DRAIN_SECONDS = 60.0
PROJECT = "beamforce-demo"
TOPIC = f"projects/{PROJECT}/topics/segment-events"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/beamforce"
DEAD_LETTER_TOPIC = f"projects/{PROJECT}/topics/dead-letters"
DEAD_LETTER_SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/dead-letters"
KAFKA_TOPIC = "segment-events"
KAFKA_DEAD_LETTER_TOPIC = "segment-events-dead-letters"
KAFKA_PARTITIONS = 3
KAFKA_GROUP = "beamforce-demo"
KAFKA_MIN_IDLE_SECONDS = 3.0
# Demo defaults (a later flag given by the user wins): records appear within a second or two, and the
# progress line the drain watches comes every second.
PIPELINE_DEFAULTS = ("--max_buffering_seconds", "1", "--progress_seconds", "1")
TICK_SECONDS = 1.0
START_SECONDS = 120.0  # for the pipeline to log in, build its graph and start reading
STOP_SECONDS = 60.0  # for the pipeline to stop and print its summary after SIGINT
DEAD_LETTER_SECONDS = 15.0  # for the dead letters counted to reach the demo once the pipeline stopped
EXIT_RETRYABLE = 3  # done, with retryable dead letters (pipeline/main.py): every event accounted for
EXIT_INTERRUPTED = 130  # the pipeline's exit status after Ctrl-C, once its summary is printed
EXIT_MISSING = 2
ID_FIELDS = ("userId", "anonymousId", "groupId")
_PROGRESS = re.compile(
    r"progress: read (?P<read>\d+), written (?P<written>\d+), filtered (?P<filtered>\d+), "
    r"deduplicated (?P<deduplicated>\d+), dead-lettered (?P<dead_lettered>\d+)"
)


@dataclasses.dataclass(frozen=True)
class Progress:
    """The counts of the pipeline's latest progress line."""

    read: int = 0
    written: int = 0
    filtered: int = 0
    deduplicated: int = 0
    dead_lettered: int = 0

    @property
    def accounted(self) -> int:
        """Events read that have an outcome."""
        return self.written + self.filtered + self.deduplicated + self.dead_lettered


def parse_progress(line: str) -> Progress | None:
    """The counts of a progress line of the pipeline (pipeline/progress.py), else None."""
    found = _PROGRESS.search(line)
    return Progress(**{k: int(v) for k, v in found.groupdict().items()}) if found else None


def read_events(patterns: Sequence[str]) -> list[str]:
    """The non-blank lines of the files the globs match (a glob's files sorted; .gz decompressed), in
    order."""
    lines = []
    for path in [path for pattern in patterns for path in sorted(glob.glob(pattern))]:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
            lines += [line.rstrip("\r\n") for line in f if line.strip()]
    return lines


def message_of(line: str) -> tuple[bytes, str | None, dict[str, str]]:
    """A line as a publisher sends it: (data, key: the user or group it is about, attributes: the
    event's messageId, as Segment sets it). Lines that are not events are sent as they are."""
    data = line.encode("utf-8", errors="surrogateescape")
    try:
        event = json.loads(line)
    except ValueError:
        return data, None, {}
    if not isinstance(event, dict):
        return data, None, {}
    key = next((str(event[f]) for f in ID_FIELDS if isinstance(event.get(f), str | int)), None)
    message_id = event.get("messageId")
    return data, key, ({"messageId": message_id} if isinstance(message_id, str) and message_id else {})


def events_to_publish(lines: Sequence[str], rate: float, seconds: float) -> list[str]:
    """The first rate x seconds lines: what the demo publishes in `seconds` at `rate` a second."""
    return list(lines[: max(1, math.floor(rate * seconds))])


def kafka_idle_seconds(rate: float) -> float:
    """How long a partition may go without a record before the pipeline stops reading it: well past the
    gap between two records of a partition at `rate` (keys spread the events over the partitions)."""
    return max(KAFKA_MIN_IDLE_SECONDS, 3 * KAFKA_PARTITIONS / rate)


def check_outcome(
    published: int, summary: Mapping[str, Any] | None, exit_code: int | None, dead_letters: int
) -> list[str]:
    """What went wrong, judged from the events published, the pipeline's summary (its JSON), its exit
    status (0, 3 with retryable dead letters, 130 after the demo's SIGINT) and the dead letters that reached
    the dead-letter topic; empty when every event is accounted for."""
    problems = []
    if exit_code not in (0, EXIT_RETRYABLE, EXIT_INTERRUPTED):
        problems.append(f"the pipeline exited with status {exit_code} (see its log)")
    if summary is None:
        return problems + ["the pipeline wrote no summary: no event can be shown as accounted for"]
    read, counted = summary["events_read"], summary["events_dead_lettered"]
    if read < published:
        problems.append(f"{published - read} of the {published} events published were not read")
    if not summary["balanced"]:
        accounted = sum(
            summary[k] for k in ("events_written", "events_filtered", "deduplicated", "events_dead_lettered")
        )
        problems.append(f"the counts do not add up: {read} events read, {accounted} accounted for")
    if dead_letters < counted:
        problems.append(f"{counted - dead_letters} of the {counted} dead letters counted never arrived")
    return problems


def record_line(sobject: str, record: Mapping[str, Any]) -> str:
    """One record as it arrives, in a line."""

    def text(field: str) -> str:
        return str(record.get(field) or "")

    if sobject == "Lead":
        name = f"{text('FirstName')} {text('LastName')}".strip()
        return f"  + Lead    {text('Email')}  {name}, {text('Company')}"
    return f"  + {sobject:<7} {text('AccountNumber')}  {text('Name')}, {text('BillingCity')}"


def dead_letter_line(data: bytes, width: int = 60) -> str:
    """One dead letter (a JSON line, as the pipeline publishes it) as it arrives, in a line."""
    try:
        letter = json.loads(data)
        event = letter["event"] if isinstance(letter["event"], str) else json.dumps(letter["event"])
        what = f"{letter['stage']}/{letter['reason']}: {event}"
    except (ValueError, KeyError, TypeError):
        what = data.decode("utf-8", "replace")
    return f"  x dead letter {what[:width]}" + ("..." if len(what) > width else "")


class RecordFeed:
    """The records that appeared (new Ids) and were updated since the last look."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, Any]] = {}  # Id -> LastModifiedDate

    def update(self, sobject: str, records: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping], int]:
        """(records not seen before, how many seen ones changed)."""
        seen = self._seen.setdefault(sobject, {})
        new, changed = [], 0
        for r in records:
            if r["Id"] not in seen:
                new.append(r)
            elif seen[r["Id"]] != r.get("LastModifiedDate"):
                changed += 1
            seen[r["Id"]] = r.get("LastModifiedDate")
        return new, changed


class PipelineProcess:
    """`python -m pipeline` as a child process: its stderr goes to a log, and its latest progress line is
    kept; lines that are not INFO (warnings, errors) are echoed to `echo` when given. Its stdout (the
    summary) goes to `stdout`, else to this process's."""

    def __init__(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        echo: IO[str] | None = None,
        stdout: IO[str] | None = None,
    ) -> None:
        self.log_path = log_path
        self.progress = Progress()
        self.progress_lines = 0
        self._echo = echo
        # A process started in the background by a shell (a CI job, `cmd &`) ignores SIGINT, and so would
        # the pipeline, which then never stops on the demo's Ctrl-C: popen_interruptible starts it without.
        self._proc = brokers.popen_interruptible(
            list(cmd),
            cwd=ROOT,
            env=dict(env),
            stdout=stdout,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # the demo passes on Ctrl-C itself, once
        )
        self._reader = threading.Thread(target=self._read_log, name="pipeline-log", daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self._proc.stderr is not None
        with open(self.log_path, "w", encoding="utf-8") as log, self._proc.stderr:
            for line in self._proc.stderr:
                log.write(line)
                log.flush()
                progress = parse_progress(line)
                if progress is not None:
                    self.progress = progress
                    self.progress_lines += 1
                elif self._echo is not None and not line.startswith("INFO"):
                    self._echo.write(f"  pipeline: {line}")

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll()

    def interrupt(self, timeout: float = STOP_SECONDS) -> int:
        """Ctrl-C for the pipeline, unless it ended (it prints its summary and exits 130); killed after
        `timeout`. Returns its exit status."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        return self._proc.returncode


@dataclasses.dataclass(frozen=True)
class Settings:
    kafka: bool = False
    events: tuple[str, ...] = DEFAULT_EVENTS
    rate: float = DEFAULT_RATE
    seconds: float = DEFAULT_SECONDS
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    show: int = 5
    out: Path = ROOT / "out" / "stream"
    pipeline_args: tuple[str, ...] = ()


@dataclasses.dataclass
class Outcome:
    """What the demo did: events published, the pipeline's summary (JSON) and exit status, the dead letters
    received, the org's records at the end, and what went wrong (nothing: every event is accounted for)."""

    published: int
    summary: dict | None
    exit_code: int | None
    dead_letters: list[bytes]
    records: dict[str, list[dict]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


class _Broker:
    """The demo's broker, started with its topics: the pipeline's source and dead-letter flags and
    environment, publishers, an inbox of dead letters, and whether the pipeline streams from it (Pub/Sub:
    stopped by the demo) or ends its read when idle (Kafka)."""

    def __init__(self, kafka: bool, rate: float, workdir: Path) -> None:
        self.kafka, self.streams = kafka, not kafka
        self.idle_seconds = kafka_idle_seconds(rate)
        if kafka:
            self._broker = brokers.start_kafka_broker(workdir / "kafka")
            self._broker.create_topic(KAFKA_TOPIC, KAFKA_PARTITIONS)
            self._broker.create_topic(KAFKA_DEAD_LETTER_TOPIC, 1)
            self.topic, self.dead_letter_topic = KAFKA_TOPIC, KAFKA_DEAD_LETTER_TOPIC
            self.where = f"Kafka broker at {self._broker.bootstrap}, topic {KAFKA_TOPIC}"
            self.flags = (
                *("--kafka_bootstrap_servers", self._broker.bootstrap, "--kafka_topic", KAFKA_TOPIC),
                *("--kafka_group_id", KAFKA_GROUP, "--kafka_max_idle_seconds", f"{self.idle_seconds:g}"),
                *("--dead_letter_kafka_topic", KAFKA_DEAD_LETTER_TOPIC),
            )
            self.environ: dict[str, str] = {}
        else:
            self._broker = brokers.start_pubsub_emulator(workdir / "pubsub-emulator.log")
            self._broker.create_topic(TOPIC, SUBSCRIPTION)
            self._broker.create_topic(DEAD_LETTER_TOPIC, DEAD_LETTER_SUBSCRIPTION)
            self.topic, self.dead_letter_topic = TOPIC, DEAD_LETTER_TOPIC
            self.where = f"Pub/Sub emulator at {self._broker.host}, topic {TOPIC}"
            self.flags = ("--input_subscription", SUBSCRIPTION, "--dead_letter_topic", DEAD_LETTER_TOPIC)
            self.environ = self._broker.environ

    def publisher(self):
        return self._broker.publisher(self.topic)

    def heartbeat(self) -> brokers.Heartbeat | None:
        return brokers.Heartbeat(self.publisher()) if self.streams else None

    def dead_letters(self) -> brokers.Inbox | brokers.KafkaTopicInbox:
        return self._broker.inbox(self.dead_letter_topic if self.kafka else DEAD_LETTER_SUBSCRIPTION)

    def stop(self) -> None:
        self._broker.stop()


def missing(kafka: bool) -> str | None:
    """What the demo needs that is not installed, or None."""
    return brokers.kafka_missing() if kafka else brokers.pubsub_missing()


def run_demo(settings: Settings, say: Callable[[str], None] = print, echo: IO[str] = sys.stderr) -> Outcome:
    """Runs the whole demo (brokers and local Salesforce started and stopped here) and returns its outcome."""
    lines = events_to_publish(read_events(settings.events), settings.rate, settings.seconds)
    settings.out.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", "dead_letters.jsonl"):
        (settings.out / stale).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="beamforce-stream-") as tmp:
        workdir = Path(tmp)
        with start_emulator(workdir / "salesforce", config_path=str(HERE / "org.yaml")) as emu:
            say(f"local Salesforce at {emu.info['instance_url']}")
            broker = _Broker(settings.kafka, settings.rate, workdir)
            try:
                say(broker.where)
                with broker.dead_letters() as inbox:
                    return _stream(settings, lines, emu, broker, inbox, say, echo)
            finally:
                broker.stop()


def _pipeline_command(emu: EmulatorProcess, broker: _Broker, settings: Settings) -> list[str]:
    info = emu.info
    return [
        sys.executable,
        "-m",
        "pipeline",
        *broker.flags,
        *("--salesforce_login_url", info["login_url"], "--salesforce_ca_bundle", info["ca_bundle"]),
        *("--summary_output", str(settings.out / "summary.json")),
        *PIPELINE_DEFAULTS,
        *settings.pipeline_args,
    ]


def _stream(
    settings: Settings,
    lines: Sequence[str],
    emu: EmulatorProcess,
    broker: _Broker,
    inbox: brokers.Inbox | brokers.KafkaTopicInbox,
    say: Callable[[str], None],
    echo: IO[str],
) -> Outcome:
    info = emu.info
    env = dict(
        os.environ,
        **broker.environ,
        SALESFORCE_USERNAME=info["username"],
        SALESFORCE_PASSWORD=info["password"],
        SALESFORCE_SECURITY_TOKEN=info["security_token"],
    )
    publisher = brokers.PacedPublisher(
        broker.publisher(), [message_of(line) for line in lines], settings.rate
    )
    heartbeat = broker.heartbeat()
    watch = _Watch(settings, len(lines), emu, publisher, heartbeat, inbox, say)
    pipeline: PipelineProcess | None = None
    problems: list[str] = []
    publishing = f"publishing {len(lines)} events at {settings.rate:g} a second"
    try:
        if not broker.streams:
            # The read ends once idle: the events must flow before it starts.
            say(
                f"{publishing}; the local runners cannot stream from Kafka, so the pipeline reads them as "
                f"a catch-up run: it stops reading {broker.idle_seconds:g} s after the last one, then writes"
            )
            publisher.start()
        pipeline = PipelineProcess(
            _pipeline_command(emu, broker, settings), env, settings.out / "pipeline.log", echo
        )
        say(f"pipeline started (its log: {pipeline.log_path})")
        if broker.streams:
            problems += _publish_once_reading(pipeline, publisher, publishing, say)
        if not problems:
            problems += watch.until_drained(pipeline, streams=broker.streams)
    except KeyboardInterrupt:
        problems.append("interrupted (Ctrl-C) before every event was accounted for")
    finally:
        exit_code = _stop(pipeline, publisher, heartbeat, say)
    summary = _load(settings.out / "summary.json")
    counted = summary["events_dead_lettered"] if summary else 0
    wait_until(lambda: len(inbox.messages) >= counted, DEAD_LETTER_SECONDS)
    records = _records(emu)
    watch.show_new(records)
    dead_letters = inbox.messages
    (settings.out / "dead_letters.jsonl").write_bytes(b"".join(d.rstrip(b"\n") + b"\n" for d in dead_letters))
    if publisher.error is not None:
        problems.append(f"publishing failed: {publisher.error}")
    problems += [f"the broker refused an event: {e}" for e in publisher.deliveries.errors]
    published = publisher.deliveries.delivered
    problems = check_outcome(published, summary, exit_code, len(dead_letters)) + problems
    outcome = Outcome(published, summary, exit_code, dead_letters, records, problems)
    _report(outcome, heartbeat, emu, broker, settings, say)
    return outcome


def _publish_once_reading(
    pipeline: PipelineProcess, publisher: brokers.PacedPublisher, publishing: str, say
) -> list[str]:
    """Starts publishing once the pipeline reads (its first progress line); else says why not."""
    if not wait_until(lambda: pipeline.progress_lines > 0 or pipeline.exit_code is not None, START_SECONDS):
        return [f"the pipeline did not start reading within {START_SECONDS:g} s"]
    if pipeline.exit_code is not None:
        return [f"the pipeline ended (status {pipeline.exit_code}) before it read anything"]
    say(publishing)
    publisher.start()
    return []


def _stop(
    pipeline: PipelineProcess | None,
    publisher: brokers.PacedPublisher,
    heartbeat: brokers.Heartbeat | None,
    say,
) -> int | None:
    """Stops publishing and the pipeline (Ctrl-C, unless it ended); returns its exit status."""
    publisher.stop()
    exit_code = None
    if pipeline is not None:
        if pipeline.exit_code is None:
            if heartbeat is not None and heartbeat.ident is None:
                heartbeat.start()  # the pipeline's cancel waits behind its Pub/Sub pull
            say("stopping the pipeline (Ctrl-C): it prints its summary")
        exit_code = pipeline.interrupt()
    if heartbeat is not None:
        heartbeat.stop()
    return exit_code


class _Watch:
    """Every second: the records and dead letters that arrived, and the counts so far."""

    def __init__(self, settings: Settings, total: int, emu, publisher, heartbeat, inbox, say) -> None:
        self._settings, self._total, self._emu, self._say = settings, total, emu, say
        self._publisher, self._heartbeat, self._inbox = publisher, heartbeat, inbox
        self._feed = RecordFeed()
        self._dead_letters_shown = 0

    def until_drained(self, pipeline: PipelineProcess, streams: bool) -> list[str]:
        """Shows what arrives until every published event is accounted for and every dead letter arrived
        (streaming: then the demo stops the pipeline), or the pipeline ended after its read (Kafka): then
        []; else what stopped it first."""
        started = time.monotonic()
        drained_by = None
        pause = threading.Event()
        while True:
            pause.wait(TICK_SECONDS)
            self.show_new(_records(self._emu))
            progress, published = pipeline.progress, self._publisher.deliveries.delivered
            self._say(
                f"[{time.monotonic() - started:5.1f} s] published {published}/{self._total}, "
                f"{_status(pipeline)}"
            )
            if pipeline.exit_code is not None:
                if self._publisher.is_alive() or streams:
                    return [f"the pipeline stopped (status {pipeline.exit_code}) before it read every event"]
                return []  # it read until idle, wrote and ended: its summary tells whether all arrived
            if self._publisher.is_alive():
                continue
            if drained_by is None:
                drained_by = time.monotonic() + self._settings.drain_seconds
                self._say(
                    f"all {published} events published; waiting for the pipeline to account for them"
                    if streams
                    else f"all {published} events published; the pipeline writes once its read is idle"
                )
                if self._heartbeat is not None:
                    self._heartbeat.start()
            arrived = len(self._inbox.messages)
            if streams and progress.read >= published and progress.accounted >= published:
                if arrived >= progress.dead_lettered:
                    self._say(f"all {published} events accounted for")
                    return []
            if time.monotonic() > drained_by:
                return [
                    f"after {self._settings.drain_seconds:g} s (--drain_seconds), {progress.accounted} of "
                    f"{published} events were accounted for, and {arrived} of {progress.dead_lettered} "
                    "dead letters had arrived"
                ]

    def show_new(self, records: Mapping[str, list[dict]]) -> None:
        show = self._settings.show
        for sobject, rows in records.items():
            new, changed = self._feed.update(sobject, rows)
            for r in new[:show]:
                self._say(record_line(sobject, r))
            if len(new) > show or changed:
                self._say(f"  ... {sobject}: {max(len(new) - show, 0)} more new, {changed} updated")
        dead_letters = self._inbox.messages
        for data in dead_letters[self._dead_letters_shown :]:
            self._say(dead_letter_line(data))
        self._dead_letters_shown = len(dead_letters)


def _status(pipeline: PipelineProcess) -> str:
    p = pipeline.progress
    if pipeline.progress_lines == 0:
        return "pipeline reading" if pipeline.exit_code is None else f"pipeline ended ({pipeline.exit_code})"
    return (
        f"read {p.read}, written {p.written}, filtered {p.filtered}, deduplicated {p.deduplicated}, "
        f"dead-lettered {p.dead_lettered}"
    )


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    """Whether `condition` came true within `timeout` seconds, asked every `every` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(every)
    return True


def _records(emu: EmulatorProcess) -> dict[str, list[dict]]:
    return {o: emu.admin("GET", f"/_emulator/records/{o}")["records"] for o in ("Lead", "Account")}


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _report(outcome: Outcome, heartbeat, emu: EmulatorProcess, broker: _Broker, settings: Settings, say):
    records, summary = outcome.records, outcome.summary
    for sobject, field, value, fields in SEED_RECORDS:
        if any(str(r.get(field, "")).lower() == value.lower() for r in records[sobject]):
            say(f"\n{seed_record(sobject, field, value, fields, records[sobject])}")
    say(f"\n{table('Leads', records['Lead'], LEAD_COLUMNS, 12)}")
    say(f"\n{table('Accounts', records['Account'], ACCOUNT_COLUMNS, 12)}")
    calls = emu.admin("GET", "/_emulator/calls")
    say(f"\nSalesforce API calls: {calls['total']} {calls['by_kind']}")
    say(
        f"dead letters: {len(outcome.dead_letters)} from {broker.dead_letter_topic}, copied to "
        f"{settings.out / 'dead_letters.jsonl'} (valid --input for a replay)"
    )
    say(f"summary: {settings.out / 'summary.json'}   pipeline log: {settings.out / 'pipeline.log'}")
    if heartbeat is not None and summary and summary.get("blank_lines"):
        say(f"(the blank lines are the demo's {heartbeat.sent} keep-alive messages, not events)")
    if outcome.ok:
        assert summary is not None
        say(
            f"\nOK: all {outcome.published} events published were accounted for: "
            f"{summary['events_written']} written, {summary['events_filtered']} filtered, "
            f"{summary['deduplicated']} deduplicated, {summary['events_dead_lettered']} dead-lettered"
        )
        return
    say(f"\nNOT OK: {outcome.published} events were published, and not all are accounted for:")
    for problem in outcome.problems:
        say(f"  - {problem}")
    if broker.streams:
        say(
            "  (The local runner acknowledges Pub/Sub messages when it pulls them: events it had read but "
            "not handled when it stopped are not left in the subscription.)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./run_local.sh stream",
        description="Streams the sample events into a local Salesforce: starts it and the Pub/Sub emulator "
        "(or a Kafka broker with --kafka), publishes the events at a steady rate, runs the pipeline and "
        "shows records as they arrive, then drains it and prints the summary. Unknown arguments go to the "
        "pipeline (python -m pipeline --help).",
    )
    parser.add_argument("--kafka", action="store_true", help="go through a Kafka broker (noida-db)")
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"events published a second (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"publish for this long at most: rate x seconds events (default {DEFAULT_SECONDS:g}; the "
        "sample has about 1,000)",
    )
    parser.add_argument(
        "--events",
        action="append",
        metavar="GLOB",
        help="event files to publish, in order (repeatable; default: the seed's calls, then the sample "
        "events)",
    )
    parser.add_argument(
        "--drain_seconds",
        type=float,
        default=DEFAULT_DRAIN_SECONDS,
        help="after publishing, how long to wait for every event to be accounted for before stopping "
        f"anyway, and failing (default {DEFAULT_DRAIN_SECONDS:g})",
    )
    parser.add_argument("--show", type=int, default=5, help="new records printed a second (default 5)")
    parser.add_argument(
        "--out",
        default=str(ROOT / "out" / "stream"),
        help="folder for the summary, the dead letters and the pipeline's log, replaced each run "
        "(default ./out/stream)",
    )
    args, pipeline_args = parser.parse_known_args(argv)
    for name in ("rate", "seconds", "drain_seconds"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name} must be above 0")
    reason = missing(args.kafka)
    if reason:
        print(f"stream demo: cannot run: {reason}", file=sys.stderr)
        return EXIT_MISSING
    events = tuple(args.events or DEFAULT_EVENTS)
    if not read_events(events):
        parser.error(f"--events {' '.join(events)} matches no file with events")
    settings = Settings(
        kafka=args.kafka,
        events=events,
        rate=args.rate,
        seconds=args.seconds,
        drain_seconds=args.drain_seconds,
        show=args.show,
        out=Path(args.out),
        pipeline_args=tuple(pipeline_args),
    )
    try:
        outcome = run_demo(settings, say=lambda text: print(text, flush=True))
    except brokers.BrokerError as e:
        print(f"stream demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the pipeline ran or after it stopped: everything is stopped
        return EXIT_INTERRUPTED
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
