"""Bulk API 2.0 jobs of the emulator: their SQLite storage, CSV handling and background processing."""

import base64
import csv
import io
import json
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from emulator import ids, soql
from emulator.errors import ApiError, MultipleChoicesError, RecordError
from emulator.validation import REFUSED, accepted_column, format_datetime

if TYPE_CHECKING:
    from emulator.objects import Field
    from emulator.org import Org

log = logging.getLogger(__name__)

JOB_KEY_PREFIX = "750"
INGEST = "V2Ingest"
QUERY = "V2Query"

INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
QUERY_OPERATIONS = ("query", "queryAll")
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}

OPEN = "Open"
UPLOAD_COMPLETE = "UploadComplete"
IN_PROGRESS = "InProgress"
JOB_COMPLETE = "JobComplete"
FAILED = "Failed"
ABORTED = "Aborted"
TERMINAL_STATES = (JOB_COMPLETE, FAILED, ABORTED)

NULL_MARKER = "#N/A"
# Salesforce runs ingest data in chunks of 200 records (one trigger/transaction scope each).
CHUNK_SIZE = 200
_DECIMAL_TYPES = ("double", "currency", "percent")
# The describe types convert_value reads; it hands on any other value as it is (#N/A as None).
_CONVERTED_TYPES = frozenset({"boolean", "int", *_DECIMAL_TYPES})
_XSD_TYPES = {
    "int": "int",
    "boolean": "boolean",
    "double": "double",
    "currency": "double",
    "percent": "double",
}
_BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_UNSET = object()  # an empty CSV value: the record does not set the field
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class CsvDataError(Exception):
    """The uploaded data cannot be processed at all; the message becomes the job's errorMessage."""


def now_stamp() -> str:
    """Salesforce's job timestamp format, e.g. 2026-11-28T18:00:00.000+0000 (UTC)."""
    return format_datetime(datetime.now(UTC))


@dataclass
class Job:
    """One row of the job table."""

    id: str
    job_type: str
    operation: str
    object: str
    created_by_id: str
    created_date: str
    system_modstamp: str
    state: str
    external_id_field: str | None
    api_version: str
    line_ending: str
    column_delimiter: str
    records_processed: int
    records_failed: int
    total_processing_time: int
    api_active_processing_time: int
    error_message: str | None
    query: str | None
    uploads: int
    header: list[str] | None


class RecordResult(NamedTuple):
    """The outcome of one input record: success (sf__Created in `detail`) or failure (sf__Error)."""

    index: int
    success: bool
    sf_id: str
    detail: str
    row: Sequence[str]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bulk2_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE,
    job_type TEXT NOT NULL,
    operation TEXT NOT NULL,
    object TEXT NOT NULL,
    created_by_id TEXT NOT NULL,
    created_date TEXT NOT NULL,
    system_modstamp TEXT NOT NULL,
    state TEXT NOT NULL,
    external_id_field TEXT,
    api_version TEXT NOT NULL,
    line_ending TEXT NOT NULL,
    column_delimiter TEXT NOT NULL,
    records_processed INTEGER NOT NULL DEFAULT 0,
    records_failed INTEGER NOT NULL DEFAULT 0,
    total_processing_time INTEGER NOT NULL DEFAULT 0,
    api_active_processing_time INTEGER NOT NULL DEFAULT 0,
    error_message TEXT,
    query TEXT,
    uploads INTEGER NOT NULL DEFAULT 0,
    header TEXT
);
CREATE TABLE IF NOT EXISTS bulk2_uploads (
    job_id TEXT NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (job_id, part)
);
CREATE TABLE IF NOT EXISTS bulk2_results (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, success INTEGER NOT NULL, sf_id TEXT NOT NULL,
    detail TEXT NOT NULL, row TEXT NOT NULL, PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS bulk2_query_rows (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, row TEXT NOT NULL, PRIMARY KEY (job_id, idx)
);
"""

# Every table and the column that names the job a row belongs to.
_TABLES = (
    ("bulk2_jobs", "id"),
    ("bulk2_uploads", "job_id"),
    ("bulk2_results", "job_id"),
    ("bulk2_query_rows", "job_id"),
)
_JOB_COLUMNS = (
    "id, job_type, operation, object, created_by_id, created_date, system_modstamp, state, "
    "external_id_field, api_version, line_ending, column_delimiter, records_processed, records_failed, "
    "total_processing_time, api_active_processing_time, error_message, query, uploads, header"
)


def _job_from_row(row: Sequence[Any]) -> Job:
    values = list(row)
    values[-1] = json.loads(values[-1]) if values[-1] is not None else None
    return Job(*values)


class JobStore:
    """Bulk jobs, their uploaded data and their results in one SQLite file; safe across threads."""

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def create(
        self,
        *,
        job_type: str,
        operation: str,
        sobject: str,
        created_by_id: str,
        api_version: str,
        line_ending: str,
        column_delimiter: str,
        external_id_field: str | None = None,
        query: str | None = None,
        state: str = OPEN,
    ) -> Job:
        stamp = now_stamp()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO bulk2_jobs (job_type, operation, object, created_by_id, created_date, "
                "system_modstamp, state, external_id_field, api_version, line_ending, column_delimiter, "
                "query) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_type,
                    operation,
                    sobject,
                    created_by_id,
                    stamp,
                    stamp,
                    state,
                    external_id_field,
                    api_version,
                    line_ending,
                    column_delimiter,
                    query,
                ),
            )
            seq = cur.lastrowid
            assert seq is not None
            job_id = ids.make_id(JOB_KEY_PREFIX, seq)
            db.execute("UPDATE bulk2_jobs SET id = ? WHERE seq = ?", (job_id, seq))
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM bulk2_jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return _job_from_row(row) if row else None

    def jobs(self, job_type: str) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM bulk2_jobs WHERE job_type = ? ORDER BY seq", (job_type,)
            ).fetchall()
        return [_job_from_row(r) for r in rows]

    def ids_in_states(self, states: Iterable[str]) -> list[str]:
        states = list(states)
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM bulk2_jobs WHERE state IN ({marks}) ORDER BY seq", states
            ).fetchall()
        return [r[0] for r in rows]

    def transition(self, job_id: str, to_state: str, from_states: Iterable[str], **fields: Any) -> bool:
        """Moves the job to `to_state` only if it is in one of `from_states` (compare-and-set)."""
        from_states = list(from_states)
        sets = ["state = ?", "system_modstamp = ?"] + [f"{k} = ?" for k in fields]
        marks = ",".join("?" * len(from_states))
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE bulk2_jobs SET {', '.join(sets)} WHERE id = ? AND state IN ({marks})",
                [to_state, now_stamp(), *fields.values(), job_id, *from_states],
            )
            return cur.rowcount == 1

    def add_upload(self, job_id: str, data: bytes) -> bool:
        """Stores one PUT of CSV data; False if the job is no longer Open."""
        with self._tx() as db:
            row = db.execute("SELECT state, uploads FROM bulk2_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] != OPEN:
                return False
            db.execute("INSERT INTO bulk2_uploads VALUES (?, ?, ?)", (job_id, row[1], data))
            db.execute(
                "UPDATE bulk2_jobs SET uploads = uploads + 1, system_modstamp = ? WHERE id = ?",
                (now_stamp(), job_id),
            )
        return True

    def upload_data(self, job_id: str) -> bytes:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM bulk2_uploads WHERE job_id = ? ORDER BY part", (job_id,)
            ).fetchall()
        return b"".join(r[0] for r in rows)

    def set_header(self, job_id: str, header: list[str]) -> None:
        with self._tx() as db:
            db.execute("UPDATE bulk2_jobs SET header = ? WHERE id = ?", (json.dumps(header), job_id))

    def result_count(self, job_id: str) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM bulk2_results WHERE job_id = ?", (job_id,)
            ).fetchone()[0]

    def add_results(self, job_id: str, results: Sequence[RecordResult], active_ms: int) -> bool:
        """Records a processed chunk and its counts; False (nothing stored) if the job was deleted."""
        failed = sum(1 for r in results if not r.success)
        with self._tx() as db:
            cur = db.execute(
                "UPDATE bulk2_jobs SET records_processed = records_processed + ?, "
                "records_failed = records_failed + ?, "
                "api_active_processing_time = api_active_processing_time + ?, "
                "system_modstamp = ? WHERE id = ?",
                (len(results), failed, active_ms, now_stamp(), job_id),
            )
            if cur.rowcount != 1:
                return False
            db.executemany(
                "INSERT OR REPLACE INTO bulk2_results VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (job_id, r.index, int(r.success), r.sf_id, r.detail, json.dumps(list(r.row)))
                    for r in results
                ],
            )
        return True

    def results(self, job_id: str, success: bool) -> Iterator[tuple[str, str, list[str]]]:
        """The job's results in input order, read at once and decoded as they are consumed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sf_id, detail, row FROM bulk2_results WHERE job_id = ? AND success = ? ORDER BY idx",
                (job_id, int(success)),
            ).fetchall()
        # Lazily: a decoded row is written out and freed before the next, rather than all of them kept
        # alive at once (each a list the garbage collector would scan, with every record of the org).
        return ((sf_id, detail, json.loads(row)) for sf_id, detail, row in rows)

    def processed_indexes(self, job_id: str) -> set[int]:
        with self._lock:
            rows = self._db.execute("SELECT idx FROM bulk2_results WHERE job_id = ?", (job_id,)).fetchall()
        return {r[0] for r in rows}

    def store_query_rows(self, job_id: str, header: list[str], rows: Iterable[Sequence[str]]) -> None:
        with self._tx() as db:
            db.execute("UPDATE bulk2_jobs SET header = ? WHERE id = ?", (json.dumps(header), job_id))
            db.executemany(
                "INSERT INTO bulk2_query_rows VALUES (?, ?, ?)",
                ((job_id, i, json.dumps(list(r))) for i, r in enumerate(rows)),
            )

    def query_rows(self, job_id: str, offset: int, limit: int | None) -> list[list[str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT row FROM bulk2_query_rows WHERE job_id = ? AND idx >= ? ORDER BY idx LIMIT ?",
                (job_id, offset, -1 if limit is None else limit),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def query_row_count(self, job_id: str) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM bulk2_query_rows WHERE job_id = ?", (job_id,)
            ).fetchone()[0]

    def delete(self, job_id: str) -> None:
        with self._tx() as db:
            for table, column in _TABLES:
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (job_id,))

    def clear(self) -> None:
        """Deletes every job; job ids are not reused afterwards (the sequence keeps counting)."""
        with self._tx() as db:
            for table, _ in _TABLES:
                db.execute(f"DELETE FROM {table}")


# ----------------------------------------------------------------------------------------------
# CSV


def parse_csv(data: bytes, column_delimiter: str, line_ending: str) -> tuple[list[str], list[list[str]]]:
    """Header and records of uploaded job data; CsvDataError with Salesforce's wording if unusable."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvDataError(
            f"InvalidBatch : Failed to parse CSV: the data is not valid UTF-8 ({exc})"
        ) from exc
    if not text.strip():
        raise CsvDataError("InvalidBatch : Failed to parse CSV: no data was uploaded for this job")
    first_break = text.find("\n")
    if first_break != -1:
        found = "CRLF" if first_break > 0 and text[first_break - 1] == "\r" else "LF"
        if found != line_ending:
            raise CsvDataError(
                "ClientInputError : LineEnding is invalid on user data. "
                f"Current LineEnding setting is {line_ending}"
            )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[column_delimiter], strict=True)
    try:
        rows = [row for row in reader if row]
    except csv.Error as exc:
        raise CsvDataError(f"InvalidBatch : Failed to parse CSV on line {reader.line_num}: {exc}") from exc
    header, records = rows[0], rows[1:]
    for number, record in enumerate(records, start=2):
        if len(record) != len(header):
            raise CsvDataError(
                f"InvalidBatch : Failed to parse CSV: record {number} has {len(record)} columns, "
                f"the header has {len(header)}"
            )
    return header, records


def render_csv(
    header: Sequence[str], rows: Iterable[Sequence[str]], column_delimiter: str, line_ending: str
) -> str:
    """CSV as Salesforce answers it: every value quoted, the job's delimiter and line ending."""
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=DELIMITERS[column_delimiter],
        lineterminator=LINE_ENDINGS[line_ending],
        quoting=csv.QUOTE_ALL,
    )
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def csv_value(value: Any) -> str:
    """A stored field value as Bulk query results write it (null is empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def encode_locator(offset: int) -> str:
    # Real locators are opaque base64 strings; base64 of the offset keeps ours stateless.
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int | None:
    try:
        padded = locator + "=" * (-len(locator) % 4)
        offset = int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    return offset if offset >= 0 else None


# ----------------------------------------------------------------------------------------------
# Records


def format_error(error: ApiError, external_id_field: str | None = None) -> str:
    """sf__Error as Salesforce writes it: `CODE:message:fields --` for each error."""
    if isinstance(error, MultipleChoicesError):
        found = ", ".join(url.rstrip("/").rsplit("/", 1)[-1] for url in error.urls)
        return (
            f"DUPLICATE_EXTERNAL_ID:{external_id_field}: more than one record found for external id field: "
            f"[{found}]:{external_id_field} --"
        )
    items = (
        error.errors
        if isinstance(error, RecordError)
        else [{"statusCode": error.error_code, "message": error.message, "fields": error.fields or []}]
    )
    # Salesforce's separator after the fields is " --", just "--" when there are none.
    return "".join(
        f"{e['statusCode']}:{e['message']}:{','.join(e['fields']) + ' ' if e.get('fields') else ''}--"
        for e in items
    )


class DeserializeError(Exception):
    """A CSV value that cannot be read as its field's type (Bulk fails the record, naming the column)."""

    def __init__(self, column: int, field: str, value: str, xsd_type: str):
        super().__init__(
            f"INVALID_FIELD:Failed to deserialize field at col {column}. Due to, '{value}' is not a valid "
            f"value for the type xsd:{xsd_type}:{field} --"
        )


def convert_value(raw: str, field_type: str) -> Any:
    """A CSV value as the JSON value the REST API would receive (ValueError if it cannot be one)."""
    if raw == NULL_MARKER:
        return None
    if field_type == "boolean":
        value = _BOOLEAN_WORDS.get(raw.lower())
        if value is None:
            raise ValueError(raw)
        return value
    if field_type == "int" and not _INTEGER.fullmatch(raw):
        raise ValueError(raw)
    if field_type in _DECIMAL_TYPES and not _DECIMAL.fullmatch(raw):
        raise ValueError(raw)
    # Numbers stay text: the org parses them exactly (as Decimal), as it does JSON strings.
    return raw


@dataclass(frozen=True)
class _Plan:
    """How the columns of an upload map onto the object's fields."""

    columns: tuple[tuple[int, str, str], ...]  # (column index, canonical field, describe type)
    id_column: int | None
    key_column: int | None  # upsert: the external id column


def plan_columns(header: list[str], describe: dict, job: Job) -> _Plan:
    fields = {f["name"].lower(): f for f in describe.get("fields", [])}
    if job.operation in ("delete", "hardDelete") and header != ["Id"]:
        raise CsvDataError(f"InvalidBatch : The '{job.operation}' batch must contain only one column: Id")
    seen: set[str] = set()
    columns = []
    id_column = key_column = None
    for index, name in enumerate(header):
        meta = fields.get(name.strip().lower()) if name else None
        if meta is None:
            raise CsvDataError(f"InvalidBatch : Field name not found : {name}")
        canonical = meta["name"]
        if canonical in seen:
            raise CsvDataError(f"InvalidBatch : Duplicate field name: {name}")
        seen.add(canonical)
        if canonical == "Id":
            id_column = index
        if job.operation == "upsert" and canonical == job.external_id_field:
            key_column = index
        columns.append((index, canonical, meta.get("type", "string")))
    return _Plan(tuple(columns), id_column, key_column)


@dataclass(frozen=True)
class _Checks:
    """The columns that a chunk's records are checked by a column at a time, before the org sees them."""

    # (column index, field, whether every record must set it) of the values a record sets
    columns: tuple[tuple[int, "Field", bool], ...]


def column_checks(org: "Org", job: Job, plan: _Plan) -> _Checks | None:
    """The checks of the job's columns, or None where every record takes the path of one record alone:
    an operation other than insert or update, a column the operation may not write, an insert that
    names Ids or has no column for a required field. Those records fail, and their errors are its."""
    if job.operation not in ("insert", "update"):
        return None
    obj = org.object(job.object)
    insert = job.operation == "insert"
    writable = obj.createable_names if insert else obj.updateable_names
    fields = [obj.by_name[name] for col, name, _ in plan.columns if col != plan.id_column]
    names = {f.name for f in fields}
    if obj.read_only or not names <= writable:
        return None
    # An update may leave any field alone.
    required = set(obj.required_names) if insert else set()
    if insert and (plan.id_column is not None or not required <= names):
        return None
    columns = [col for col, _, _ in plan.columns if col != plan.id_column]
    return _Checks(tuple((col, f, f.name in required) for col, f in zip(columns, fields, strict=True)))


def accepted_records(checks: _Checks, rows: Sequence[Sequence[str]]) -> list[dict[str, Any] | None]:
    """Each record's values as validate() accepts the body apply_record would send for it, or None
    for a record that takes the path of one record alone (any error, #N/A, a required field not set)."""
    if not checks.columns:
        return [{} for _ in rows]
    by_column = list(zip(*rows, strict=True))
    stored = [
        _stored_column(f, by_column[col], REFUSED if required else _UNSET)
        for col, f, required in checks.columns
    ]
    names = [f.name for _, f, _ in checks.columns]
    records: list[dict[str, Any] | None] = []
    for values in zip(*stored, strict=True):
        if REFUSED in values:
            records.append(None)
        elif _UNSET in values:
            records.append({n: v for n, v in zip(names, values, strict=True) if v is not _UNSET})
        else:
            records.append(dict(zip(names, values, strict=True)))
    return records


def _stored_column(f: "Field", raws: Sequence[str], unset: object) -> list[Any]:
    """The stored form of each CSV value of a column, `unset` for an empty one, REFUSED for one that
    validate() or convert_value refuses."""
    given = [raw for raw in raws if raw]
    if f.type not in _CONVERTED_TYPES and NULL_MARKER not in given:
        values = given  # convert_value's answer
    else:
        values = [_json_value(raw, f.type) for raw in given]
    stored = accepted_column(f, values)
    if len(given) == len(raws):
        return stored
    found = iter(stored)
    return [next(found) if raw else unset for raw in raws]


def _json_value(raw: str, field_type: str) -> Any:
    """convert_value's answer, or null where it has none (which accepted() refuses as it does null)."""
    try:
        return convert_value(raw, field_type)
    except ValueError:
        return None


def apply_record(
    org: "Org", job: Job, plan: _Plan, index: int, row: Sequence[str], values: dict[str, Any] | None = None
) -> RecordResult:
    """Runs one record through the org exactly as the REST API would, catching Salesforce errors;
    `values`, if given, are those accepted_records() found validate() to accept for it."""

    def body(skip: int | None) -> dict[str, Any]:
        # An empty value means "not set"; #N/A clears the field.
        values = {}
        for col, name, ftype in plan.columns:
            raw = row[col]
            if raw == "" or col == skip or col == plan.id_column:
                continue
            if ftype not in _CONVERTED_TYPES:  # convert_value's answer, without the call
                values[name] = None if raw == NULL_MARKER else raw
                continue
            try:
                values[name] = convert_value(raw, ftype)
            except ValueError:
                raise DeserializeError(col + 1, name, raw, _XSD_TYPES[ftype]) from None
        return values

    def success(record_id: str, created: bool) -> RecordResult:
        return RecordResult(index, True, record_id, "true" if created else "false", row)

    def failure(record_id: str, error: str) -> RecordResult:
        return RecordResult(index, False, record_id, error, row)

    given_id = row[plan.id_column] if plan.id_column is not None else ""
    if given_id and ids.is_valid(given_id):
        given_id = ids.to18(given_id)  # results name records by their 18-character id
    try:
        if job.operation == "insert":
            if given_id:
                # As over REST: an insert names no Id.
                raise ApiError(
                    400, "INVALID_FIELD", "The Id field should not be specified in the sobject data."
                )
            if values is not None:
                return success(org.create_accepted(job.object, values), True)
            return success(org.create(job.object, body(None)), True)
        if job.operation == "update":
            if not given_id:
                return failure("", "MISSING_ARGUMENT:Id not specified in an update call:--")
            # sf__Id is the record's 18-character id, whichever form the CSV used.
            if values is not None:
                return success(org.update_accepted(job.object, given_id, values), False)
            return success(org.update(job.object, given_id, body(None)), False)
        if job.operation == "upsert":
            if job.external_id_field == "Id":
                if not given_id:
                    return success(org.create(job.object, body(None)), True)
                return success(org.update(job.object, given_id, body(None)), False)
            key = row[plan.key_column] if plan.key_column is not None else ""
            if not key:
                return failure("", f"MISSING_ARGUMENT:{job.external_id_field} not specified:--")
            record_id, created = org.upsert(
                job.object, job.external_id_field or "", key, body(plan.key_column)
            )
            return success(record_id, created)
        # delete / hardDelete: the emulator keeps no recycle bin distinction.
        if not given_id:
            return failure("", "MISSING_ARGUMENT:Id not specified in a delete call:--")
        return success(org.delete(job.object, given_id), False)
    except ApiError as exc:
        return failure(
            given_id if job.operation != "insert" else "", format_error(exc, job.external_id_field)
        )
    except DeserializeError as exc:
        return failure(given_id if job.operation != "insert" else "", str(exc))


# ----------------------------------------------------------------------------------------------
# Processing


class JobRunner:
    """Processes closed jobs on background daemon threads, so that a stopping server never waits."""

    def __init__(self, store: JobStore, org: "Org", workers: int = 2):
        self.store = store
        self.org = org
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"bulk2-worker-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        # Jobs closed before a restart resume where their last committed chunk ended.
        for job_id in store.ids_in_states((UPLOAD_COMPLETE, IN_PROGRESS)):
            self.submit(job_id)

    def submit(self, job_id: str) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(job_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Blocks until every submitted job has been processed (for tests and shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the workers after their current chunk; unfinished jobs resume at the next start."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self.run(job_id)
            except Exception as exc:  # a bug must fail the job, never kill the worker
                log.exception("bulk job %s failed unexpectedly", job_id)
                self.store.transition(
                    job_id,
                    FAILED,
                    (UPLOAD_COMPLETE, IN_PROGRESS),
                    error_message=f"InternalServerError : {type(exc).__name__}",
                )
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.state not in (UPLOAD_COMPLETE, IN_PROGRESS):
            return
        started = time.monotonic()
        if job.state == UPLOAD_COMPLETE and not self.store.transition(
            job_id, IN_PROGRESS, (UPLOAD_COMPLETE,)
        ):
            return
        if job.job_type == QUERY:
            count = self.store.query_row_count(job_id)
            self._finish(job_id, started, records_processed=count)
            return
        try:
            header, rows = parse_csv(self.store.upload_data(job_id), job.column_delimiter, job.line_ending)
            # Tuples, which the garbage collector stops tracking: the job's rows live as long as it runs.
            rows = [tuple(row) for row in rows]
            self.store.set_header(job_id, header)
            plan = plan_columns(header, self.org.describe(job.object, job.api_version), job)
        except CsvDataError as exc:
            self.store.transition(
                job_id,
                FAILED,
                (IN_PROGRESS,),
                error_message=str(exc),
                total_processing_time=_ms_since(started),
            )
            return
        checks = column_checks(self.org, job, plan)
        for start in range(self.store.result_count(job_id), len(rows), CHUNK_SIZE):
            if self._stopping.is_set():
                return  # still InProgress: picked up again when the server next starts
            chunk_started = time.monotonic()
            indexes = range(start, min(start + CHUNK_SIZE, len(rows)))
            chunk = [rows[index] for index in indexes]
            accepted = accepted_records(checks, chunk) if checks else [None] * len(chunk)
            with self.org.transaction():
                # Checked under the org's lock, which a reset holds while it deletes the jobs: no chunk
                # of a deleted job writes records after the reset.
                current = self.store.get(job_id)
                if current is None or current.state != IN_PROGRESS:
                    return  # aborted, deleted or reset meanwhile: the rest stays unprocessed
                results = [
                    apply_record(self.org, job, plan, index, row, values)
                    for index, row, values in zip(indexes, chunk, accepted, strict=True)
                ]
            if not self.store.add_results(job_id, results, _ms_since(chunk_started)):
                return
        self._finish(job_id, started)

    def _finish(self, job_id: str, started: float, **fields: Any) -> None:
        self.store.transition(
            job_id, JOB_COMPLETE, (IN_PROGRESS,), total_processing_time=_ms_since(started), **fields
        )


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def query_table(records: list[dict], fields: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and CSV values of query results, columns named as the query wrote them."""

    def lookup(record: dict, path: str) -> Any:
        value: Any = record
        for part in path.split("."):
            if not isinstance(value, dict):
                return None
            match = next((k for k in value if k.lower() == part.lower()), None)
            value = value.get(match) if match is not None else None
        return value

    return list(fields), [[csv_value(lookup(r, f)) for f in fields] for r in records]


def run_query(
    org: "Org", text: str, include_deleted: bool, version: str
) -> tuple[str, list[str], list[list[str]]]:
    """(object, header, rows) of a Bulk query job's SOQL; ApiError for SOQL errors and unsupported queries."""
    try:
        parsed = soql.parse(text)
    except soql.SoqlError as exc:
        raise ApiError(400, exc.error_code, exc.message) from exc
    if parsed.is_count:
        raise ApiError(400, "INVALIDJOB", "Aggregate queries (COUNT()) are not supported by Bulk API 2.0")
    result = org.query(text, include_deleted, version)
    if isinstance(result, int):
        raise ApiError(400, "INVALIDJOB", "Aggregate queries (COUNT()) are not supported by Bulk API 2.0")
    header, rows = query_table(result, parsed.fields)
    return org.canonical_sobject(parsed.sobject), header, rows
