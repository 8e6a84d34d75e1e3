"""WriteRecords and WriteToSalesforceBulk in a pipeline: the outputs, dead letters and counters of REST."""

import collections
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from salesforce.client import SalesforceClient
from schemas.dead_letter import UndeliveredEvent
from schemas.records import MergedOp
from tests.bulk.conftest import WaitForJobs, backfill, calls, org_state, seed
from transforms.batch_writer import BatchWriter, WrittenRecord
from transforms.write_records import WriteRecords
from transforms.write_to_salesforce import ACTION_COUNTER, STAGE

PEOPLE = 240


def batches_of(ops: list[MergedOp], size: int) -> list[list[MergedOp]]:
    out = []
    for sobject in ("Lead", "Account"):
        mine = [op for op in ops if op.sobject == sobject]
        out.extend(mine[i : i + size] for i in range(0, len(mine), size))
    return out


def without_id(written: WrittenRecord) -> WrittenRecord:
    return written._replace(record_id=None)


def undelivered(failure: UndeliveredEvent) -> tuple:
    # The converted Lead's message names its record id, which differs between two runs.
    return failure._replace(message=failure.message.split(" matching ")[-1])


def run_and_count(p: beam.Pipeline) -> dict[str, int]:
    result = p.run()
    result.wait_until_finish()
    totals: dict[str, int] = collections.Counter()
    for c in result.metrics().query(MetricsFilter().with_namespace("beamforce"))["counters"]:
        totals[c.key.metric.name] += c.committed
    return dict(totals)


@pytest.fixture(scope="module")
def expected(emulator: Any, credentials, settings) -> tuple[list, list, tuple, dict]:
    """What the REST writer gives for the backfill: written records, undelivered events, org, counters."""
    from tests.bulk.conftest import reset

    ops, leads, accounts = backfill(PEOPLE)
    reset(emulator)
    seed(emulator, leads, accounts)
    writer = BatchWriter(SalesforceClient(credentials, settings))
    written, failures = [], []
    counters: dict[str, int] = collections.Counter()
    for batch in batches_of(ops, 100):
        report = writer.write(batch)
        counters["stale_fields_skipped"] += report.stale_fields
        for _, notes in report.field_notes:
            for kind in (kind for kind, names in notes.items() if names):
                counters[f"fields_{kind}"] += 1
        for sobject in report.ambiguous:
            counters[f"ambiguous_match:{sobject}"] += 1
        for op, result in report.results:
            if isinstance(result, WrittenRecord):
                kind = ACTION_COUNTER[result.action]
                written.append(without_id(result))
                counters[f"records_written:{result.sobject}:{kind}"] += 1
                counters[f"events_written:{result.sobject}:{kind}"] += op.events
            else:
                failures.extend(undelivered(UndeliveredEvent(ref, STAGE, *result)) for ref in op.refs)
    state = org_state(emulator)
    return written, failures, state, dict(counters)


@pytest.mark.parametrize("as_lists", [False, True], ids=["batches", "one-list-cut-for-rest"])
def test_auto_writes_the_big_object_through_bulk_and_the_small_one_through_rest(
    org: Any, credentials, settings, expected: tuple[list, list, tuple, dict], as_lists: bool
) -> None:
    """Given batches, or (with batch_size) one list of every record as a shard's merge gives it: the REST
    branch then cuts its records into batches, and the calls are the same."""
    ops, leads, accounts = backfill(PEOPLE)
    seed(org, leads, accounts)
    org.admin("POST", "/_emulator/calls/reset")
    p = test_pipeline.TestPipeline(runner="FnApiRunner")
    result = (
        p
        | "Batches" >> beam.Create([ops] if as_lists else batches_of(ops, 100))
        | "Write"
        >> WriteRecords(
            credentials,
            settings,
            write_method="auto",
            bulk_threshold=100,  # 240 Leads go through Bulk, 20 Accounts through REST
            sleep=WaitForJobs(org.info),
            min_job_records=1,
            records_per_job=100,  # three chunks of Leads
            batch_size=100 if as_lists else None,
        )
    )
    written, failures, state, counters = expected
    assert_that(result.output | "WithoutIds" >> beam.Map(without_id), equal_to(written), label="CheckWritten")
    assert_that(
        result.dead_letter | "Comparable" >> beam.Map(undelivered),
        equal_to(failures),
        label="CheckUndelivered",
    )

    counts = run_and_count(p)

    assert org_state(org) == state
    by_kind = calls(org)
    # Leads through Bulk: login, describe, then per chunk of 100 an IN-list query and an update and a
    # create job (five calls each, and failedResults in the two chunks that hold a refused email).
    # Accounts through REST (a writer of its own): login, describe, a query, an update and a create.
    # The converted Lead's Contact: a describe and an update.
    assert by_kind == {"login": 2, "describe": 3, "query": 4, "bulk": 32, "collections": 3, "total": 44}
    assert counts == {**counters, "api_calls": 44}
    assert failures  # the refused emails and the converted Lead
