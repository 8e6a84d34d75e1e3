"""examples/brokers.py without a broker: what is installed, publishing at a pace, heartbeats, inboxes."""

import signal
import subprocess
import sys
import threading

import pytest

from examples import brokers


@pytest.mark.parametrize(
    "module, installed",
    [("json", True), ("examples.brokers", True), ("no_such_module", False), ("no_such_package.sub", False)],
)
def test_a_module_is_installed_or_not_without_failing(module, installed):
    assert brokers._installed(module) is installed


class _Recorder:
    """A publisher that keeps what it is given, the way PubSubPublisher and KafkaPublisher take it."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.deliveries = brokers._Deliveries()
        self.sent: list[tuple[bytes, str | None, dict]] = []
        self.closed = False
        self._fail_at = fail_at

    def publish(self, data: bytes, key: str | None = None, **attributes: str) -> None:
        if len(self.sent) == self._fail_at:
            raise ConnectionError("broker gone")
        self.deliveries.sending()
        self.sent.append((data, key, attributes))
        self.deliveries.done(None)

    def flush(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        self.closed = True


MESSAGES = [(b"a", "u1", {"messageId": "m1"}), (b"b", None, {}), (b"c", "u2", {})]


def test_a_paced_publisher_sends_every_message_in_order_then_closes():
    recorder = _Recorder()
    publisher = brokers.PacedPublisher(recorder, MESSAGES, rate=1000)
    publisher.start()
    publisher.join(10)
    assert recorder.sent == MESSAGES
    assert (recorder.deliveries.sent, recorder.deliveries.delivered, recorder.deliveries.pending) == (3, 3, 0)
    assert recorder.closed and publisher.error is None


def test_a_paced_publisher_stopped_early_sends_no_more():
    recorder = _Recorder()
    publisher = brokers.PacedPublisher(recorder, MESSAGES, rate=0.001)  # the second is due in 1000 s
    publisher.start()
    publisher.stop()
    assert recorder.sent == MESSAGES[:1]
    assert recorder.closed and not publisher.is_alive()


def test_a_paced_publisher_keeps_the_error_that_stopped_it():
    recorder = _Recorder(fail_at=1)
    publisher = brokers.PacedPublisher(recorder, MESSAGES, rate=1000)
    publisher.start()
    publisher.join(10)
    assert recorder.sent == MESSAGES[:1]
    assert isinstance(publisher.error, ConnectionError) and recorder.closed


@pytest.mark.parametrize("kind", [brokers.PacedPublisher, brokers.Heartbeat])
def test_stopping_what_never_started_closes_its_publisher(kind):
    recorder = _Recorder()
    sender = kind(recorder, MESSAGES, 1.0) if kind is brokers.PacedPublisher else kind(recorder)
    sender.stop()
    assert recorder.closed and recorder.sent == []


def test_a_heartbeat_sends_empty_messages_until_stopped():
    recorder = _Recorder()
    heartbeat = brokers.Heartbeat(recorder, every=0.01)
    heartbeat.start()
    beat = threading.Event()
    while heartbeat.sent < 2:
        beat.wait(0.01)
    heartbeat.stop()
    assert recorder.sent == [(b"", None, {"heartbeat": "1"})] * heartbeat.sent
    assert recorder.closed and not heartbeat.is_alive()


def test_failed_deliveries_are_kept_and_no_longer_pending():
    deliveries = brokers._Deliveries()
    for error in (None, "refused", None):
        deliveries.sending()
        deliveries.done(error)
    deliveries.sending()
    assert (deliveries.delivered, deliveries.errors, deliveries.pending) == (2, ["refused"], 1)


def test_an_inbox_keeps_messages_in_order_and_closes_once_asked():
    closed = []
    with brokers.Inbox() as inbox:
        inbox.on_close(lambda: closed.append(True))
        inbox.add(b"1")
        inbox.add(b"2")
        assert inbox.messages == [b"1", b"2"]
    assert closed == [True]


# Python installs its own handler for SIGINT at start when it finds SIGINT's default, not when it is ignored.
CHILD_SIGINT = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"


@pytest.fixture
def sigint_ignored():
    """The process as a shell's background job starts it: SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_child_of_a_process_that_ignores_sigint_gets_its_default(sigint_ignored):
    child = [sys.executable, "-c", CHILD_SIGINT]
    proc = brokers.popen_interruptible(child, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    assert out.strip() == "True"
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the parent's, again
    # What the child would have had otherwise.
    plain = subprocess.run(child, capture_output=True, text=True, timeout=60)
    assert plain.stdout.strip() == "False"
