"""WriteRecords: merged records written through REST (sObject Collections) or Bulk API 2.0.

`write_method` "rest" and "bulk" choose one writer for everything. "auto" decides per sObject at run
time: an sObject with more than `bulk_threshold` distinct records goes to WriteToSalesforceBulk, the
others to WriteToSalesforce. Unbounded input is always written through REST.

What "auto" costs. The decision needs each sObject's record count before its first write. Given
`record_counts` (CountRecords over the RecordOps, as pipeline/graph.py does it), the count is made
beside the merge, in the same pass over the events, and the writers run fused behind the merge as REST
alone would: no extra pass over the records and no extra API call (the Bulk writer logs in only when
it gets an object). Without it, the count is taken from the batches themselves, which makes the runner
keep every batch until the count is done: one more encode and decode of each merged record.

Why per sObject and why a threshold: REST costs about two calls per 200 records (an IN-list lookup and
a Collections write per 200: 828 calls for 92,000 records in bench/bulk_bench.py); Bulk costs a fixed
10 to 20 calls per sObject and DEFAULT_RECORDS_PER_JOB records (a COUNT, a query job, an update job
and a create job of about five calls each, plus polls), whatever the number of records; a first backfill
(no record yet) spends no query job, and its first chunks are smaller (bulk_writer.FIRST_JOB_RECORDS).
They cost the same at about 2,000 records; past 10,000 (the default threshold) Bulk spends a fifth of
the calls or less, and its polling (an object's jobs staggered two at a time, each polled with backoff)
no longer matters against the run. Each ingest job also spends one of the org's 15,000 daily Bulk batches per
10,000 records.
"""

import logging
from collections import Counter
from collections.abc import Callable, Iterable

import apache_beam as beam

from salesforce import stopping
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials, CredentialsSource
from schemas.records import MergedOp, RecordOp
from transforms.batch_by_shard import CutIntoBatches
from transforms.batch_writer import LIMIT_POLL_SECONDS, WritePolicy, WrittenRecord
from transforms.bulk_writer import DEFAULT_MIN_JOB_RECORDS
from transforms.result import Result
from transforms.write_bulk import WriteToSalesforceBulk
from transforms.write_to_salesforce import DEFAULT_WRITER_THREADS, ClientFactory, WriteToSalesforce

WRITE_METHODS = ("auto", "rest", "bulk")
DEFAULT_WRITE_METHOD = "auto"
DEFAULT_BULK_THRESHOLD = 10_000
BULK = "bulk"

_log = logging.getLogger(__name__)


def records_per_object(batch: list[MergedOp]) -> list[tuple[str, int]]:
    return list(Counter(op.sobject for op in batch).items())


def object_and_key(op: RecordOp) -> tuple[str, str]:
    return op.sobject, op.key


def choose(records: int, threshold: int) -> str:
    """ "bulk" for an sObject of more than `threshold` records, else "rest"."""
    return BULK if records > threshold else "rest"


class CountDistinct(beam.CombineFn):
    """How many distinct values (record keys) a key (an sObject) has."""

    def create_accumulator(self) -> set[str]:
        return set()

    def add_input(self, seen: set[str], key: str) -> set[str]:
        seen.add(key)
        return seen

    def merge_accumulators(self, accumulators: Iterable[set[str]]) -> set[str]:
        merged: set[str] = set()
        for seen in accumulators:
            if len(seen) > len(merged):
                seen, merged = merged, seen
            merged |= seen
        return merged

    def extract_output(self, seen: set[str]) -> int:
        return len(seen)


class CountRecords(beam.PTransform):
    """RecordOps -> (sObject, the number of records the merge makes of it): what "auto" decides on."""

    def expand(self, ops: beam.PCollection) -> beam.PCollection:
        return (
            ops
            | "KeyByObject" >> beam.Map(object_and_key).with_output_types(tuple[str, str])
            | "CountDistinct" >> beam.CombinePerKey(CountDistinct()).with_output_types(tuple[str, int])
        )


class _ChooseWriter(beam.DoFn):
    """Each list (split by sObject) to the REST output, or to BULK when its sObject has more than
    `threshold` records in the whole input."""

    def __init__(self, threshold: int) -> None:
        self._threshold = threshold

    def setup(self) -> None:
        self._told: set[str] = set()

    def process(self, ops: list[MergedOp], counts: dict[str, int]):
        parts: dict[str, list[MergedOp]] = {}
        for op in ops:
            parts.setdefault(op.sobject, []).append(op)
        for sobject, part in parts.items():
            records = counts.get(sobject, len(part))
            method = choose(records, self._threshold)
            if sobject not in self._told:
                self._told.add(sobject)
                _log.info(
                    "%s: %d records, %s the bulk threshold of %d: written through %s",
                    sobject,
                    records,
                    "above" if method == BULK else "within",
                    self._threshold,
                    "Bulk API 2.0" if method == BULK else "REST (sObject Collections)",
                )
            yield beam.pvalue.TaggedOutput(BULK, part) if method == BULK else part


class WriteRecords(beam.PTransform):
    """Writes lists of merged records through REST or Bulk API 2.0 (see the module docstring).

    Each record is in one list only. With `batch_size` (bounded input), the lists may be of any size (a
    shard's merged records, MergePerShard): those written through REST are cut into batches of one
    sObject and at most `batch_size` records first (CutIntoBatches), those written through Bulk go to it
    as they are, which saves a backfill's largest objects a shuffle. Without it, the lists are batches
    already.

    Returns Result(WrittenRecords, UndeliveredEvents), as WriteToSalesforce does. `record_counts`
    ((sObject, records) pairs, CountRecords' output) lets "auto" decide without a second pass over the
    batches. `bulk_options` go to WriteToSalesforceBulk (records_per_job, min_job_records, poll_seconds,
    bulk_factory, ...); with "bulk", every write goes as a Bulk job unless `min_job_records` says
    otherwise, while "auto" sends writes of fewer than DEFAULT_MIN_JOB_RECORDS (the few updates of a
    mostly new object) through sObject Collections, where they cost fewer calls. `threads` go to the
    REST writer. `keep_written` False says that nothing downstream reads the written records (no
    --read_output or --dry_run_output): "auto" then does not gather its two writers' outputs and
    Result.output is None (on the in-process runner, a Flatten that nothing reads still encodes every
    record it gathers: 92,000 in a 100,000-event backfill). `local`: the runner runs every stage in this
    process (pipeline/runner_kind.py), so the groupings hand the records over by reference.
    """

    def __init__(
        self,
        credentials: Credentials | CredentialsSource,
        settings: ConnectionSettings,
        client_factory: ClientFactory = SalesforceClient,
        write_method: str = DEFAULT_WRITE_METHOD,
        bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
        on_api_limit: str = "dead_letter",
        limit_poll_seconds: float = LIMIT_POLL_SECONDS,
        sleep: Callable[[float], None] = stopping.sleep,
        threads: int = DEFAULT_WRITER_THREADS,
        record_counts: beam.PCollection | None = None,
        policy: WritePolicy | None = None,
        keep_written: bool = True,
        batch_size: int | None = None,
        local: bool = False,
        **bulk_options,
    ) -> None:
        super().__init__()
        if write_method not in WRITE_METHODS:
            raise ValueError(f"write_method must be one of {', '.join(WRITE_METHODS)}, not {write_method!r}")
        if isinstance(bulk_threshold, bool) or not isinstance(bulk_threshold, int) or bulk_threshold < 0:
            raise ValueError(
                f"bulk_threshold must be a whole number of records, 0 or more, not {bulk_threshold!r}"
            )
        self._method = write_method
        self._threshold = bulk_threshold
        self._counts = record_counts
        self._keep_written = keep_written
        self._cut = CutIntoBatches(batch_size, local) if batch_size is not None else None
        self._rest = WriteToSalesforce(
            credentials,
            settings,
            client_factory=client_factory,
            on_api_limit=on_api_limit,
            limit_poll_seconds=limit_poll_seconds,
            sleep=sleep,
            threads=threads,
            policy=policy,
        )
        bulk_options.setdefault("min_job_records", 1 if write_method == BULK else DEFAULT_MIN_JOB_RECORDS)
        # Built (and so checked) now, so that a bad setting fails before the pipeline runs.
        self._bulk = WriteToSalesforceBulk(
            credentials,
            settings,
            client_factory=client_factory,
            on_api_limit=on_api_limit,
            limit_poll_seconds=limit_poll_seconds,
            sleep=sleep,
            policy=policy,
            local=local,
            **bulk_options,
        )

    def expand(self, lists: beam.PCollection):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        method = self._method
        if method == "rest" or (method == "auto" and not lists.is_bounded):
            return self._write_rest(lists)
        if method == BULK:
            return lists | "WriteToSalesforceBulk" >> self._bulk
        counts = self._counts
        if counts is None:
            counts = (
                lists
                | "CountRecords" >> beam.FlatMap(records_per_object).with_output_types(tuple[str, int])
                | "SumPerObject" >> beam.CombinePerKey(sum)
            )
        chosen = lists | "ChooseWriter" >> beam.ParDo(
            _ChooseWriter(self._threshold), counts=beam.pvalue.AsDict(counts)
        ).with_output_types(list[MergedOp]).with_outputs(BULK, main="rest")
        # A tagged output's type is not declared by with_output_types: without it, the batches would
        # cross to the Bulk writer's stage pickled whole instead of through MergedOp's coder.
        chosen[BULK].element_type = beam.typehints.List[MergedOp]
        rest = self._write_rest(chosen.rest)
        bulk = chosen[BULK] | "WriteToSalesforceBulk" >> self._bulk
        written = None
        if self._keep_written:
            written = (rest.output, bulk.output) | "FlattenWritten" >> beam.Flatten().with_output_types(
                WrittenRecord
            )
        dead = (rest.dead_letter, bulk.dead_letter) | "FlattenUndelivered" >> beam.Flatten()
        return Result(written, dead)

    def _write_rest(self, lists: beam.PCollection) -> Result:
        if self._cut is not None:
            lists = lists | "CutIntoBatches" >> self._cut
        return lists | "WriteToSalesforce" >> self._rest
