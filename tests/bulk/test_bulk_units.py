"""The pure parts of the Bulk path, as tables: error texts, job failures, CSV values and rows, splitting."""

import logging
from dataclasses import replace

import pytest

from salesforce.bulk import (
    JobFailure,
    JobInfo,
    encode_csv,
    job_failure,
    parse_sf_error,
    read_csv,
    row_bytes,
    split_rows,
)
from schemas.fields import FieldMeta, ObjectMeta
from tests.bulk.conftest import account, lead
from transforms.bulk_writer import BulkWriter, Progress, cheaper_lookup, chunk_size, csv_text, to_rows
from transforms.write_bulk import key_by_object
from transforms.write_records import WriteRecords, records_per_object


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
            ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]"),
        ),
        ("ENTITY_IS_DELETED:entity is deleted:--", ("ENTITY_IS_DELETED", "entity is deleted")),
        (
            "DUPLICATE_VALUE:duplicate value found: Beamforce_Key__c duplicates value on record with id: 00Q1"
            ":--",
            (
                "DUPLICATE_VALUE",
                "duplicate value found: Beamforce_Key__c duplicates value on record with id: 00Q1",
            ),
        ),
        (
            "INVALID_EMAIL_ADDRESS:Email: invalid email address: x:Email --"
            "STRING_TOO_LONG:Title: too long:Title --",
            ("INVALID_EMAIL_ADDRESS", "Email: invalid email address: x; Title: too long"),
        ),
        (
            "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--",
            ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"),
        ),
        ("something went wrong", ("UNKNOWN_EXCEPTION", "something went wrong")),
        ("", ("UNKNOWN_EXCEPTION", "")),
    ],
)
def test_sf_error_column(text: str, expected: tuple[str, str]) -> None:
    assert parse_sf_error(text) == expected


@pytest.mark.parametrize(
    "state, error, expected",
    [
        (
            "Aborted",
            "",
            JobFailure(
                "BULK_JOB_ABORTED", "Bulk job 750X was aborted before it processed the record", True, True
            ),
        ),
        (
            "Failed",
            "TooManyLockFailure : too many lock failures",
            JobFailure(
                "TooManyLockFailure",
                "Bulk job 750X failed: TooManyLockFailure : too many lock failures",
                True,
                True,
            ),
        ),
        (
            "Failed",
            "InvalidBatch : Failed to parse CSV",
            JobFailure(
                "InvalidBatch", "Bulk job 750X failed: InvalidBatch : Failed to parse CSV", False, False
            ),
        ),
        (
            "Failed",
            "ExceededQuota : daily batches",
            JobFailure("ExceededQuota", "Bulk job 750X failed: ExceededQuota : daily batches", False, True),
        ),
        ("Failed", "", JobFailure("BULK_JOB_FAILED", "Bulk job 750X failed: no reason given", True, True)),
    ],
)
def test_what_a_failed_or_aborted_job_means_for_its_rows(
    state: str, error: str, expected: JobFailure
) -> None:
    assert job_failure(JobInfo("750X", state, error_message=error)) == expected


@pytest.mark.parametrize(
    "header, sizes, max_bytes, max_records, expected",
    [
        (10, [], 100, 10, []),
        (10, [10, 10, 10], 100, 10, [range(0, 3)]),
        (10, [10, 10, 10], 100, 2, [range(0, 2), range(2, 3)]),  # by records
        (20, [40, 40, 40], 100, 10, [range(0, 2), range(2, 3)]),  # 20 + 40 + 40 = 100 fits exactly
        (20, [40, 41, 30], 100, 10, [range(0, 1), range(1, 3)]),  # by bytes, the header in each job
    ],
)
def test_rows_split_into_jobs(
    header: int, sizes: list[int], max_bytes: int, max_records: int, expected: list[range]
) -> None:
    assert split_rows(header, sizes, max_bytes, max_records) == expected


def test_a_row_larger_than_a_job_is_refused() -> None:
    with pytest.raises(ValueError, match="row 1 takes 95 bytes"):
        split_rows(10, [5, 95], 100, 10)


def test_csv_round_trips_hard_values() -> None:
    rows = [
        ["a, comma", 'a "quote"', "two\nlines", "crlf\r\nline", "ünï 😀", " padded ", "", "lone\rcr", "x\r"]
    ]
    header = ["A", "B", "C", "D", "E", "F", "G", "H", "I"]
    data = encode_csv(header, rows)
    assert read_csv(data.decode("utf-8")) == (header, rows)
    # A lone CR is quoted too (a CSV reader ends a record there); plain values are not.
    assert data.decode("utf-8").endswith(',"lone\rcr","x\r"\n')
    assert data.startswith(b"A,B,C,D,E,F,G,H,I\n")
    assert row_bytes(header) + row_bytes(rows[0]) == len(data)


@pytest.mark.parametrize(
    "value, field_type, text",
    [
        (None, "string", "#N/A"),  # null clears the field; an empty value would leave it
        ("", "string", "#N/A"),  # REST stores "" as null
        (True, "boolean", "true"),
        (False, "boolean", "false"),
        (42, "int", "42"),
        (1.5, "double", "1.5"),
        (0.0001, "double", "0.0001"),
        (1e-7, "double", "0.0000001"),
        (1e20, "double", "100000000000000000000"),
        (-2.0, "double", "-2"),
        ("2024-01-02T12:34:56.000+0000", "datetime", "2024-01-02T12:34:56.000Z"),
        ("2024-01-02T12:34:56.000+0000", "string", "2024-01-02T12:34:56.000+0000"),
        ("two\nlines", "textarea", "two\nlines"),
        (["a", "b"], "anyType", '["a","b"]'),
    ],
)
def test_values_as_csv_text(value, field_type: str, text: str) -> None:
    assert csv_text(value, field_type) == text


def test_rows_have_the_union_of_the_records_fields() -> None:
    meta = ObjectMeta(
        "Lead", {"seen__c": FieldMeta("seen__c", "datetime"), "email": FieldMeta("Email", "email")}
    )
    records = [
        {"Email": "a@x.com", "seen__c": "2024-01-01T00:00:00.000+0000"},
        {"email": "b@x.com", "Title": "CEO"},
    ]
    assert to_rows(records, meta, first="Beamforce_Key__c") == (
        ["Beamforce_Key__c", "Email", "seen__c", "Title"],
        [["", "a@x.com", "2024-01-01T00:00:00.000Z", ""], ["", "b@x.com", "", "CEO"]],
    )


@pytest.mark.parametrize(
    "in_list_calls, export_calls, expected",
    [(2, 3, "rest"), (3, 3, "rest"), (18, 3, "export"), (18, None, "rest"), (5, 40, "rest")],
)
def test_the_cheaper_lookup(in_list_calls: int, export_calls: int | None, expected: str) -> None:
    assert cheaper_lookup(in_list_calls, export_calls) == expected


def test_batches_are_keyed_by_object_and_counted_per_object() -> None:
    ops = [lead("a@x.com", {}), account("Acme", {}), lead("b@x.com", {})]
    assert [(k, [op.match_value for op in v]) for k, v in key_by_object(ops)] == [
        ("Lead|Email", ["a@x.com", "b@x.com"]),
        ("Account|Name", ["Acme"]),
    ]
    assert records_per_object(ops) == [("Lead", 2), ("Account", 1)]


def test_a_long_list_is_grouped_by_object_in_pieces() -> None:
    """A shard's list (millions of records in a large backfill) reaches the grouping in bounded pieces."""
    ops = [lead(f"{n}@x.com", {}) for n in range(5)] + [account("Acme", {})]
    assert [(k, [op.match_value for op in v]) for k, v in key_by_object(ops, piece=2)] == [
        ("Lead|Email", ["0@x.com", "1@x.com"]),
        ("Lead|Email", ["2@x.com", "3@x.com"]),
        ("Lead|Email", ["4@x.com"]),
        ("Account|Name", ["Acme"]),
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counting:
    api_calls = 17


def test_progress_lines_say_records_done_rate_and_time_left(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress("Lead", 10_000, Counting(), clock, every=10.0)
    caplog.set_level(logging.INFO, logger="transforms.bulk_writer")
    progress.begin()
    clock.now += 5
    progress.show(1_000)  # within the interval: nothing
    clock.now += 15
    progress.show(4_000)
    clock.now += 30
    progress.show(10_000, force=True)
    assert [r.getMessage() for r in caplog.records] == [
        "bulk write of Lead: 10000 records to write",
        "bulk write of Lead: 4000 of 10000 records (40%), 200 records/s, about 30 s left; "
        "17 API calls so far",
        "bulk write of Lead: 10000 of 10000 records (100%), 200 records/s, done; 17 API calls so far",
    ]


def test_progress_adds_up_chunks_written_at_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress("Lead", 10_000, Counting(), clock, every=10.0)
    caplog.set_level(logging.INFO, logger="transforms.bulk_writer")
    progress.begin()
    caplog.clear()
    clock.now += 20
    progress.running(0, 2_000)
    clock.now += 5
    progress.running(1, 1_000)  # within the interval: nothing
    clock.now += 15
    progress.finished(0, 5_000)  # chunk 0's records, and what chunk 1 has processed so far
    clock.now += 10
    progress.finished(1, 5_000)
    assert [r.getMessage() for r in caplog.records] == [
        "bulk write of Lead: 2000 of 10000 records (20%), 100 records/s, about 80 s left; "
        "17 API calls so far",
        "bulk write of Lead: 6000 of 10000 records (60%), 150 records/s, about 27 s left; "
        "17 API calls so far",
        "bulk write of Lead: 10000 of 10000 records (100%), 200 records/s, done; 17 API calls so far",
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"write_method": "fast"}, "write_method must be one of auto, rest, bulk, not 'fast'"),
        ({"bulk_threshold": -1}, "bulk_threshold must be a whole number of records, 0 or more, not -1"),
        ({"records_per_job": 0}, "records_per_job must be at least 1, not 0"),
        ({"min_job_records": 0}, "min_job_records must be at least 1, not 0"),
        ({"poll_seconds": 60.0}, "poll_seconds must be more than 0 and at most max_poll_seconds"),
        ({"job_timeout_seconds": 0}, "job_timeout_seconds must be more than 0, not 0"),
        ({"on_api_limit": "ignore"}, "on_api_limit must be one of wait, dead_letter, not 'ignore'"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict, message: str) -> None:
    from salesforce.connection import ConnectionSettings
    from salesforce.credentials import Credentials

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WriteRecords(
            Credentials("u", "p", "t"), ConnectionSettings(login_url="https://login.example.com"), **kwargs
        )


@pytest.mark.parametrize(
    "delay, elapsed, processed, rows, expected",
    [
        (1.0, 1.0, 0, 50_000, 2.0),  # no progress yet: twice as long
        (16.0, 31.0, 0, 50_000, 30.0),  # at most the longest wait
        (1.0, 1.0, 0, 0, 2.0),  # a query job: rows unknown
        (2.0, 3.0, 25_000, 50_000, 3.3),  # half done in 3 s: about 3 s more (and 10%)
        (4.0, 7.0, 49_000, 50_000, 0.25),  # nearly done: soon, but not sooner than a quarter of the first
        (2.0, 3.0, 1_000, 50_000, 4.0),  # slow so far: twice the last wait, no more (the rate may rise)
        (16.0, 40.0, 1_000, 50_000, 30.0),  # and never more than the longest wait
        (2.0, 3.0, 50_000, 50_000, 4.0),  # every row processed, not yet complete: back to doubling
    ],
)
def test_the_next_poll_of_a_job(
    delay: float, elapsed: float, processed: int, rows: int, expected: float
) -> None:
    from salesforce.bulk import next_poll_seconds

    assert next_poll_seconds(delay, elapsed, processed, rows, first=1.0, longest=30.0) == pytest.approx(
        expected
    )


@pytest.mark.parametrize(
    "records, threshold, expected",
    [(0, 10_000, "rest"), (10_000, 10_000, "rest"), (10_001, 10_000, "bulk"), (1, 0, "bulk"), (0, 0, "rest")],
)
def test_auto_chooses_bulk_above_the_threshold(records: int, threshold: int, expected: str) -> None:
    from transforms.write_records import choose

    assert choose(records, threshold) == expected


def test_records_are_counted_per_object_as_the_merge_makes_them() -> None:
    from schemas.records import RecordOp
    from transforms.write_records import CountDistinct, object_and_key

    ops = [
        RecordOp("Lead", "Email", "a@x.com", {}),
        RecordOp("Lead", "Email", " A@X.com", {}),  # the same record: keys fold case and spaces
        RecordOp("Lead", "Email", "b@x.com", {}),
        RecordOp("Account", "AccountNumber", "acct-1", {}),
    ]
    combine = CountDistinct()
    by_object: dict[str, list[set[str]]] = {}
    for op in ops:
        sobject, key = object_and_key(op)
        part = combine.add_input(combine.create_accumulator(), key)
        by_object.setdefault(sobject, []).append(part)
    counts = {k: combine.extract_output(combine.merge_accumulators(v)) for k, v in by_object.items()}
    assert counts == {"Lead": 2, "Account": 1}


def _auto_graph(**kwargs):
    """A pipeline (not run) of "auto" WriteRecords over one empty batch, and its Result."""
    import apache_beam as beam

    from salesforce.connection import ConnectionSettings
    from salesforce.credentials import Credentials
    from schemas.records import MergedOp

    p = beam.Pipeline(runner="FnApiRunner")
    batches = p | beam.Create([[]]).with_output_types(list[MergedOp])
    counts = p | "Counts" >> beam.Create([("Lead", 1)])
    result = batches | WriteRecords(
        Credentials("u", "p", "t"),
        ConnectionSettings(login_url="https://login.example.com"),
        record_counts=counts,
        **kwargs,
    )
    return p, result


def test_batches_reach_the_bulk_writer_through_the_merged_op_coder() -> None:
    """The batches "auto" sends to Bulk cross a stage boundary: through MergedOp's coder, not a pickle of
    each whole batch (Beam does not type a tagged output)."""
    import apache_beam as beam
    from apache_beam.coders import ListCoder

    from transforms.coders import MergedOpCoder

    p, _ = _auto_graph()
    proto = p.to_runner_api()
    context = beam.runners.pipeline_context.PipelineContext(proto.components)
    coders = {
        pc.unique_name: context.coders.get_by_id(pc.coder_id)
        for pc in proto.components.pcollections.values()
        if pc.unique_name.endswith("ChooseWriter).bulk")
    }
    assert list(coders.values()) == [ListCoder(MergedOpCoder())]


@pytest.mark.parametrize("keep_written, gathered", [(True, True), (False, False)])
def test_auto_gathers_the_written_records_only_when_they_are_read(keep_written: bool, gathered: bool) -> None:
    """Without --read_output or --dry_run_output nothing reads the written records: "auto" then builds no
    Flatten of its two writers' outputs (the in-process runner encodes what a Flatten gathers, read or
    not)."""
    p, result = _auto_graph(keep_written=keep_written)
    names = {t.unique_name for t in p.to_runner_api().components.transforms.values()}
    assert any(name.endswith("FlattenWritten") for name in names) is gathered
    assert (result.output is not None) is gathered
    assert any(name.endswith("FlattenUndelivered") for name in names)


def _pairs(emails: int) -> list:
    """Two actions' records on each new Lead (the identify preset and a form's upsert by Email), side by
    side as batch_order puts them: one target record each (schemas.records.target_key)."""
    ops = []
    for n in range(emails):
        email = f"p{n}@x.com"
        ops.append(lead(email, {"FirstName": "P"}))
        ops.append(replace(lead(email, {"Title": "CTO"}), action="signup"))
    return ops


def test_a_piece_of_the_grouping_by_object_never_splits_a_target_record() -> None:
    pieces = [[op.match_value for op in v] for _, v in key_by_object(_pairs(3), piece=3)]
    assert pieces == [["p0@x.com", "p0@x.com", "p1@x.com", "p1@x.com"], ["p2@x.com", "p2@x.com"]]


@pytest.mark.parametrize(
    "first, most, sizes",
    [
        (1, 1, [2] * 20),
        (3, 3, [4] * 10),
        (3, 8, [4, 6, 8, 8, 8, 6]),
        (5, 50, [6, 10, 12, 12]),  # 24 left after 16: the last two even
    ],
)
def test_a_chunk_never_splits_a_target_record(first: int, most: int, sizes: list[int]) -> None:
    """Two chunks are written at once: a Lead's two actions cut apart could each find no Lead and each
    create one."""
    ops = _pairs(20)
    writer = BulkWriter(object(), bulk=object(), first_job_records=first, records_per_job=most)
    chunks = [chunk for _, chunk in writer._chunks([ops[:15], ops[15:]], {("Lead", "Email"): len(ops)})]
    assert [op for chunk in chunks for op in chunk] == ops
    assert [len(chunk) for chunk in chunks] == sizes
    assert all(chunk[0].action == "" and chunk[-1].action == "signup" for chunk in chunks)


@pytest.mark.parametrize(
    "planned, left, least, size",
    [
        (10_000, 89_989, 10_000, 10_000),  # the growth rule while much is left
        (20_000, 79_989, 10_000, 20_000),
        (40_000, 59_989, 10_000, 29_995),  # fits in two: the last two even (rounded up)
        (50_000, 29_994, 10_000, 29_994),  # fits in one: all of it
        (50_000, 50_000, 10_000, 50_000),
        (50_000, 100_000, 10_000, 50_000),  # two full chunks: no need to share
        (50_000, 99_999, 10_000, 50_000),
        (2_500, 3_000, 1_000, 1_500),
        (2_500, 1_500, 1_000, 1_500),
        (3, 4, 3, 3),  # halves smaller than the first chunk: not shared
        (10_000, 15_000, 10_000, 10_000),
        (10_000, 0, 10_000, 0),
    ],
)
def test_the_last_two_chunks_share_what_is_left(planned: int, left: int, least: int, size: int) -> None:
    assert chunk_size(planned, left, least) == size
