"""Archives and Avro files through the whole pipeline (python -m pipeline's run) into the local Salesforce."""

import datetime
import glob
import gzip
import json
import shutil
from pathlib import Path

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


SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "events" / "sample-mix.jsonl.gz"


def _all_records(emu) -> dict[str, list[dict]]:
    key = {"Lead": "Email", "Account": "AccountNumber"}
    return {
        sobject: sorted(records(emu, sobject), key=lambda r: json.dumps(r.get(field), sort_keys=True))
        for sobject, field in key.items()
    }


def test_avro_and_gzip_archives_give_the_records_of_the_json_lines_they_came_from(org, tmp_path):
    """The sample mix (about 1,000 events, some bad) as JSON lines, as a gzip archive and as Avro."""
    from tools.avro_convert import to_avro

    day = folder_of_day(datetime.date(2024, 3, 1))
    gz_root, avro_root = tmp_path / "gz", tmp_path / "avro"
    (gz_root / "segment-logs" / "src" / day).mkdir(parents=True)
    (avro_root / "segment-logs" / "src" / day).mkdir(parents=True)
    shutil.copy(SAMPLE, gz_root / "segment-logs" / "src" / day / "part-0.gz")
    converted, skipped = to_avro(str(SAMPLE), str(avro_root / "segment-logs" / "src" / day / "part-0.avro"))
    assert converted > 900 and skipped  # the bad lines (not JSON objects) have no Avro record

    results = {}
    for name, flags in (
        ("jsonl", ["--input", str(SAMPLE)]),
        ("gz", ["--archive", str(gz_root)]),
        ("avro", ["--archive", str(avro_root)]),
    ):
        org.admin("POST", "/_emulator/reset")
        summary, _ = _run(org, tmp_path / name, *flags)
        assert summary.balanced, name
        results[name] = (_all_records(org), summary.records_written, summary.events_written)

    assert results["gz"] == results["jsonl"]
    assert results["avro"] == results["jsonl"]
    assert len(results["jsonl"][0]["Lead"]) > 100 and len(results["jsonl"][0]["Account"]) > 10
