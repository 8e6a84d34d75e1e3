"""The run's stop ends the writers' waits at once: the wait for a used-up API allocation, a retry's backoff.

Found by a review: Ctrl-C on a run waiting for the org's allocation (--on_api_limit wait, a stream's
default) did not stop it; the writer went on checking the limits at growing intervals for as long as they
stayed used up. Each wait here would last far longer than the join's timeout without the stop.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from salesforce import stopping
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from schemas.events import EventRef
from schemas.records import MergedOp
from tests.e2e.conftest import ALLOCATION_USED_UP
from transforms.batch_writer import BatchWriter

# Far longer than a join's timeout: a wait that the stop does not end fails the test.
HOUR = 3600.0
JOIN_SECONDS = 20.0


@pytest.fixture(autouse=True)
def fresh_stop() -> Iterator[None]:
    stopping.reset()
    yield
    stopping.reset()


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Runs `work` on a thread; the dict gets what it returned or raised."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["returned"] = work()
        except BaseException as e:  # Stopped is one
            outcome["raised"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_wait_lasts_its_time_until_the_stop_then_raises():
    started = time.monotonic()
    stopping.sleep(0.05)
    assert time.monotonic() - started >= 0.05
    stopping.sleep(-1)  # nothing to wait for
    thread, outcome = _in_thread(lambda: stopping.sleep(HOUR))
    stopping.stop()
    thread.join(JOIN_SECONDS)
    assert not thread.is_alive()
    assert isinstance(outcome["raised"], stopping.Stopped)
    # Every later wait of the stopped run ends too, until the next run resets the stop.
    with pytest.raises(stopping.Stopped):
        stopping.sleep(0)
    stopping.reset()
    stopping.sleep(0)


def test_stopped_is_not_an_api_error_any_handler_would_catch():
    assert not issubclass(stopping.Stopped, Exception)


def _lead(n: int) -> MergedOp:
    email = f"stop{n}@example.com"
    return MergedOp(
        "Lead",
        "Email",
        email,
        {"Email": email, "Title": "T"},
        {"LastName": "n/a", "Company": "n/a"},
        {},
        (EventRef("stream", n, "{}"),),
    )


class _Heard(logging.Handler):
    """Sets `event` once a record holding `text` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.event = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_the_stop_ends_the_wait_for_a_used_up_api_allocation(org, credentials, settings):
    org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    client = SalesforceClient(credentials, settings)  # waits with stopping.sleep, as a run's writers do
    writer = BatchWriter(client, on_api_limit="wait", limit_poll_seconds=HOUR)
    heard = _Heard(ALLOCATION_USED_UP)
    logging.getLogger("transforms.batch_writer").addHandler(heard)
    try:
        thread, outcome = _in_thread(lambda: writer.write([_lead(1), _lead(2)]))
        assert heard.event.wait(JOIN_SECONDS), "the writer never waited for the allocation"
        stopping.stop()
        thread.join(JOIN_SECONDS)
    finally:
        logging.getLogger("transforms.batch_writer").removeHandler(heard)
    assert not thread.is_alive()
    # Raised, not reported: no dead letter, no record; the events stay with the source.
    assert isinstance(outcome.get("raised"), stopping.Stopped), outcome
    assert org.admin("GET", "/_emulator/records/Lead")["records"] == []


def test_the_stop_ends_a_retrys_backoff(org, credentials, emulator):
    info = emulator.info
    # Every call fails as a transient error; the backoff is capped at a minute (client.MAX_BACKOFF_SECONDS).
    settings = ConnectionSettings(
        login_url=info["login_url"], ca_bundle=info["ca_bundle"], backoff_base_seconds=HOUR, max_retries=5
    )
    client = SalesforceClient(credentials, settings)
    client.login()
    org.admin("POST", "/_emulator/faults", json={"error_rate": 1.0, "error_kinds": ["SERVER_UNAVAILABLE"]})
    thread, outcome = _in_thread(lambda: client.query_all("SELECT Id FROM Lead"))
    deadline = time.monotonic() + JOIN_SECONDS
    while client.retries == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.retries == 1  # in its first backoff
    stopping.stop()
    thread.join(JOIN_SECONDS)
    assert not thread.is_alive()
    assert isinstance(outcome.get("raised"), stopping.Stopped), outcome
    assert client.retries == 1  # no second try after the stop
