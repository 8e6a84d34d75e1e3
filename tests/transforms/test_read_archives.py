"""ReadArchive: Segment's archive layout by day, Avro and gzip JSON lines alike, and their dead letters."""

import dataclasses
import datetime
import gzip
import io
import json
import re
from types import SimpleNamespace

import apache_beam as beam
import fastavro
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.transforms.conftest import run_and_count
from tools.avro_convert import to_avro
from transforms import read_archives
from transforms.parsing import parse_line
from transforms.read_archives import (
    ReadArchive,
    archive_day_folders,
    day_of_folder,
    event_to_record,
    folder_of_day,
    list_folders,
    parse_day,
    read_archive_lines,
    segment_event_schema,
)

DAYS = [datetime.date(2024, 3, d) for d in (1, 2, 3, 4)]
SOURCES = ("src-a", "src-b")


def event(source: str, day: int, n: int) -> str:
    return json.dumps(
        {"type": "identify", "messageId": f"{source}-{day}-{n}", "userId": f"u{n}", "traits": {"day": day}},
        separators=(",", ":"),
    )


def write_avro(path, lines: list[str]) -> None:
    with open(path, "wb") as f:
        fastavro.writer(f, segment_event_schema(), [event_to_record(line) for line in lines])


def archive(tmp_path):
    """segment-logs/<source>/<day in ms>/: gzip JSON lines, except Avro for src-a's 3rd and src-b's 1st day.

    Returns {(source, day): [(file, seq, line), ...]} as ReadArchive should give them.
    """
    expected = {}
    for source in SOURCES:
        for day in DAYS:
            folder = tmp_path / "segment-logs" / source / folder_of_day(day)
            folder.mkdir(parents=True)
            lines = [event(source, day.day, n) for n in (1, 2)]
            if (source, day.day) in (("src-a", 3), ("src-b", 1)):
                path = folder / "part-0.avro"
                write_avro(path, lines)
            else:
                path = folder / "1709251200-0.gz"
                path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
            expected[source, day] = [(str(path), n, line) for n, line in enumerate(lines, 1)]
    return expected


def test_since_and_until_select_the_day_folders_of_every_source(tmp_path, p):
    expected = archive(tmp_path)
    (tmp_path / "segment-logs" / "src-a" / "notes").mkdir()  # not a day folder: skipped

    read = p | "Read" >> ReadArchive(str(tmp_path), since="2024-03-02", until="2024-03-03")

    wanted = [line for (_, day), lines in expected.items() if day in DAYS[1:3] for line in lines]
    assert_that(read.output, equal_to(wanted), label="CheckLines")
    assert_that(read.dead_letter, equal_to([]), label="CheckNoDeadLetters")
    assert run_and_count(p) == {"events_read": 8, "blank_lines": 0}


@pytest.mark.parametrize(
    "root, since, until, days",
    [
        ("", None, None, DAYS),
        ("", "2024-03-03", None, DAYS[2:]),
        ("", None, "2024-03-01", DAYS[:1]),
        ("", datetime.date(2024, 3, 2), datetime.date(2024, 3, 2), DAYS[1:2]),
        ("", "2024-03-05", None, []),
        ("segment-logs", "2024-03-04", None, DAYS[3:]),
    ],
)
def test_days_are_chosen_by_folder_name(tmp_path, root, since, until, days):
    archive(tmp_path)
    selected = archive_day_folders(str(tmp_path / root), parse_day(since), parse_day(until))
    assert selected == [
        str(tmp_path / "segment-logs" / source / folder_of_day(day)) for source in SOURCES for day in days
    ]


def test_a_source_folder_is_a_root_of_its_own(tmp_path):
    archive(tmp_path)
    one = tmp_path / "segment-logs" / "src-b"
    assert archive_day_folders(str(one), DAYS[3]) == [str(one / folder_of_day(DAYS[3]))]


@pytest.mark.parametrize(
    "name, day",
    [
        ("1709251200000", datetime.date(2024, 3, 1)),  # Segment's: UTC midnight in milliseconds
        ("1709337599999", datetime.date(2024, 3, 1)),
        ("1709251200", datetime.date(2024, 3, 1)),  # seconds
        ("2024-03-01", None),
        ("notes", None),
        ("٣", None),  # a digit, but not ASCII
        ("9" * 40, None),
    ],
)
def test_day_of_folder(name, day):
    assert day_of_folder(name) == day


def test_folder_of_day_is_utc_midnight_in_milliseconds():
    assert folder_of_day(datetime.date(2024, 3, 1)) == "1709251200000"


@pytest.mark.parametrize(
    "args, message",
    [
        (("",), "file pattern or an archive root"),
        (("root", "2024-3-1"), "since '2024-3-1' is not a date"),
        (("root", None, "2024-02-30"), "until '2024-02-30' is not a date"),
        (("root", "2024-03-02", "2024-03-01"), "since 2024-03-02 is after until 2024-03-01"),
        (("root/*.avro", "2024-03-01"), "give the root instead"),
        (("root/events.avro", None, "2024-03-01"), "give the root instead"),
    ],
)
def test_settings_are_checked_at_construction(args, message):
    with pytest.raises(ValueError, match=message):
        ReadArchive(*args)


def test_a_record_that_does_not_fit_the_schema_is_a_dead_letter_naming_the_field(tmp_path, p):
    # Written with another schema: a numeric userId, traits that are not JSON, a field of its own.
    schema = {
        "type": "record",
        "name": "Other",
        "fields": [
            {"name": "type", "type": "string"},
            {"name": "messageId", "type": "string"},
            {"name": "userId", "type": ["null", "string", "long"]},
            {"name": "traits", "type": ["null", "string"]},
            {"name": "extra", "type": ["null", "string"]},
            {"name": "email", "type": ["null", "string"], "default": None},
        ],
    }
    records = [
        {"type": "identify", "messageId": "m1", "userId": "u1", "traits": '{"a":1}', "extra": None},
        {"type": "identify", "messageId": "m2", "userId": 42, "traits": None, "extra": None},
        {"type": "identify", "messageId": "m3", "userId": "u3", "traits": "{oops", "extra": None},
        {"type": "identify", "messageId": "m4", "userId": "u4", "traits": None, "extra": '{"userId":"x"}'},
        {"type": "identify", "messageId": "m5", "userId": None, "traits": None, "email": "e@x.com"},
    ]
    path = tmp_path / "other.avro"
    with open(path, "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(schema), records)

    read = p | "Read" >> ReadArchive(str(tmp_path / "*.avro"))

    assert_that(
        read.output,
        equal_to([(str(path), 1, '{"type":"identify","messageId":"m1","userId":"u1","traits":{"a":1}}')]),
        label="CheckLines",
    )
    assert_that(
        read.dead_letter
        | "Shape"
        >> beam.Map(
            lambda d: (d.stage, d.reason, d.source, d.message.split(": ", 1)[1].split(" ")[:2], d.event)
        ),
        equal_to(
            [
                (
                    "read",
                    "schema_mismatch",
                    str(path),
                    ["field", "'userId'"],
                    {"type": "identify", "messageId": "m2", "userId": 42},
                ),
                (
                    "read",
                    "schema_mismatch",
                    str(path),
                    ["field", "'traits'"],
                    {"type": "identify", "messageId": "m3", "userId": "u3", "traits": "{oops"},
                ),
                (
                    "read",
                    "schema_mismatch",
                    str(path),
                    ["field", "'extra'"],
                    {"type": "identify", "messageId": "m4", "userId": "u4"},
                ),
                (
                    "read",
                    "schema_mismatch",
                    str(path),
                    ["field", "'email'"],
                    {"type": "identify", "messageId": "m5", "email": "e@x.com"},
                ),
            ]
        ),
        label="CheckDeadLetters",
    )
    assert run_and_count(p) == {"events_read": 5}


def test_a_corrupt_avro_file_is_one_dead_letter_after_the_records_before_the_damage(tmp_path, p):
    lines = [event("s", 1, n) for n in range(1, 2001)]
    whole = io.BytesIO()
    fastavro.writer(
        whole, segment_event_schema(), [event_to_record(line) for line in lines], sync_interval=4096
    )
    truncated = tmp_path / "truncated.avro"
    truncated.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    garbage = tmp_path / "garbage.avro"
    garbage.write_bytes(b"this is not avro\n")
    good = tmp_path / "good.gz"
    good.write_bytes(gzip.compress(lines[0].encode() + b"\n"))

    read = p | "Read" >> ReadArchive(str(tmp_path / "*"))

    assert_that(
        read.dead_letter
        | "Shape"
        >> beam.Map(
            lambda d: (d.stage, d.reason, d.source, d.event, re.sub(r"\d+", "N", d.message.split(": ")[0]))
        ),
        equal_to(
            [
                ("read", "unreadable_file", str(truncated), None, "file cannot be read after record N"),
                (
                    "read",
                    "unreadable_file",
                    str(garbage),
                    None,
                    "file is not an Avro file, or is damaged from its start (its name ends in .avro)",
                ),
            ]
        ),
        label="CheckDeadLetters",
    )
    # The records of the blocks before the damage go on, in order and unchanged.
    assert_that(
        read.output
        | "FromTruncated" >> beam.Filter(lambda e: e.source == str(truncated))
        | "Check" >> beam.Map(lambda e: 0 < e.seq < 2000 and e.line == lines[e.seq - 1])
        | "Distinct" >> beam.Distinct(),
        equal_to([True]),
        label="CheckRecordsBeforeTheDamage",
    )
    assert_that(
        read.output | "FromGood" >> beam.Filter(lambda e: e.source == str(good)),
        equal_to([(str(good), 1, lines[0])]),
        label="CheckOtherFiles",
    )
    run_and_count(p)


# Unicode, nesting, numbers JSON writes in several ways, nulls, ids that are numbers, members outside
# the spec, a lone surrogate escape: each format must give the parser the same events.
SAME_EVENTS = [
    '{"type":"identify","messageId":"m1","userId":"ü1","traits":{"email":"Zoë@Example.com","name":"Zoë 😀",'
    '"address":{"city":"Köln","lines":["a",null,3]},"score":1.0,"big":12345678901234567890}}',
    '{"type":"group","messageId":"m2","userId":12345,"groupId":987654321012,"traits":{"name":"Acme",'
    '"employees":1e3,"website":null},"integrations":{"All":false,"Salesforce":true}}',
    '{"type":"track","messageId":"m3","anonymousId":"a3","event":"Ordered","properties":{"total":-0.0,'
    '"items":[]},"context":{"ip":"1.2.3.4","traits":{"email":"x@y.z"}},"timestamp":"2024-03-01T10:00:00+02:00"}',
    '{"type":"identify","userId":"\\ud800id","traits":{"email":"\\u00e9@x.com"},"projectId":"p","version":2,'
    '"sentAt":"2024-03-01T10:00:00Z","writeKey":null}',
]


def parsed(line: str) -> str:
    return json.dumps(dataclasses.asdict(parse_line(line)), sort_keys=True, default=str)


def test_jsonl_avro_and_the_gzip_layout_give_the_same_parsed_events(tmp_path, p):
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join(SAME_EVENTS) + "\n", encoding="utf-8")
    avro = tmp_path / "events.avro"
    assert to_avro(str(jsonl), str(avro)) == (len(SAME_EVENTS), [])
    day = tmp_path / "bucket" / "segment-logs" / "src" / folder_of_day(DAYS[0])
    day.mkdir(parents=True)
    (day / "part.gz").write_bytes(gzip.compress(jsonl.read_bytes()))
    expected = [parsed(line) for line in SAME_EVENTS]

    for label, path in (("Jsonl", str(jsonl)), ("Avro", str(avro)), ("Layout", str(tmp_path / "bucket"))):
        read = p | f"Read{label}" >> ReadArchive(path)
        events = read.output | f"Parse{label}" >> beam.Map(lambda e: parsed(e.line))
        assert_that(events, equal_to(expected), label=f"Check{label}")
        assert_that(read.dead_letter, equal_to([]), label=f"CheckNoDeadLetters{label}")
    run_and_count(p)


def test_read_archive_lines_gives_the_lines_read_by_number(tmp_path):
    lines = [event("s", 1, n) for n in range(1, 6)]
    avro = tmp_path / "e.avro"
    write_avro(avro, lines)
    packed = tmp_path / "e.gz"
    packed.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    for path in (avro, packed):
        assert list(read_archive_lines(str(path), {2, 4})) == [(2, lines[1]), (4, lines[3])]


def test_read_archive_lines_of_a_damaged_avro_file_raises_a_read_error(tmp_path):
    bad = tmp_path / "bad.avro"
    bad.write_bytes(b"not avro")
    with pytest.raises(read_archives.READ_ERRORS):
        list(read_archive_lines(str(bad), {1}))


class _GcsPage(SimpleNamespace):
    pass


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_object_stores_are_listed_by_folder_with_a_delimiter(monkeypatch, scheme):
    calls = []

    class Blobs:
        pages = [_GcsPage(prefixes=("segment-logs/b/",)), _GcsPage(prefixes=("segment-logs/a/",))]

    class Gcs:
        def list_blobs(self, bucket, prefix, delimiter):
            calls.append((bucket, prefix, delimiter))
            return Blobs()

    class Paginator:
        def paginate(self, Bucket, Prefix, Delimiter):  # noqa: N803 - boto3's names
            calls.append((Bucket, Prefix, Delimiter))
            return [
                {"CommonPrefixes": [{"Prefix": "segment-logs/b/"}]},
                {"Contents": [], "CommonPrefixes": [{"Prefix": "segment-logs/a/"}]},
            ]

    class S3:
        def get_paginator(self, name):
            assert name == "list_objects_v2"
            return Paginator()

    monkeypatch.setattr(read_archives, "_gcs_client", lambda path: Gcs())
    monkeypatch.setattr(read_archives, "_s3_client", lambda path: S3())

    assert list_folders(f"{scheme}://bucket/segment-logs/") == [
        f"{scheme}://bucket/segment-logs/a",
        f"{scheme}://bucket/segment-logs/b",
    ]
    assert calls == [("bucket", "segment-logs/", "/")]


def test_local_folders_are_listed_without_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "file.gz").write_bytes(b"")
    assert list_folders(str(tmp_path)) == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert list_folders(str(tmp_path / "missing")) == []
