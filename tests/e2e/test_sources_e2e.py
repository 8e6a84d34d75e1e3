"""Archives and Avro files through the whole pipeline (python -m pipeline's run) into the local Salesforce."""

import glob
import gzip
import json

import fastavro
import pytest

from pipeline.main import run
from tests.e2e.conftest import connection_flags, environ, records
from transforms.read_archives import event_to_record, folder_of_day, segment_event_schema

pytestmark = pytest.mark.e2e

ON = {"Salesforce": True}


def identify(n: int, email: str) -> dict:
    return {
        "type": "identify",
        "messageId": f"m-{n}",
        "userId": f"u-{n}",
        "timestamp": f"2024-03-0{n % 9 + 1}T12:00:00.000Z",
        "traits": {"email": email, "lastName": f"Last{n}"},
        "integrations": ON,
    }


def _jsonl_gz(path, events) -> None:
    path.write_bytes(gzip.compress("".join(json.dumps(e) + "\n" for e in events).encode()))


def _avro(path, events) -> None:
    with open(path, "wb") as f:
        fastavro.writer(f, segment_event_schema(), [event_to_record(json.dumps(e)) for e in events])


def _run(emu, tmp_path, *flags):
    prefix = str(tmp_path / "dead" / "dead_letters")
    summary = run([*flags, "--dead_letter_output", prefix, *connection_flags(emu)], environ(emu))
    dead = [
        json.loads(line) for f in sorted(glob.glob(prefix + "*.jsonl")) for line in open(f, encoding="utf-8")
    ]
    return summary, dead


def _leads(emu) -> dict[str, str]:
    return {r["Email"]: r["LastName"] for r in records(emu, "Lead")}


def test_an_archive_reads_only_the_selected_days_and_rebuilds_avro_dead_letters(org, tmp_path):
    import datetime

    root = tmp_path / "bucket" / "segment-logs" / "source-1"
    days = {d: root / folder_of_day(datetime.date(2024, 3, d)) for d in (1, 2, 3)}
    for folder in days.values():
        folder.mkdir(parents=True)
    _jsonl_gz(days[1] / "a.gz", [identify(1, "day1@example.com")])  # before --since: not read
    _jsonl_gz(days[2] / "a.gz", [identify(2, "day2@example.com")])
    refused = identify(4, "not an email@example.com")
    _avro(days[3] / "b.avro", [identify(3, "day3@example.com"), refused])

    summary, dead = _run(org, tmp_path, "--archive", str(tmp_path / "bucket"), "--since", "2024-03-02")

    assert _leads(org) == {"day2@example.com": "Last2", "day3@example.com": "Last3"}
    assert [(d["stage"], d["reason"], d["event"], d["source"]) for d in dead] == [
        ("write", "INVALID_EMAIL_ADDRESS", refused, str(days[3] / "b.avro"))
    ]
    assert (summary.events_read, summary.events_written, summary.events_dead_lettered) == (3, 2, 1)
    assert summary.balanced


def test_an_avro_glob_is_read_as_input(org, tmp_path):
    events = [identify(n, f"a{n}@example.com") for n in range(1, 4)]
    _avro(tmp_path / "part-1.avro", events[:2])
    _avro(tmp_path / "part-2.avro", events[2:])

    summary, dead = _run(org, tmp_path, "--input", str(tmp_path / "*.avro"))

    assert _leads(org) == {f"a{n}@example.com": f"Last{n}" for n in range(1, 4)}
    assert dead == []
    assert (summary.events_read, summary.events_written) == (3, 3)
