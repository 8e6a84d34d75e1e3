"""Local message brokers for demos and tests: Google's Pub/Sub emulator and a Kafka broker (noida-db).

Each start function returns a running broker (a context manager that stops it), or raises BrokerError
with the broker's log. `pubsub_missing()` and `kafka_missing()` say what to install when one cannot run,
so callers can skip or stop with that reason. A broker creates topics, and gives publishers (which count
what the broker accepted; PacedPublisher sends at a steady rate) and inboxes (what a topic received).
Nothing here imports Beam or pytest.
"""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

PUBSUB_PACKAGE = "google-cloud-cli-pubsub-emulator"
PUBSUB_PROGRAM = "cloud-pubsub-emulator"
# Where the Debian package puts it (`dpkg -L google-cloud-cli-pubsub-emulator`).
PUBSUB_PACKAGED = f"/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/{PUBSUB_PROGRAM}"
PUBSUB_READY = "Server started, listening on"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
KAFKA_CLIENT_TIMEOUT = 10.0
PUBLISH_TIMEOUT = 30.0  # for a broker to accept the messages sent


class BrokerError(RuntimeError):
    """A broker did not start; the message holds the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def popen_interruptible(args: Sequence[str], **kwargs) -> subprocess.Popen:
    """subprocess.Popen(args, **kwargs) of a child that stops on the Ctrl-C (SIGINT) it is sent.

    A process started in the background by a shell (a CI job, `cmd &`) ignores SIGINT, and so would its
    children (noida-db, a pipeline). exec resets a caught signal to its default but keeps an ignored one
    ignored: so SIGINT is caught, and dropped, while the child starts. Not a preexec_fn resetting it in
    the child: that makes Popen fork() rather than vfork(), and then, in a process that has used gRPC
    (a Pub/Sub client), grpcio's fork handlers abort about one child in thirty before its exec ('epoll_wait
    error: Bad file descriptor', grpcio 1.81 to 1.85 at least: grpc/grpc#43055). Called from a thread other
    than the main one, which alone may set signal handlers, the child keeps the process's disposition.
    """
    if (
        signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        or threading.current_thread() is not threading.main_thread()
    ):
        return subprocess.Popen(args, **kwargs)
    signal.signal(signal.SIGINT, _drop)
    try:
        return subprocess.Popen(args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _drop(signum, frame) -> None:
    """A SIGINT while a child starts: ignored, as the process had it."""


def _stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until(condition, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """True once `condition()` holds; False when `timeout` passes (or `proc` exits) first."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            return False
        pause.wait(0.05)
    return True


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (e.g. google.cloud) is not there either
        return False


def find_pubsub_emulator() -> str | None:
    """The emulator's start script: on PATH, where dpkg says the package put it, or its usual place."""
    found = shutil.which(PUBSUB_PROGRAM)
    if found:
        return found
    if shutil.which("dpkg-query"):
        listed = subprocess.run(
            ["dpkg-query", "-L", PUBSUB_PACKAGE], capture_output=True, text=True, check=False
        )
        for path in listed.stdout.splitlines():
            if path.endswith(f"/bin/{PUBSUB_PROGRAM}") and os.access(path, os.X_OK):
                return path
    return PUBSUB_PACKAGED if os.access(PUBSUB_PACKAGED, os.X_OK) else None


def pubsub_missing() -> str | None:
    """Why Pub/Sub cannot run here (what to install), or None."""
    if not _installed("google.cloud.pubsub"):
        return "the Pub/Sub client is not installed: pip install -e '.[pubsub]' (google-cloud-pubsub)"
    if find_pubsub_emulator() is None:
        return (
            f"the Pub/Sub emulator is not installed: apt-get install {PUBSUB_PACKAGE} (from Google Cloud's "
            f"apt repository), or put {PUBSUB_PROGRAM} on PATH"
        )
    if shutil.which("java") is None:
        return f"the Pub/Sub emulator ({PUBSUB_PACKAGE}) needs Java: apt-get install default-jre-headless"
    return None


class PubSubEmulator:
    """A running Pub/Sub emulator: clients reach it with PUBSUB_EMULATOR_HOST=host."""

    def __init__(self, proc: subprocess.Popen, host: str, log_path: Path) -> None:
        self.proc = proc
        self.host = host
        self.log_path = log_path

    @property
    def environ(self) -> dict[str, str]:
        """What a client process needs in its environment to use this emulator."""
        return {"PUBSUB_EMULATOR_HOST": self.host}

    def create_topic(self, topic: str, subscription: str | None = None) -> None:
        """Creates `topic` (projects/P/topics/T, names of 3 characters or more) and, when given, the
        subscription `subscription` of it, which holds every message published from then on."""
        from google.cloud import pubsub

        publisher = pubsub.PublisherClient(transport=self._transport("publisher"))
        try:
            publisher.create_topic(name=topic)
        finally:
            publisher.transport.close()
        if subscription is not None:
            with pubsub.SubscriberClient(transport=self._transport("subscriber")) as subscriber:
                subscriber.create_subscription(name=subscription, topic=topic)

    def publisher(self, topic: str) -> "PubSubPublisher":
        from google.cloud import pubsub

        return PubSubPublisher(pubsub.PublisherClient(transport=self._transport("publisher")), topic)

    def inbox(self, subscription: str) -> "Inbox":
        """Every message of `subscription` from now on, pulled in the background and acknowledged."""
        from google.cloud import pubsub

        inbox = Inbox()
        client = pubsub.SubscriberClient(transport=self._transport("subscriber"))
        future = client.subscribe(subscription, callback=lambda m: (inbox.add(m.data), m.ack()))

        def close() -> None:
            future.cancel()
            try:
                future.result(timeout=STOP_TIMEOUT)
            except Exception:  # cancelled: its result is the cancellation
                pass
            client.close()

        inbox.on_close(close)
        return inbox

    def _transport(self, kind: str):
        """A gRPC transport to this emulator, without going through PUBSUB_EMULATOR_HOST (which would
        point every client of the process at it)."""
        import grpc

        if kind == "publisher":
            from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport as Transport
        else:
            from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport as Transport
        return Transport(channel=grpc.insecure_channel(self.host))

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)  # the start script execs java: this is the JVM

    def __enter__(self) -> "PubSubEmulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_pubsub_emulator(log_path: Path) -> PubSubEmulator:
    """Starts the emulator on a free loopback port and waits until it listens (BrokerError if not)."""
    program = find_pubsub_emulator()
    if program is None:
        raise BrokerError(pubsub_missing() or f"{PUBSUB_PROGRAM} not found")
    port = free_port()
    with open(log_path, "wb") as log:  # a new log: an old one's "ready" line must not count
        proc = subprocess.Popen(
            [program, "--host=127.0.0.1", f"--port={port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C of the caller must not reach it before the caller stops it
        )
    emulator = PubSubEmulator(proc, f"127.0.0.1:{port}", log_path)
    if not _wait_until(lambda: PUBSUB_READY in _log_tail(log_path, 100_000), START_TIMEOUT, proc):
        emulator.stop()
        raise BrokerError(f"the Pub/Sub emulator did not start; its log ({log_path}):\n{_log_tail(log_path)}")
    return emulator


def kafka_missing() -> str | None:
    """Why a Kafka broker cannot run here (what to install), or None."""
    for module, package in (("confluent_kafka", "confluent-kafka"), ("noida_db", "noida-db")):
        if not _installed(module):
            return f"{package} is not installed: pip install -e '.[kafka]' and pip install noida-db"
    return None


def _noida_program() -> str:
    """The broker's binary inside the noida-db package (its `noida-db` launcher would be a second process)."""
    path = str(files("noida_db").joinpath("noida-db"))
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)  # as noida-db's own launcher does
    return path


class KafkaBroker:
    """A running Kafka broker (noida-db) on loopback: clients use bootstrap.servers=bootstrap."""

    def __init__(self, proc: subprocess.Popen, bootstrap: str, log_path: Path) -> None:
        self.proc = proc
        self.bootstrap = bootstrap
        self.log_path = log_path

    def create_topic(self, topic: str, partitions: int = 3) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(KAFKA_CLIENT_TIMEOUT)

    def publisher(self, topic: str) -> "KafkaPublisher":
        return KafkaPublisher(self.bootstrap, topic)

    def inbox(self, topic: str) -> "KafkaTopicInbox":
        """The records of `topic`, read from its start whenever asked (see KafkaTopicInbox)."""
        return KafkaTopicInbox(self.bootstrap, topic)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # noida-db stops on Ctrl-C

    def __enter__(self) -> "KafkaBroker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_kafka_broker(data_dir: Path) -> KafkaBroker:
    """Starts `noida-db start --only kafka` on a free port, its data and log (broker.log) in `data_dir`,
    and waits until it answers metadata requests (BrokerError if not)."""
    reason = kafka_missing()
    if reason:
        raise BrokerError(reason)
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir / "broker.log"
    with open(log_path, "wb") as log:
        proc = popen_interruptible(  # it stops on Ctrl-C
            [_noida_program(), "start", "--only", "kafka", "--kafka-port", str(port)]
            + ["--data-dir", str(data_dir / "data")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    broker = KafkaBroker(proc, f"127.0.0.1:{port}", log_path)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    def answers() -> bool:
        # A TCP connection first: the Kafka client logs every refused connection to stderr.
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        except OSError:
            return False
        try:
            admin.list_topics(timeout=1.0)
            return True
        except KafkaException:
            return False

    if not _wait_until(answers, START_TIMEOUT, proc):
        broker.stop()
        raise BrokerError(
            f"the Kafka broker (noida-db) did not start; its log ({log_path}):\n{_log_tail(log_path)}"
        )
    return broker


class _Deliveries:
    """Counts messages a broker accepted and keeps the first errors, from its clients' callback threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.delivered = 0
        self.errors: list[str] = []

    def sending(self) -> None:
        with self._lock:
            self.sent += 1

    def done(self, error: object | None) -> None:
        with self._lock:
            if error is None:
                self.delivered += 1
            elif len(self.errors) < 10:
                self.errors.append(str(error))

    @property
    def pending(self) -> int:
        with self._lock:
            return self.sent - self.delivered - len(self.errors)


class PubSubPublisher:
    """Publishes messages to one topic without waiting for each; `deliveries` counts what was accepted."""

    def __init__(self, client, topic: str) -> None:
        self._client = client
        self._topic = topic
        self.deliveries = _Deliveries()

    def publish(self, data: bytes, key: str | None = None, **attributes: str) -> None:
        """`key` is unused: Pub/Sub orders nothing without ordering keys, and the pipeline needs no order."""
        self.deliveries.sending()
        future = self._client.publish(self._topic, data, **attributes)
        future.add_done_callback(lambda f: self.deliveries.done(f.exception()))

    def flush(self, timeout: float) -> None:
        """Waits up to `timeout` seconds until every message is accepted or refused."""
        _wait_until(lambda: self.deliveries.pending == 0, timeout)

    def close(self) -> None:
        self._client.stop()
        self._client.transport.close()


class KafkaPublisher:
    """Produces records to one topic, keyed (so one user's events stay in order in one partition)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Producer

        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self._topic = topic
        self.deliveries = _Deliveries()

    def publish(self, data: bytes, key: str | None = None, **attributes: str) -> None:
        headers = list(attributes.items()) or None
        self.deliveries.sending()
        self._producer.produce(
            self._topic,
            value=data,
            key=key,
            headers=headers,
            on_delivery=lambda e, _m: self.deliveries.done(e),
        )
        self._producer.poll(0)  # runs the delivery callbacks of records already acknowledged

    def flush(self, timeout: float) -> None:
        self._producer.flush(timeout)

    def close(self) -> None:
        self._producer.flush(KAFKA_CLIENT_TIMEOUT)
        self._producer.poll(0)


class PacedPublisher(threading.Thread):
    """Publishes `messages` ((data, key, attributes) each) at `rate` a second, at a steady pace rather
    than in bursts, through a PubSubPublisher or KafkaPublisher; stops early when asked."""

    def __init__(
        self, publisher, messages: Sequence[tuple[bytes, str | None, dict[str, str]]], rate: float
    ) -> None:
        super().__init__(name="paced-publisher", daemon=True)
        self._publisher = publisher
        self._messages = messages
        self._rate = rate
        self._stop_asked = threading.Event()
        self.error: BaseException | None = None

    @property
    def deliveries(self) -> "_Deliveries":
        return self._publisher.deliveries

    def run(self) -> None:
        start = time.monotonic()
        try:
            for i, (data, key, attributes) in enumerate(self._messages):
                wait = start + i / self._rate - time.monotonic()
                if self._stop_asked.wait(wait) if wait > 0 else self._stop_asked.is_set():
                    break
                self._publisher.publish(data, key, **attributes)
            self._publisher.flush(PUBLISH_TIMEOUT)
        except Exception as e:  # reported by whoever started it, in its own thread
            self.error = e
        finally:
            self._publisher.close()

    def stop(self) -> None:
        """Stops publishing (and closes the publisher, also when never started)."""
        if self.ident is None:
            self._publisher.close()
            return
        self._stop_asked.set()
        self.join(PUBLISH_TIMEOUT + STOP_TIMEOUT)


class Heartbeat(threading.Thread):
    """Publishes an empty message with the attribute `heartbeat` every `every` seconds until stopped.

    The DirectRunner's Pub/Sub read waits up to 30 s for a message, and its timers and cancel wait behind
    that pull: a busy subscription keeps them prompt. The pipeline counts these as blank lines."""

    def __init__(self, publisher, every: float = 0.2) -> None:
        super().__init__(name="pubsub-heartbeat", daemon=True)
        self._publisher = publisher
        self._every = every
        self._done = threading.Event()

    @property
    def sent(self) -> int:
        return self._publisher.deliveries.sent

    def run(self) -> None:
        try:
            while not self._done.wait(self._every):
                self._publisher.publish(b"", None, heartbeat="1")
        finally:
            self._publisher.flush(PUBLISH_TIMEOUT)
            self._publisher.close()

    def stop(self) -> None:
        """Stops sending (and closes the publisher, also when never started)."""
        if self.ident is None:
            self._publisher.close()
            return
        self._done.set()
        self.join(PUBLISH_TIMEOUT + STOP_TIMEOUT)


class Inbox:
    """Messages received in the background, in order of arrival (a context manager that stops receiving)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[bytes] = []
        self._close = lambda: None

    def add(self, data: bytes) -> None:
        with self._lock:
            self._messages.append(data)

    @property
    def messages(self) -> list[bytes]:
        with self._lock:
            return list(self._messages)

    def on_close(self, close) -> None:
        self._close = close

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "Inbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KafkaTopicInbox:
    """Every record of a topic so far, in partition and offset order, read from its start each time
    `messages` is asked for. No consumer stays subscribed: against noida-db a waiting consumer spins
    (about half a core), and an empty topic is answered by its end offsets alone."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic

    @property
    def messages(self) -> list[bytes]:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {"bootstrap.servers": self._bootstrap, "group.id": "inbox", "enable.auto.commit": False}
        )
        try:
            metadata = consumer.list_topics(self._topic, timeout=KAFKA_CLIENT_TIMEOUT).topics[self._topic]
            ends = {}
            for p in sorted(metadata.partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(self._topic, p), KAFKA_CLIENT_TIMEOUT
                )
                if high > low:
                    ends[p] = (low, high)
            if not ends:
                return []
            consumer.assign([TopicPartition(self._topic, p, low) for p, (low, _) in ends.items()])
            found: dict[int, list[tuple[int, bytes]]] = {p: [] for p in ends}
            last = {p: low - 1 for p, (low, _) in ends.items()}  # offsets may skip (transaction markers)
            deadline = time.monotonic() + KAFKA_CLIENT_TIMEOUT
            while any(last[p] < high - 1 for p, (_, high) in ends.items()):
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"Kafka topic {self._topic}: its records did not all come within "
                        f"{KAFKA_CLIENT_TIMEOUT:g} s"
                    )
                message = consumer.poll(0.2)
                if message is not None and message.error() is None:
                    found[message.partition()].append((message.offset(), message.value() or b""))
                    last[message.partition()] = message.offset()
            return [value for p in sorted(found) for _, value in sorted(found[p])]
        finally:
            consumer.close()

    def close(self) -> None:
        pass

    def __enter__(self) -> "KafkaTopicInbox":
        return self

    def __exit__(self, *exc: object) -> None:
        pass
