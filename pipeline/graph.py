"""The pipeline's graph: events -> Salesforce, with every stage's dead letters into one sink.

One graph for both modes. Bounded input merges each record over the whole input (the fewest API
calls) and is written through REST or Bulk API 2.0 (--write_method; "auto" counts each object's records
beside the merge and sends the large ones through Bulk); unbounded input swaps only the merging and
batching stages for stateful ones (dedup by messageId, late-data state, buffers flushed by size and age)
and is always written through REST. Parsing, the gate, mapping, the writer's outputs and the dead-letter
schema are the same.
"""

import time
from collections.abc import Callable

import apache_beam as beam

from actions.config import default_actions
from pipeline.action_options import ActionPlan
from pipeline.options import (
    BOUNDED_BATCH_SIZE,
    BOUNDED_SHARDS,
    DEFAULT_WRITER_THREADS,
    STREAMING_BATCH_SIZE,
    STREAMING_SHARDS,
    BeamforceOptions,
)
from salesforce.bulk import BulkClient
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials, CredentialsSource
from transforms import tally
from transforms.batch_by_shard import MergePerShard
from transforms.batch_writer import WritePolicy
from transforms.dead_letters import WriteDeadLetters
from transforms.json_lines import WriteJsonLines
from transforms.parse_events import ParseEvents
from transforms.read_events import ReadEvents
from transforms.resolve_dead_letters import ResolveDeadLetters
from transforms.select_enabled import SelectEnabled
from transforms.to_record_ops import ToRecordOps
from transforms.write_bulk import BulkFactory
from transforms.write_records import CountRecords, WriteRecords
from transforms.write_to_salesforce import ClientFactory, WriteToSalesforce, planned_rows, read_rows

# Streaming dead letters are written in windows of this many seconds (complete files per window).
DEAD_LETTER_WINDOW_SECONDS = 60.0


class MergeRecords(beam.PTransform):
    """RecordOps into lists of merged records: one per shard, merged over the whole input (bounded;
    WriteRecords cuts those it writes through REST into batches), or batches from stateful buffers
    flushed by size and age (streaming)."""

    def __init__(
        self,
        options: BeamforceOptions,
        streaming: bool,
        clock: Callable[[], float] = time.time,
        local: bool = False,
    ):
        super().__init__()
        self._options = options
        self._streaming = streaming
        self._clock = clock
        self._local = local

    def expand(self, ops: beam.PCollection) -> beam.PCollection:
        o = self._options
        if not self._streaming:
            return ops | "MergePerShard" >> MergePerShard(o.shards or BOUNDED_SHARDS, self._local)
        from transforms.dedup import DeduplicateByMessageId
        from transforms.stale_fields import DropStaleFields
        from transforms.stateful_batching import BufferByShard

        return (
            ops
            | "DeduplicateByMessageId" >> DeduplicateByMessageId(o.dedup_ttl_seconds, clock=self._clock)
            | "DropStaleFields" >> DropStaleFields(o.dedup_ttl_seconds, clock=self._clock)
            | "BufferByShard"
            >> BufferByShard(
                o.shards or STREAMING_SHARDS,
                o.batch_size or STREAMING_BATCH_SIZE,
                o.max_buffering_seconds,
                clock=self._clock,
            )
        )


def build(
    p: beam.Pipeline,
    options: BeamforceOptions,
    credentials: Credentials | CredentialsSource,
    settings: ConnectionSettings,
    client_factory: ClientFactory = SalesforceClient,
    source: beam.PTransform | None = None,
    streaming: bool = False,
    clock: Callable[[], float] = time.time,
    rereadable: bool | None = None,
    dead_letter_sink: beam.PTransform | None = None,
    bulk_factory: BulkFactory = BulkClient,
    plan: ActionPlan | None = None,
    summary: beam.PTransform | None = None,
    run: str | None = None,
    local: bool = False,
) -> None:
    """Wires the graph: read -> parse -> gate -> map -> merge and batch -> write; dead letters -> sink.

    `source` gives Result(EventLines, dead letters); by default the files of --input. `streaming` (an
    unbounded source) switches the merging and batching stages; `clock` drives their processing-time
    timers (tests inject one). `rereadable` (default: not streaming): events can be read again where they
    came from (files), so failed writes rebuild their dead letters by reading instead of every event
    carrying its text. `dead_letter_sink` publishes dead letters (to a topic) instead of the files of
    --dead_letter_output. `bulk_factory` makes the Bulk writers' API clients (tests inject one). `plan`
    holds the actions (checked against the org) and where read records and a dry run's plan go; by
    default the built-in actions. `summary` (pipeline.summary_stage.WriteSummary) totals the stages'
    tallies into the run's summary file once the input has been handled; a streaming run never ends, so it
    has none. `run` (8 hex digits) names a streaming run's files and their temporary folder
    (transforms/json_lines.py), so that a stopped run's waiting lines can be kept. `local`: the runner runs
    every stage in this process (pipeline/runner_kind.py), so the merge and the groupings of bounded input
    hand records over by reference instead of as bytes.
    """
    if plan is None:
        plan = ActionPlan(default_actions(), WritePolicy())
    if rereadable is None:
        rereadable = not streaming
    read = p | "ReadEvents" >> (source if source is not None else ReadEvents(options.input))
    parsed = read.output | "ParseEvents" >> ParseEvents(keep_text=not rereadable)
    ops = (
        parsed.output
        | "SelectEnabled" >> SelectEnabled(options.always_enabled)
        | "ToRecordOps" >> ToRecordOps(options.address_mapping, plan.config)
    )
    merged = ops.output | "MergeRecords" >> MergeRecords(options, streaming, clock, local)
    on_api_limit = options.on_api_limit or ("wait" if streaming else "dead_letter")
    threads = options.writer_threads or DEFAULT_WRITER_THREADS
    if streaming:
        writer = WriteToSalesforce(
            credentials,
            settings,
            client_factory,
            on_api_limit=on_api_limit,
            limit_poll_seconds=settings.limit_poll_seconds,
            threads=threads,
            policy=plan.policy,
        )
    else:
        # Counted beside the merge, in the same pass over the events (see transforms/write_records.py).
        counts = (ops.output | "CountRecords" >> CountRecords()) if options.write_method == "auto" else None
        writer = WriteRecords(
            credentials,
            settings,
            client_factory,
            write_method=options.write_method,
            bulk_threshold=options.bulk_threshold,
            on_api_limit=on_api_limit,
            limit_poll_seconds=settings.limit_poll_seconds,
            threads=threads,
            record_counts=counts,
            bulk_factory=bulk_factory,
            policy=plan.policy,
            keep_written=bool(plan.read_output or plan.dry_run_output),
            batch_size=options.batch_size or BOUNDED_BATCH_SIZE,
            local=local,
        )
    written = merged | "WriteToSalesforce" >> writer
    window_seconds = DEAD_LETTER_WINDOW_SECONDS if streaming else None
    if plan.read_output:
        _ = (
            written.output
            | "RecordsRead" >> beam.FlatMap(read_rows)
            | "WriteRecordsRead" >> WriteJsonLines(plan.read_output, window_seconds, run=run)
        )
    if plan.dry_run_output:
        _ = (
            written.output
            | "PlannedWrites" >> beam.FlatMap(planned_rows)
            | "WritePlan" >> WriteJsonLines(plan.dry_run_output, single_file=True)
        )
    write_failures = written.dead_letter | "ResolveDeadLetters" >> ResolveDeadLetters(
        rereadable=rereadable, replay_actions=plan.config.replay_actions()
    )
    dead_letters = (
        read.dead_letter,
        parsed.dead_letter,
        ops.dead_letter,
        write_failures,
    ) | "FlattenDeadLetters" >> beam.Flatten()
    if dead_letter_sink is not None:
        dead_written = dead_letters | "PublishDeadLetters" >> dead_letter_sink
    else:
        dead_written = dead_letters | "WriteDeadLetters" >> WriteDeadLetters(
            options.dead_letter_output, window_seconds=window_seconds, run=run
        )
    if streaming:
        return
    # Last: every counting stage has registered its tallies by now.
    tallies = tuple(tally.collected(p)) | "FlattenTallies" >> beam.Flatten().with_output_types(tally.Tally)
    if summary is not None:
        _ = tallies | "Summary" >> summary
    commit_when_done = getattr(source, "commit_when_done", None)
    if commit_when_done is not None:
        # A source that acknowledges its events only once the run has handled them all (a bounded Kafka
        # read): after the writers (their tallies) and the dead letters' sink.
        commit_when_done([tallies] + ([dead_written] if isinstance(dead_written, beam.PCollection) else []))
