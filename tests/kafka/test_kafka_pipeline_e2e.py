"""Kafka through the whole pipeline (python -m pipeline's run) into the local Salesforce: exact Leads and
Accounts, streaming and bounded, and a run stopped mid-way then restarted with the same group."""

import json

import pytest

from pipeline.main import run
from tests.e2e.conftest import connection_flags, environ, records

pytestmark = pytest.mark.e2e

ON = {"Salesforce": True}


def identify(n: int, **traits) -> dict:
    return {
        "type": "identify",
        "messageId": f"k-{n}",
        "userId": f"u-{n}",
        "timestamp": f"2026-11-28T12:00:{n % 60:02d}.000Z",
        "traits": {"email": f"k{n}@example.com", "lastName": f"Last{n}", **traits},
        "integrations": ON,
    }


def group_call(n: int) -> dict:
    return {
        "type": "group",
        "messageId": f"kg-{n}",
        "userId": f"u-{n}",
        "groupId": f"acct-{n}",
        "timestamp": "2026-11-28T12:00:00.000Z",
        "traits": {"name": f"Company {n}"},
        "integrations": ON,
    }


def _produce(broker, topic, events) -> None:
    broker.produce(topic, [(n % 3, json.dumps(e).encode()) for n, e in enumerate(events)])


def _run(emu, tmp_path, broker, topic, group_id, *flags):
    """Runs the pipeline; the summary file its pipeline wrote (from the stages' tallies, the Kafka
    reader's among them) must equal the summary the launcher built from the metrics."""
    summary_path = tmp_path / "summary.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary = run(
        [
            "--kafka_bootstrap_servers",
            broker.bootstrap,
            "--kafka_topic",
            topic,
            "--kafka_group_id",
            group_id,
            "--dead_letter_output",
            str(tmp_path / "dead" / "dead_letters"),
            "--progress_seconds",
            "3600",
            "--summary_output",
            str(summary_path),
            *connection_flags(emu),
            *flags,
        ],
        environ(emu),
    )
    assert json.loads(summary_path.read_text()) == json.loads(summary.to_json())
    return summary


def _leads(emu) -> dict[str, str]:
    return {r["Email"]: r["LastName"] for r in records(emu, "Lead")}


def test_a_kafka_catch_up_run_becomes_the_exact_leads_and_accounts(org, broker, topic, group, tmp_path):
    events = [identify(n) for n in range(20)] + [group_call(n) for n in range(5)]
    _produce(broker, topic, events)

    summary = _run(org, tmp_path, broker, topic, group, "--kafka_max_idle_seconds", "2")

    assert _leads(org) == {f"k{n}@example.com": f"Last{n}" for n in range(20)}
    assert {r["AccountNumber"]: r["Name"] for r in records(org, "Account")} == {
        f"acct-{n}": f"Company {n}" for n in range(5)
    }
    assert (summary.events_read, summary.events_written, summary.balanced) == (25, 25, True)
    assert broker.committed(group, topic) == {p: n for p, n in zip(range(3), (9, 8, 8), strict=True)}


def test_a_bounded_replay_then_a_restart_with_the_same_group_neither_loses_nor_duplicates(
    org, broker, topic, group, tmp_path
):
    _produce(broker, topic, [identify(n) for n in range(12)])
    first = _run(org, tmp_path / "1", broker, topic, group, "--kafka_bounded")
    # Later events, and one updating an earlier person: the restart reads only these.
    _produce(broker, topic, [identify(n) for n in range(12, 18)] + [identify(3, lastName="Changed")])

    second = _run(org, tmp_path / "2", broker, topic, group, "--kafka_bounded")

    expected = {f"k{n}@example.com": f"Last{n}" for n in range(18)} | {"k3@example.com": "Changed"}
    assert _leads(org) == expected
    assert len(records(org, "Lead")) == 18
    assert (first.events_read, second.events_read) == (12, 7)
    assert second.records_written == {"Lead": {"create": 6, "update": 1}}


def test_streaming_from_kafka_on_a_local_runner_is_refused_before_reading(
    org, broker, topic, group, tmp_path
):
    from salesforce.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="--kafka_max_idle_seconds S"):
        _run(org, tmp_path, broker, topic, group)
    assert broker.committed(group, topic) == {0: -1001, 1: -1001, 2: -1001}
