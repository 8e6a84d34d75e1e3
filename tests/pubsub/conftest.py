"""Google's Pub/Sub emulator for these tests: started once per session, skipped with the reason where absent.

The DirectRunner reads Pub/Sub with one worker thread whose pull waits up to 30 s for a message, and
its timers and cancel() wait behind that pull. `Heartbeat` keeps a topic busy with empty messages
(which ReadPubSub counts as blank lines), so that no pull ever waits long; `run_until` cancels a run
once what the test waits for has happened.
"""

import gc
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import apache_beam as beam
import pytest
from apache_beam.runners.runner import PipelineResult
from apache_beam.utils.timestamp import Timestamp

from examples.stream_demo import wait_until
from pipeline import direct_runner_metrics
from tests.e2e.conftest import keyed_emulator  # noqa: F401  (the local Salesforce of test_pubsub_emulator.py)

PACKAGE = "google-cloud-cli-pubsub-emulator"
PROGRAM = "cloud-pubsub-emulator"
# Where the Debian package puts it (`dpkg -L google-cloud-cli-pubsub-emulator`).
PACKAGED = f"/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/{PROGRAM}"
PROJECT = "beamforce-test"
READY = b"Server started, listening on"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
HEARTBEAT_SECONDS = 0.2
HEARTBEAT_ATTRIBUTE = "heartbeat"
PULL_TIMEOUT = 10.0


def find_emulator() -> str | None:
    """The emulator's start script: on PATH, where dpkg says the package put it, or its usual place."""
    found = shutil.which(PROGRAM)
    if found:
        return found
    if shutil.which("dpkg-query"):
        listed = subprocess.run(["dpkg-query", "-L", PACKAGE], capture_output=True, text=True, check=False)
        for path in listed.stdout.splitlines():
            if path.endswith(f"/bin/{PROGRAM}") and os.access(path, os.X_OK):
                return path
    return PACKAGED if os.access(PACKAGED, os.X_OK) else None


def _missing() -> str | None:
    """Why the emulator tests cannot run here, or None."""
    try:
        from google.cloud import pubsub  # noqa: F401
    except ImportError:
        return "the Pub/Sub client is not installed: pip install 'apache-beam[gcp]'"
    if find_emulator() is None:
        return (
            f"the Pub/Sub emulator is not installed: apt-get install {PACKAGE} (from Google Cloud's apt "
            f"repository), or put {PROGRAM} on PATH"
        )
    if shutil.which("java") is None:
        return f"the Pub/Sub emulator ({PACKAGE}) needs Java: apt-get install default-jre-headless"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PubSubEmulator:
    """A running emulator: its host:port, clients for it (once PUBSUB_EMULATOR_HOST points at it)."""

    def __init__(self, proc: subprocess.Popen, host: str, log_path: Path) -> None:
        self.proc = proc
        self.host = host
        self.log_path = log_path

    def new_topic(self, name: str) -> tuple[str, str]:
        """A new topic and a subscription of it, named after `name` and unique: (topic, subscription)."""
        from google.cloud import pubsub

        unique = f"{name}-{uuid.uuid4().hex[:8]}"
        topic = f"projects/{PROJECT}/topics/{unique}"
        publisher = pubsub.PublisherClient()
        try:
            publisher.create_topic(name=topic)
        finally:
            publisher.transport.close()
        return topic, self.subscribe(topic, unique)

    def subscribe(self, topic: str, name: str) -> str:
        """A new subscription `name` of `topic`: it holds every message published from now on."""
        from google.cloud import pubsub

        subscription = f"projects/{PROJECT}/subscriptions/{name}"
        with pubsub.SubscriberClient() as subscriber:
            subscriber.create_subscription(name=subscription, topic=topic)
        return subscription

    def subscriptions(self, topic: str) -> set[str]:
        """The subscriptions `topic` has now."""
        from google.cloud import pubsub

        publisher = pubsub.PublisherClient()
        try:
            return set(publisher.list_topic_subscriptions(topic=topic))
        finally:
            publisher.transport.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the start script execs java: this is the JVM
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_emulator(log_path: Path) -> PubSubEmulator:
    program = find_emulator()
    assert program is not None
    port = _free_port()
    log = open(log_path, "ab")  # closed by the thread that drains the emulator's output
    proc = subprocess.Popen(
        [program, "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C of pytest must not reach it before the fixture stops it
    )
    ready = threading.Event()

    def drain() -> None:
        # The emulator logs as it serves: its output must be read for as long as it runs.
        assert proc.stdout is not None
        with log, proc.stdout:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if READY in line:
                    ready.set()

    threading.Thread(target=drain, name="pubsub-emulator-log", daemon=True).start()
    started = time.monotonic()
    while not ready.wait(0.1):
        if proc.poll() is not None or time.monotonic() - started > START_TIMEOUT:
            PubSubEmulator(proc, "", log_path).stop()
            tail = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the Pub/Sub emulator did not start; its log ({log_path}):\n{tail}")
    return PubSubEmulator(proc, f"127.0.0.1:{port}", log_path)


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory) -> Iterator[PubSubEmulator]:
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    emulator = start_emulator(tmp_path_factory.mktemp("pubsub") / "emulator.log")
    try:
        yield emulator
    finally:
        # A topic read's temporary subscription is deleted when its pipeline is collected: while the
        # emulator runs, rather than at exit, where the client would retry for a minute.
        gc.collect()
        emulator.stop()


@pytest.fixture
def pubsub(pubsub_emulator, monkeypatch) -> PubSubEmulator:
    """The emulator, with every Pub/Sub client of this process (the runner's too) pointed at it."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    return pubsub_emulator


def publish(topic: str, messages: Sequence[bytes | str], publisher=None, **attributes: str) -> None:
    """Publishes each message (text as UTF-8) with `attributes`, and waits until all are accepted."""
    from google.cloud import pubsub

    client = publisher or pubsub.PublisherClient()
    try:
        futures = [
            client.publish(topic, m.encode() if isinstance(m, str) else m, **attributes) for m in messages
        ]
        for future in futures:
            future.result(timeout=30)
    finally:
        if publisher is None:
            client.stop()
            client.transport.close()


class Received(NamedTuple):
    """A message as a subscriber got it; `publish_us` is its publish time as ReadPubSub gives it (seq)."""

    data: bytes
    attributes: dict[str, str]
    publish_us: int


def pull(subscription: str, count: int) -> list[Received]:
    """The next `count` messages of `subscription` (heartbeats skipped), acknowledged; fails when they do
    not all come within PULL_TIMEOUT seconds of each other."""
    from google.cloud import pubsub

    received: list[Received] = []
    with pubsub.SubscriberClient() as subscriber:
        while len(received) < count:
            pulled = subscriber.pull(subscription=subscription, max_messages=100, timeout=PULL_TIMEOUT)
            assert pulled.received_messages, f"{len(received)} of {count} messages came to {subscription}"
            for m in pulled.received_messages:
                if HEARTBEAT_ATTRIBUTE not in m.message.attributes:
                    published = Timestamp.from_utc_datetime(m.message.publish_time).micros
                    received.append(Received(m.message.data, dict(m.message.attributes), published))
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in pulled.received_messages]
            )
    return received


class Heartbeat(threading.Thread):
    """Publishes an empty message to `topic` every HEARTBEAT_SECONDS until stopped (a context manager)."""

    def __init__(self, topic: str) -> None:
        super().__init__(name="pubsub-heartbeat", daemon=True)
        self._topic = topic
        self._done = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        from google.cloud import pubsub

        publisher = pubsub.PublisherClient()
        try:
            while not self._done.wait(HEARTBEAT_SECONDS):
                publish(self._topic, [b""], publisher, **{HEARTBEAT_ATTRIBUTE: "1"})
                self.sent += 1
        except BaseException as e:  # reported by __exit__, in the test's thread
            self.error = e
        finally:
            publisher.stop()
            publisher.transport.close()

    def __enter__(self) -> "Heartbeat":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join(timeout=30)
        if self.error is not None:
            raise self.error


def run_until(
    p: beam.Pipeline, done: Callable[[PipelineResult], bool], timeout: float
) -> tuple[PipelineResult, bool]:
    """Runs the unbounded pipeline `p` until `done(result)` holds or `timeout` seconds pass, then cancels
    it: (the cancelled run's result, whether `done` held). A heartbeat must keep its topic busy."""
    with direct_runner_metrics.counting_every_bundle():
        result = p.run()
        try:
            held = wait_until(lambda: done(result), timeout, every=0.1)
        finally:
            result.cancel()
    return result, held
