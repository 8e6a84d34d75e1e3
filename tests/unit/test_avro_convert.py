"""The Avro schema and tools.avro_convert: JSON lines -> Avro -> JSON lines gives the same events."""

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import fastavro
import pytest

from schemas.dead_letter import DeadLetter
from tools.avro_convert import main
from transforms.parsing import parse_line
from transforms.read_archives import (
    EXTRA,
    JSON_MEMBERS,
    STRING_MEMBERS,
    NotAnEvent,
    RecordMismatch,
    event_to_record,
    record_to_json,
    segment_event_schema,
)

ROOT = Path(__file__).resolve().parents[2]

EVENTS = [
    # Unicode (in ids, names and nested values), and an emoji outside the BMP.
    '{"type":"identify","messageId":"m1","userId":"ü-1","traits":{"email":"zoë@x.com","nick":"😀","city":"Köln"}}',
    # Nested objects and arrays, nulls at every level.
    '{"type":"group","messageId":"m2","groupId":"g","traits":{"address":{"lines":["a",null,{"b":[]}]},"x":null},'
    '"context":null,"integrations":{"All":false,"Salesforce":true}}',
    # Numbers as JSON writes them, ids that are numbers: their text is kept.
    '{"type":"identify","messageId":"m3","userId":12345678901234567890,"anonymousId":1.0,"traits":{"n":1.50,'
    '"e":1E+3,"neg":-0.0,"big":123456789012345678901234567890}}',
    # Members outside the spec, with any value; spec members that are not strings.
    '{"type":"track","messageId":"m4","event":"Ordered","properties":{"total":9.99},"projectId":"p",'
    '"version":2,"channel":null,"_metadata":{"bundled":["Segment.io"]},"name":{"not":"a string"}}',
    # Escapes: a lone surrogate (UTF-8 cannot hold it), a quote, a control character.
    '{"type":"identify","messageId":"m5","userId":"\\ud83d","traits":{"q":"say \\"hi\\"\\n","t":"\\u0001"}}',
    # Not a valid Segment call, but a JSON object: it round-trips, and parsing refuses it the same way.
    '{"type":"unknown","timestamp":12}',
    "{}",
]


def test_the_schema_parses_and_every_field_is_nullable_with_default_null():
    schema = segment_event_schema()
    assert [f["name"] for f in schema["fields"]] == [*STRING_MEMBERS, *JSON_MEMBERS, EXTRA]
    assert all(f["type"] == ["null", "string"] and f["default"] is None for f in schema["fields"])
    assert STRING_MEMBERS == (
        "type",
        "messageId",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "receivedAt",
        "userId",
        "anonymousId",
        "groupId",
        "event",
        "previousId",
        "name",
    )
    assert JSON_MEMBERS == ("traits", "properties", "context", "integrations")


@pytest.mark.parametrize("line", EVENTS)
def test_an_event_round_trips_through_a_record(line):
    buffer = io.BytesIO()
    fastavro.writer(buffer, segment_event_schema(), [event_to_record(line)])
    buffer.seek(0)
    (record,) = fastavro.reader(buffer)
    back = record_to_json(record)
    assert json.loads(back) == json.loads(line)
    assert _parsed(back) == _parsed(line)


@pytest.mark.parametrize(
    "line, fields",
    [
        ('{"userId":"u","traits":{"a":1}}', {"userId": "u", "traits": '{"a":1}'}),
        # A number is kept as its text, in extra; so is any member outside the spec.
        ('{"userId":1.0,"foo":[1]}', {EXTRA: '{"userId":1.0,"foo":[1]}'}),
        ('{"traits": [ 1 , 2 ] }', {"traits": "[ 1 , 2 ]"}),
        ('{"context":null}', {"context": "null"}),
        ('{"userId":null}', {EXTRA: '{"userId":null}'}),
        ('{"userId":"\\udc00"}', {EXTRA: '{"userId":"\\udc00"}'}),
        ('{"ünï":"ç"}', {EXTRA: '{"ünï":"ç"}'}),
        # Repeated names: the last wins, as with any JSON reader here.
        ('{"userId":5,"userId":"u"}', {"userId": "u"}),
    ],
)
def test_where_members_go_in_a_record(line, fields):
    record = event_to_record(line)
    assert {k: v for k, v in record.items() if v is not None} == fields


@pytest.mark.parametrize("line", ["[]", '"x"', "", "{", '{"a":1,}', '{"a":1} {}', "{'a':1}", '{"a":nul}'])
def test_a_line_that_is_not_a_json_object_has_no_record(line):
    with pytest.raises(NotAnEvent):
        event_to_record(line)


@pytest.mark.parametrize(
    "record, field",
    [
        ({"userId": 42}, "userId"),
        ({"type": b"identify"}, "type"),
        ({"traits": "{oops"}, "traits"),
        ({"traits": {"a": "1"}}, "traits"),
        ({"extra": "[1]"}, "extra"),
        ({"extra": "{nope"}, "extra"),
        ({"userId": "u", "extra": '{"userId":"v"}'}, "extra"),
        ({"email": "x@y.z"}, "email"),
    ],
)
def test_a_record_that_does_not_fit_names_the_field(record, field):
    with pytest.raises(RecordMismatch, match=f"field '{field}'") as raised:
        record_to_json(record)
    assert raised.value.field == field


def test_fields_of_another_schema_holding_nothing_are_ignored():
    assert record_to_json({"type": "identify", "email": None}) == '{"type":"identify"}'


def _parsed(line):
    result = parse_line(line)
    if isinstance(result, DeadLetter):
        # When it was made, and the line as written (member order, spaces): compare the rest.
        return {k: v for k, v in vars(result).items() if k not in ("time", "event")}
    return result


def test_jsonl_to_avro_to_jsonl_gives_the_same_events(tmp_path):
    source = tmp_path / "in.jsonl.gz"
    source.write_bytes(gzip.compress(("\n".join(EVENTS) + "\n\n").encode("utf-8")))
    avro, back = tmp_path / "events.avro", tmp_path / "back.jsonl"

    assert main(["to-avro", str(source), str(avro)], stderr=io.StringIO()) == 0
    assert main(["to-jsonl", str(avro), str(back)], stderr=io.StringIO()) == 0

    lines = back.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(line) for line in EVENTS]
    assert [_parsed(line) for line in lines] == [_parsed(line) for line in EVENTS]
    # Numbers keep their JSON text, not just their value.
    assert '"userId":12345678901234567890' in lines[2] and '"anonymousId":1.0' in lines[2]
    assert '"n":1.50' in lines[2] and '"e":1E+3' in lines[2]


def test_bad_lines_are_skipped_and_named_with_exit_status_1(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"type":"identify"}\nnot json\n\n[1]\n{"a":"\xff"}\n{"type":"group"}\n')
    avro = tmp_path / "out.avro"
    err = io.StringIO()

    assert main(["to-avro", str(source), str(avro), "--codec", "null"], stderr=err) == 1

    messages = err.getvalue().splitlines()
    assert [m.split(": ")[0] for m in messages[:3]] == [
        f"skipped {source}:2",
        f"skipped {source}:4",
        f"skipped {source}:5",
    ]
    assert messages[3] == f"2 events written to {avro}, 3 skipped"
    with open(avro, "rb") as f:
        assert [r["type"] for r in fastavro.reader(f)] == ["identify", "group"]


def test_records_that_do_not_fit_are_skipped_and_named(tmp_path):
    schema = {"type": "record", "name": "R", "fields": [{"name": "userId", "type": ["string", "long"]}]}
    avro = tmp_path / "other.avro"
    with open(avro, "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(schema), [{"userId": "a"}, {"userId": 7}])
    err = io.StringIO()

    assert main(["to-jsonl", str(avro), str(tmp_path / "out.jsonl.gz")], stderr=err) == 1

    assert f"skipped {avro}: record 2: field 'userId' holds a long" in err.getvalue()
    assert gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()) == b'{"userId":"a"}\n'


def test_a_file_that_cannot_be_read_is_exit_status_2(tmp_path):
    (tmp_path / "bad.avro").write_bytes(b"not avro")
    err = io.StringIO()
    assert main(["to-jsonl", str(tmp_path / "bad.avro"), str(tmp_path / "out.jsonl")], stderr=err) == 2
    assert err.getvalue().startswith(f"cannot convert {tmp_path / 'bad.avro'}: ")
    assert main(["to-avro", str(tmp_path / "missing.jsonl"), str(tmp_path / "o.avro")], stderr=err) == 2


def test_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "tools.avro_convert", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "to-avro" in done.stdout and "to-jsonl" in done.stdout
