"""A real Kafka broker (noida-db) for these tests: started once per session, skipped where it cannot be.

Nothing is installed here: `pip install -e '.[test]'` brings confluent-kafka and noida-db. The broker
listens on a free loopback port and keeps its data in a temporary folder.
"""

import importlib.util
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from importlib.resources import files
from pathlib import Path

import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline

from examples.brokers import popen_interruptible

# A Python splittable DoFn runs on the FnApiRunner only here (DESIGN.md: What runs on these machines).
RUNNER = "FnApiRunner"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLIENT_TIMEOUT = 10.0


# The local Salesforce's fixtures, for the tests that run the whole pipeline from Kafka.
from tests.e2e.conftest import emulator, org  # noqa: E402, F401


def _missing() -> str | None:
    """Why the broker tests cannot run here, or None."""
    for module, package in (("confluent_kafka", "confluent-kafka"), ("noida_db", "noida-db")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed: pip install -e '.[test]' (or pip install {package})"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _program() -> str:
    """The broker's binary inside the noida-db package (its `noida-db` launcher would be a second process)."""
    binary = files("noida_db").joinpath("noida-db")
    path = str(binary)
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)  # as noida-db's own launcher does
    return path


class Broker:
    """A running broker: its address, and the few admin and client calls the tests need."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka.admin import AdminClient

        self.bootstrap = bootstrap
        self._admin = AdminClient({"bootstrap.servers": bootstrap})

    def new_topic(self, partitions: int = 3, **settings: str) -> str:
        """A new topic; `settings` are topic settings with '_' for '.', e.g. retention_ms="-1"."""
        from confluent_kafka.admin import NewTopic

        name = f"events-{uuid.uuid4().hex[:8]}"
        config = {key.replace("_", "."): value for key, value in settings.items()}
        self._admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(CLIENT_TIMEOUT)
        return name

    def produce(
        self, topic: str, records: Sequence[tuple[int, bytes | None]], timestamp_ms: int | None = None
    ):
        """(partition, value) records, in order, each partition's offsets from where it ends now."""
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0})
        failures = []

        def delivered(error, _message):
            if error is not None:
                failures.append(error)

        for partition, value in records:
            extra = {} if timestamp_ms is None else {"timestamp": timestamp_ms}
            producer.produce(topic, value=value, partition=partition, on_delivery=delivered, **extra)
        assert producer.flush(CLIENT_TIMEOUT) == 0, "records still unsent"
        assert not failures, failures

    def consume_all(self, topic: str, count: int, partitions: int = 1) -> list:
        """The first `count` records of `topic` (confluent_kafka Messages), from its start, in partition and
        offset order; fails when fewer arrive within CLIENT_TIMEOUT."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": f"check-{uuid.uuid4().hex[:8]}"}
        )
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
            records = []
            deadline = time.monotonic() + CLIENT_TIMEOUT
            while len(records) < count and time.monotonic() < deadline:
                for message in consumer.consume(count - len(records), timeout=0.5):
                    assert message.error() is None, message.error()
                    records.append(message)
            assert len(records) == count, f"{len(records)} of {count} records arrived"
            return sorted(records, key=lambda m: (m.partition(), m.offset()))
        finally:
            consumer.close()

    def committed(self, group: str, topic: str, partitions: int = 3) -> dict[int, int]:
        """The group's committed offset of each partition (-1001: none)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], CLIENT_TIMEOUT)
            return {tp.partition: tp.offset for tp in found}
        finally:
            consumer.close()

    def end_offsets(self, topic: str, partitions: int = 3) -> dict[int, int]:
        """The offset the next record of each partition will get."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "end-offsets"})
        try:
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), CLIENT_TIMEOUT)[1]
                for p in range(partitions)
            }
        finally:
            consumer.close()

    def wait_ready(self, deadline: float) -> None:
        from confluent_kafka import KafkaException

        while True:
            try:
                self._admin.list_topics(timeout=1.0)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Iterator[Broker]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    data = tmp_path_factory.mktemp("kafka")
    port = _free_port()
    log_path: Path = data / "broker.log"
    with open(log_path, "wb") as log:
        proc = popen_interruptible(  # noida-db stops on Ctrl-C, also when pytest ignores it
            [
                _program(),
                "start",
                "--only",
                "kafka",
                "--kafka-port",
                str(port),
                "--data-dir",
                str(data / "data"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        broker = Broker(f"127.0.0.1:{port}")
        try:
            broker.wait_ready(time.monotonic() + START_TIMEOUT)
        except Exception:
            pytest.fail(f"the Kafka broker (noida-db) did not start:\n{log_path.read_text(errors='replace')}")
        yield broker
    finally:
        proc.send_signal(signal.SIGINT)  # noida-db stops on Ctrl-C
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def topic(broker: Broker) -> str:
    return broker.new_topic(partitions=3)


@pytest.fixture
def group() -> str:
    return f"beamforce-{uuid.uuid4().hex[:8]}"


def pipeline() -> TestPipeline:
    return TestPipeline(runner=RUNNER)


def run_and_count(p: TestPipeline) -> dict[str, int]:
    """Runs `p` (its assert_that checks raise here) and returns its "beamforce" counters."""
    result = p.run()
    result.wait_until_finish()
    totals: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace("beamforce"))["counters"]:
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + c.committed
    return totals
