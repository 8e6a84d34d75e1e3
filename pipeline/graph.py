"""The pipeline's graph: events -> Salesforce, with every stage's dead letters into one sink.

One graph for both modes. Bounded input merges each record over the whole input (the fewest API
calls); unbounded input swaps only the merging and batching stages for stateful ones (dedup by
messageId, late-data state, buffers flushed by size and age). Parsing, the gate, mapping, the writer and
the dead-letter schema are the same.
"""

import time
from collections.abc import Callable

import apache_beam as beam

from pipeline.options import (
    BOUNDED_BATCH_SIZE,
    DEFAULT_WRITER_THREADS,
    STREAMING_BATCH_SIZE,
    BeamforceOptions,
)
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials, CredentialsSource
from transforms.batch_by_shard import MergeIntoBatches
from transforms.dead_letters import WriteDeadLetters
from transforms.parse_events import ParseEvents
from transforms.read_events import ReadEvents
from transforms.resolve_dead_letters import ResolveDeadLetters
from transforms.select_enabled import SelectEnabled
from transforms.to_record_ops import ToRecordOps
from transforms.write_to_salesforce import ClientFactory, WriteToSalesforce

# Streaming dead letters are written in windows of this many seconds (complete files per window).
DEAD_LETTER_WINDOW_SECONDS = 60.0


class MergeAndBatch(beam.PTransform):
    """RecordOps into batches of merged records: over the whole input (bounded) or in stateful buffers
    flushed by size and age (streaming)."""

    def __init__(self, options: BeamforceOptions, streaming: bool, clock: Callable[[], float] = time.time):
        super().__init__()
        self._options = options
        self._streaming = streaming
        self._clock = clock

    def expand(self, ops: beam.PCollection) -> beam.PCollection:
        o = self._options
        if not self._streaming:
            return ops | "MergeIntoBatches" >> MergeIntoBatches(o.shards, o.batch_size or BOUNDED_BATCH_SIZE)
        from transforms.dedup import DeduplicateByMessageId
        from transforms.stale_fields import DropStaleFields
        from transforms.stateful_batching import BufferByShard

        return (
            ops
            | "DeduplicateByMessageId" >> DeduplicateByMessageId(o.dedup_ttl_seconds, clock=self._clock)
            | "DropStaleFields" >> DropStaleFields(o.dedup_ttl_seconds, clock=self._clock)
            | "BufferByShard"
            >> BufferByShard(
                o.shards, o.batch_size or STREAMING_BATCH_SIZE, o.max_buffering_seconds, clock=self._clock
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
) -> None:
    """Wires the graph: read -> parse -> gate -> map -> merge and batch -> write; dead letters -> sink.

    `source` gives Result(EventLines, dead letters); by default the files of --input. `streaming` (an
    unbounded source) switches the merging and batching stages; `clock` drives their processing-time
    timers (tests inject one). `rereadable` (default: not streaming): events can be read again where they
    came from (files), so failed writes rebuild their dead letters by reading instead of every event
    carrying its text. `dead_letter_sink` publishes dead letters (to a topic) instead of the files of
    --dead_letter_output.
    """
    if rereadable is None:
        rereadable = not streaming
    read = p | "ReadEvents" >> (source if source is not None else ReadEvents(options.input))
    parsed = read.output | "ParseEvents" >> ParseEvents(keep_text=not rereadable)
    ops = (
        parsed.output
        | "SelectEnabled" >> SelectEnabled(options.always_enabled)
        | "ToRecordOps" >> ToRecordOps(options.address_mapping)
    )
    written = (
        ops.output
        | "MergeAndBatch" >> MergeAndBatch(options, streaming, clock)
        | "WriteToSalesforce"
        >> WriteToSalesforce(
            credentials,
            settings,
            client_factory,
            on_api_limit=options.on_api_limit or ("wait" if streaming else "dead_letter"),
            limit_poll_seconds=settings.limit_poll_seconds,
            threads=options.writer_threads or DEFAULT_WRITER_THREADS,
        )
    )
    write_failures = written.dead_letter | "ResolveDeadLetters" >> ResolveDeadLetters(rereadable=rereadable)
    dead_letters = (
        read.dead_letter,
        parsed.dead_letter,
        ops.dead_letter,
        write_failures,
    ) | "FlattenDeadLetters" >> beam.Flatten()
    if dead_letter_sink is not None:
        _ = dead_letters | "PublishDeadLetters" >> dead_letter_sink
    else:
        _ = dead_letters | "WriteDeadLetters" >> WriteDeadLetters(
            options.dead_letter_output, window_seconds=DEAD_LETTER_WINDOW_SECONDS if streaming else None
        )
