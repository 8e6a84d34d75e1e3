"""Benchmark: the streaming pipeline against a naive per-event writer, at a steady rate, and dedup's memory.

Issue 6. In one run, against the local Salesforce with `--latency-ms` (default 100) added to every call:

1. `--naive-vs-streaming`: a naive writer doing what Segment's classic destination does (per identify, a
   SOQL lookup of the Lead by Email, then a create or an update of that one Lead; per group likewise for
   the Account by AccountNumber), through simple-salesforce, one event after the other, over `--events`
   events; then the streaming pipeline (pipeline.graph.build, streaming=True, BundleBasedDirectRunner)
   fed the same events at `--rate` a second, each sub-run on an emptied org. Reported: API calls (as the
   local Salesforce counts them), calls per event, events per second, and the ratios.
   Goals: at least 50x fewer API calls, at least 20x the events per second.
2. `--rate-test`: the streaming pipeline fed `--rate` (default 200) events a second for `--seconds`
   (default 120) over `--rate-people` people and `--rate-companies` companies. Reported: calls per event
   (goal at most 0.02) and the latency from each event's scheduled arrival to the moment its record's
   write returned (the writer's WrittenRecord output), p50 and p95 (goal: p95 within
   --max-buffering-seconds + 3 s).
3. `--memory`: transforms.dedup.DeduplicateByMessageId alone, TTL `--dedup-ttl` (default 5 s) on the wall
   clock, fed `--memory-elements` (default 1,000,000) distinct messageIds on the BundleBasedDirectRunner in
   streaming mode, in a child process of its own; the process's RSS (VmRSS) as the 100,000th and the last
   element leave the dedup. Goal: the latter within 1.2x of the former. That runner keeps an entry for
   every key it has seen, also once the dedup has cleared the key's state and timer, so this runs twice
   (`--memory-runner`): with the runner as it is, and with those emptied entries dropped by the bench,
   as runners that free a cleared key do; the tables count both kinds of entry.

1 and 2 run the pipeline once per `--shards` value (e.g. `--shards 8,2`), in the same run of the bench.
With none of the three flags, all three run. How the steady rate is produced (a TestStream whose
processing-time steps wait for the wall clock) is explained in bench/streaming_helpers.py and printed
with the results. Run on demand:

    .venv/bin/python -m bench.streaming_bench [--naive-vs-streaming] [--rate-test --seconds 120] [--memory]
        [--shards 8,2]
"""

import argparse
import dataclasses
import json
import math
import os
import random
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor
from simple_salesforce import format_soql

from bench.backfill_bench import ORG_CONFIG as BACKFILL_ORG_CONFIG
from bench.backfill_bench import _group, _identify, cpu_seconds, machine
from bench.streaming_helpers import (
    FEED,
    MEMORY,
    ExpandChunk,
    PacedEvents,
    RecordWritten,
    SampleRss,
    StackSampler,
    chunk_stream,
    rss_kib,
    wall_clock_test_stream,
)
from emulator.process import EmulatorProcess, connect, start_emulator
from pipeline import direct_runner_metrics
from pipeline.graph import build
from pipeline.main import STREAMING_RUNNER, counters
from pipeline.options import DEFAULT_MAX_BUFFERING_SECONDS, STREAMING_SHARDS, BeamforceOptions
from pipeline.summary import Summary
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from schemas.dead_letter import DeadLetter
from schemas.records import RecordOp, record_key
from transforms import metrics
from transforms.account_mapping import group_to_account
from transforms.batch_writer import KEY_FIELD, TIMES_FIELD
from transforms.dedup import DeduplicateByMessageId
from transforms.lead_mapping import identify_to_lead
from transforms.parsing import parse_line

# The backfill bench's custom fields (the events' extra traits land in them), plus docs/org-setup.md's.
ORG_SETUP_FIELDS = [
    {"name": KEY_FIELD, "type": "external_id", "length": 255, "unique": True},
    {"name": TIMES_FIELD, "type": "textarea", "length": 131072},
]
ORG_CONFIG: dict[str, Any] = {
    **BACKFILL_ORG_CONFIG,
    "custom_fields": {
        sobject: [*fields, *ORG_SETUP_FIELDS]
        for sobject, fields in BACKFILL_ORG_CONFIG["custom_fields"].items()
    },
}
TICK_SECONDS = 0.05  # the feed releases the events due every this many seconds of wall-clock time
TAIL_MARGIN_SECONDS = 2.0  # after the last event the feed goes on this much past --max-buffering-seconds
CALLS_GOAL, SPEED_GOAL = 50.0, 20.0
CALLS_PER_EVENT_GOAL = 0.02
LATENCY_MARGIN_SECONDS = 3.0
MEMORY_GOAL = 1.2
FEED_NOTE = (
    "The streaming pipeline's source is a TestStream whose processing-time steps wait for the wall clock "
    f"(bench/streaming_helpers.py): every {TICK_SECONDS * 1000:.0f} ms it releases the events due by then, "
    "so they enter at the given rate in real time, and processing-time timers fire by the wall clock. "
    "When the runner falls behind, the next step hands it everything already due (at most --catch-up "
    "events), as a source polling its backlog does. "
    "PeriodicImpulse does not run on the BundleBasedDirectRunner of apache-beam 2.77. Latency runs from "
    "each event's scheduled arrival (feed start + i / rate) to the return of the write that carried it."
)


@dataclasses.dataclass(frozen=True)
class EventSet:
    lines: list[str]
    keys: list[str]  # each event's record key (sObject|match value)
    times: list[float]  # each event's event time (epoch seconds)
    identifies: int
    groups: int

    @property
    def records(self) -> int:
        return len(set(self.keys))


def make_events(n: int, people: int, companies: int, group_share: float, seed: int, rate: float) -> EventSet:
    """`n` identify and group events (the backfill bench's shapes: custom traits, addresses), people and
    companies drawn at random, event times `1 / rate` apart ending about now."""
    rng = random.Random(seed)
    start = time.time() - n / rate
    seen: dict[int, int] = {}
    lines, keys, times = [], [], []
    identifies = groups = 0
    for i in range(n):
        t = start + (i + 1) / rate
        if rng.random() < group_share:
            event = _group(rng, rng.randrange(companies), people, companies, t)
            keys.append(record_key("Account", event["groupId"]))
            groups += 1
        else:
            p = rng.randrange(people)
            seen[p] = seen.get(p, 0) + 1
            event = _identify(rng, p, companies, seen[p] - 1, t)
            keys.append(record_key("Lead", event["traits"]["email"]))
            identifies += 1
        lines.append(json.dumps(event, separators=(",", ":")))
        times.append(t)
    return EventSet(lines, keys, times, identifies, groups)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _fmt(value: float | None, spec: str = ",.2f") -> str:
    return "-" if value is None else format(value, spec)


def _verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def _kinds(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(by_kind.items(), key=lambda kv: -kv[1]) if n)


def fresh_org(emu: EmulatorProcess, latency_ms: float) -> None:
    """No records, the latency set (a reset puts the faults back to the config), calls counted from 0."""
    emu.admin("POST", "reset")
    emu.admin("POST", "faults", json={"latency_ms": latency_ms})
    emu.admin("POST", "calls/reset")


@dataclasses.dataclass(frozen=True)
class Profile:
    """Where a run's wall time went: CPU of the runner's process and of the local Salesforce, and the
    time batches spent being written (the writer's write_batch_latency_ms, summed), flushes by reason."""

    wall_s: float
    runner_cpu_s: float
    emulator_cpu_s: float
    batches: int
    writing_s: float
    flushes: dict[str, int]
    runner_thread: dict[str, float]  # share of stack samples per state (--sample-stacks), else empty

    def line(self) -> str:
        flushes = ", ".join(f"{n} by {reason}" for reason, n in self.flushes.items() if n)
        thread = "; ".join(f"{share:.0%} {state}" for state, share in self.runner_thread.items())
        return (
            f"- Where the time went ({self.wall_s:,.0f} s from p.run() to its end): the runner's process "
            f"used {self.runner_cpu_s:,.0f} s of CPU ({self.runner_cpu_s / self.wall_s:.0%} of one core), "
            f"the local Salesforce {self.emulator_cpu_s:,.0f} s ({self.emulator_cpu_s / self.wall_s:.0%}); "
            f"{self.batches:,} batches were being written for {self.writing_s:,.0f} s in all "
            f"({self.writing_s / self.wall_s:.0%} of the run); buffers flushed {flushes}."
            + (f" The runner's one executor thread (stack samples): {thread}." if thread else "")
        )


def profile_of(
    result, wall_s: float, runner_cpu_s: float, emulator_cpu_s: float, runner_thread: dict[str, float]
) -> Profile:
    query = result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE))
    batches, writing_ms = 0, 0
    for d in query["distributions"]:
        if d.key.metric.name == metrics.WRITE_BATCH_LATENCY_MS:
            data = d.committed if d.committed is not None else d.attempted
            batches += data.count
            writing_ms += data.sum
    flushes = {reason: 0 for reason in metrics.BUFFER_FLUSH_REASONS}
    for c in query["counters"]:
        for reason in flushes:
            if c.key.metric.name == metrics.buffer_flushed(reason):
                flushes[reason] += c.committed if c.committed is not None else c.attempted
    return Profile(wall_s, runner_cpu_s, emulator_cpu_s, batches, writing_ms / 1000, flushes, runner_thread)


# -- 1. the naive writer ------------------------------------------------------------------------------


@dataclasses.dataclass
class NaiveRun:
    events: int
    wall_s: float
    calls: int
    by_kind: dict[str, int]
    failed: int
    skipped: int  # events the mapping refuses (none in these events)

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s


def _naive_write(sf, op: RecordOp) -> None:
    """Segment's classic destination: look the record up by its match field, then create or update it."""
    soql = format_soql(f"SELECT Id FROM {op.sobject} WHERE {op.match_field} = {{}} LIMIT 1", op.match_value)
    found = sf.query(soql)["records"]
    api = getattr(sf, op.sobject)
    if found:
        api.update(found[0]["Id"], op.fields)
    else:
        api.create({**op.create_defaults, **op.fields})


def run_naive(emu: EmulatorProcess, events: EventSet, latency_ms: float, threads: int) -> NaiveRun:
    ops: list[RecordOp] = []
    skipped = 0
    for seq, line in enumerate(events.lines, 1):
        event = parse_line(line, "naive", seq)
        op = identify_to_lead(event) if event.type == "identify" else group_to_account(event)
        if isinstance(op, DeadLetter):
            skipped += 1
        else:
            ops.append(op)
    fresh_org(emu, latency_ms)
    local = threading.local()
    failed = [0]
    lock = threading.Lock()

    def write(op: RecordOp) -> None:
        sf = getattr(local, "sf", None)
        if sf is None:
            sf = local.sf = connect(emu.info)  # one login per thread, as a long-lived destination does
        try:
            _naive_write(sf, op)
        except Exception:  # counted and shown: the comparison is only fair if the naive writes succeed
            with lock:
                failed[0] += 1

    started = time.perf_counter()
    if threads == 1:
        for op in ops:
            write(op)
    else:
        # Records are split over threads by key, so that no two threads write one record at once.
        lanes: list[list[RecordOp]] = [[] for _ in range(threads)]
        for op in ops:
            lanes[hash(op.key) % threads].append(op)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda lane: [write(op) for op in lane], lanes))
    wall = time.perf_counter() - started
    calls = emu.admin("GET", "calls")
    return NaiveRun(len(events.lines), wall, calls["total"], calls["by_kind"], failed[0], skipped)


# -- 1 and 2. the streaming pipeline ------------------------------------------------------------------


@dataclasses.dataclass
class StreamRun:
    shards: int
    rate: float
    events: int
    records: int
    calls: int
    by_kind: dict[str, int]
    wall_s: float  # p.run() to the end, start-up and the tail included
    span_s: float  # first event's scheduled arrival to the last write's return
    latency: list[float]
    source_lag: list[float]
    written_events: int
    unmatched: int
    summary: Summary
    leads: int
    accounts: int
    profile: Profile

    @property
    def events_per_s(self) -> float:
        return self.events / self.span_s if self.span_s > 0 else float("nan")

    @property
    def calls_per_event(self) -> float:
        return self.calls / self.events

    @property
    def calls_but_logins(self) -> int:
        return self.calls - self.by_kind.get("login", 0)


def _written_records(p: beam.Pipeline) -> beam.PCollection:
    """The writer's main output (WrittenRecords): build() wires it but does not return it."""
    found: list = []

    class _Find(PipelineVisitor):
        def enter_composite_transform(self, node) -> None:
            if node.full_label == "WriteToSalesforce":
                found.append(node)

    p.visit(_Find())
    if len(found) != 1 or "output" not in found[0].outputs:
        raise RuntimeError(
            "the graph has no WriteToSalesforce step with an output: pipeline/graph.py changed"
        )
    return found[0].outputs["output"]


def run_streaming(
    emu: EmulatorProcess,
    events: EventSet,
    rate: float,
    args: argparse.Namespace,
    tmp: Path,
    label: str,
    shards: int,
) -> StreamRun:
    fresh_org(emu, args.latency_ms)
    FEED.reset(events.keys, rate)
    info = emu.info
    prefix = str(tmp / label / "dead_letters")
    flags = [
        "--streaming",
        "--dead_letter_output",
        prefix,
        "--max_buffering_seconds",
        str(args.max_buffering_seconds),
        "--shards",
        str(shards),
    ]
    if args.batch_size:
        flags += ["--batch_size", str(args.batch_size)]
    options = PipelineOptions(flags)
    settings = ConnectionSettings(login_url=info["login_url"], ca_bundle=info["ca_bundle"])
    credentials = Credentials(info["username"], info["password"], info["security_token"])
    p = beam.Pipeline(runner=STREAMING_RUNNER, options=options)
    tail = args.max_buffering_seconds + TAIL_MARGIN_SECONDS
    source = PacedEvents(events.lines, events.times, rate, TICK_SECONDS, tail_seconds=tail)
    build(p, options.view_as(BeamforceOptions), credentials, settings, source=source, streaming=True)
    _ = _written_records(p) | "RecordWritten" >> beam.ParDo(RecordWritten())
    print(
        f"- {label}, --shards {shards}: {len(events.lines):,} events at {rate:g}/s "
        f"(about {len(events.lines) / rate + tail:.0f} s) ...",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    cpu, emulator_cpu = cpu_seconds(), cpu_seconds(emu.proc.pid)
    sampler = StackSampler() if args.sample_stacks else None
    if sampler is not None:
        sampler.start()
    with wall_clock_test_stream(args.catch_up), direct_runner_metrics.counting_every_bundle():
        result = p.run()
        result.wait_until_finish()
    wall = time.perf_counter() - started
    cpu, emulator_cpu = cpu_seconds() - cpu, cpu_seconds(emu.proc.pid) - emulator_cpu
    runner_thread = sampler.stop() if sampler is not None else {}
    totals, string_sets = counters(result)
    summary = Summary.from_metrics(totals, string_sets, dead_letter_output=prefix)
    calls = emu.admin("GET", "calls")
    leads = emu.admin("GET", "records/Lead")["totalSize"]
    accounts = emu.admin("GET", "records/Account")["totalSize"]
    origin = FEED.origin or 0.0
    span = (FEED.last_written or origin) - (origin + 1 / rate)
    return StreamRun(
        shards,
        rate,
        len(events.lines),
        events.records,
        calls["total"],
        calls["by_kind"],
        wall,
        span,
        list(FEED.latency),
        list(FEED.source_lag),
        FEED.written_events,
        FEED.unmatched_writes,
        summary,
        leads,
        accounts,
        profile_of(result, wall, cpu, emulator_cpu, runner_thread),
    )


def _check(run: StreamRun, events: EventSet) -> str:
    """What a correct run shows: every event written, the summary balanced, one record per key."""
    problems = []
    if run.written_events != run.events:
        problems.append(f"{run.events - run.written_events:,} events not written")
    if run.unmatched:
        problems.append(f"{run.unmatched} writes without an arrival")
    if not run.summary.balanced:
        problems.append("summary does not add up")
    if run.summary.events_dead_lettered:
        problems.append(f"{run.summary.events_dead_lettered} dead letters")
    leads = len({k for k in events.keys if k.startswith("Lead|")})
    accounts = events.records - leads
    if (run.leads, run.accounts) != (leads, accounts):
        problems.append(f"org holds {run.leads} Leads, {run.accounts} Accounts; expected {leads}, {accounts}")
    return "; ".join(problems) or "ok"


def _stream_row(run: StreamRun, events: EventSet) -> str:
    p50, p95 = percentile(run.latency, 0.5), percentile(run.latency, 0.95)
    return (
        f"| streaming pipeline, --shards {run.shards}, fed at {run.rate:g}/s | {run.calls:,} "
        f"({_kinds(run.by_kind)}) | {run.calls_but_logins:,} | {run.calls_per_event:.4f} | {run.span_s:,.1f} "
        f"| {run.events_per_s:,.1f} | {_fmt(p50)} / {_fmt(p95)} | {_check(run, events)} |"
    )


def report_naive_vs_streaming(
    naive: NaiveRun, runs: Sequence[StreamRun], events: EventSet, args
) -> list[str]:
    naive_logins = naive.by_kind.get("login", 0)
    lines = [
        f"### 1. Naive writer vs the streaming pipeline: {naive.events:,} events "
        f"({events.identifies:,} identify, {events.groups:,} group) over {events.records:,} records, "
        f"{args.latency_ms:g} ms per call",
        "",
        "| writer | API calls | without logins | calls per event | wall time (s) | events per second "
        "| latency p50 / p95 (s) | check |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| naive: lookup + create/update per event, {args.naive_threads} thread(s) "
        f"| {naive.calls:,} ({_kinds(naive.by_kind)}) | {naive.calls - naive_logins:,} "
        f"| {naive.calls / naive.events:.3f} | {naive.wall_s:,.1f} | {naive.events_per_s:,.1f} | - | "
        + ("ok" if not naive.failed else f"{naive.failed} writes failed")
        + (f", {naive.skipped} unmappable" if naive.skipped else "")
        + " |",
        *(_stream_row(run, events) for run in runs),
        "",
    ]
    for run in runs:
        calls, speed = naive.calls / max(1, run.calls), run.events_per_s / naive.events_per_s
        lines += [
            f"- --shards {run.shards}: API calls naive / pipeline = **{calls:,.1f}x** "
            f"({(naive.calls - naive_logins) / max(1, run.calls_but_logins):,.1f}x without logins; goal at "
            f"least {CALLS_GOAL:g}x): {_verdict(calls >= CALLS_GOAL)}; events per second pipeline / naive = "
            f"**{speed:,.1f}x** (goal at least {SPEED_GOAL:g}x): {_verdict(speed >= SPEED_GOAL)}. The "
            f"pipeline's whole run (runner start-up and the feed's tail included) took {run.wall_s:,.1f} s.",
            "  " + run.profile.line(),
        ]
    lines.append(
        "- The naive writer's wall time runs from its first call to its last (its login included). The "
        "pipeline's runs from the first event's scheduled arrival to the return of the last write, so it "
        f"includes the last buffers' wait (--max_buffering_seconds {args.max_buffering_seconds:g}) and "
        "cannot beat the feed rate: its events per second is a lower bound of what it sustains (raise "
        "--rate to probe further). Runner start-up is outside both."
    )
    return lines


def report_rate(runs: Sequence[StreamRun], events: EventSet, args) -> list[str]:
    goal = args.max_buffering_seconds + LATENCY_MARGIN_SECONDS
    lines = [
        f"### 2. Steady rate: {args.rate:g} events/s for {args.seconds:g} s ({len(events.lines):,} events: "
        f"{events.identifies:,} identify over {args.rate_people:,} people, {events.groups:,} group over "
        f"{args.rate_companies:,} companies; {events.records:,} distinct records), "
        f"{args.latency_ms:g} ms per call",
        "",
        "| --shards | API calls | calls per event (without logins) | latency p50 (s) | p95 (s) "
        f"| max (s) | written within {goal:g} s | feed behind schedule p95 / max (s) | events/s | run (s) "
        "| check |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    verdicts = []
    for run in runs:
        lat = run.latency
        within = sum(1 for x in lat if x <= goal) / len(lat) if lat else 0.0
        p50, p95, pmax = percentile(lat, 0.5), percentile(lat, 0.95), max(lat, default=None)
        lag95, lagmax = percentile(run.source_lag, 0.95), max(run.source_lag, default=None)
        lines.append(
            f"| {run.shards} | {run.calls:,} ({_kinds(run.by_kind)}) "
            f"| {run.calls_per_event:.4f} ({run.calls_but_logins / run.events:.4f}) | {_fmt(p50)} "
            f"| {_fmt(p95)} | {_fmt(pmax)} | {within:.1%} | {_fmt(lag95)} / {_fmt(lagmax)} "
            f"| {run.events_per_s:,.1f} | {run.wall_s:,.0f} | {_check(run, events)} |"
        )
        verdicts += [
            f"- --shards {run.shards}: calls per event {run.calls_per_event:.4f} (goal at most "
            f"{CALLS_PER_EVENT_GOAL:g}): {_verdict(run.calls_per_event <= CALLS_PER_EVENT_GOAL)}; p95 "
            f"latency {_fmt(p95)} s (goal at most --max_buffering_seconds {args.max_buffering_seconds:g} + "
            f"{LATENCY_MARGIN_SECONDS:g} = {goal:g} s): {_verdict(p95 is not None and p95 <= goal)}.",
            "  " + run.profile.line(),
        ]
    return [
        *lines,
        "",
        *verdicts,
        "- 'feed behind schedule' is how late the runner let the feed emit events (0 when it keeps up); "
        "it is part of the latency. 'events/s' runs from the first scheduled arrival to the last write.",
    ]


# -- 3. memory -----------------------------------------------------------------------------------------


DEDUP_STEP = "Dedup/DropRepeats"
MEMORY_VARIANTS = {
    "keep": "as the BundleBasedDirectRunner is: it keeps a per-key entry for every messageId ever seen",
    "drop": f"the runner's emptied per-key entries of {DEDUP_STEP} dropped by the bench every chunk, as "
    "runners that free a key once its state and timers are cleared do (Dataflow, Flink)",
}


def run_memory_child(args: argparse.Namespace) -> dict[str, Any]:
    """In its own process: dedup alone over distinct messageIds; RSS at the thresholds (as JSON)."""
    size = args.memory_chunk
    chunks = math.ceil(args.memory_elements / size)
    marks = sorted({args.memory_first, chunks * size, *range(100_000, chunks * size + 1, 100_000)})
    MEMORY.reset(marks)
    if args.memory_runner == "drop":
        MEMORY.drop_label, MEMORY.drop_every = DEDUP_STEP, size
    chunk_seconds = round(size / args.memory_rate, 3) if args.memory_rate else 0.0
    p = beam.Pipeline(runner=STREAMING_RUNNER, options=PipelineOptions(["--streaming"]))
    _ = (
        p
        | "Chunks" >> chunk_stream(chunks, chunk_seconds).with_output_types(int)
        | "Expand" >> beam.ParDo(ExpandChunk(size)).with_output_types(RecordOp)
        | "Dedup" >> DeduplicateByMessageId(args.dedup_ttl, clock=time.time)
        | "SampleRss" >> beam.ParDo(SampleRss())
    )
    before = rss_kib()
    started = time.time()
    with wall_clock_test_stream():
        result = p.run()
        # The DirectRunner's own per-key records, for the samples (its executor runs on one thread).
        MEMORY.keyed_states = result._evaluation_context._transform_keyed_states
        result.wait_until_finish()
    return {
        "variant": args.memory_runner,
        "rss_before_kib": before,
        "started": started,
        "ended": time.time(),
        "samples": MEMORY.samples,
        "elements": MEMORY.count,
        "dropped": MEMORY.dropped,
    }


def run_memory(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.streaming_bench",
        "--memory-child",
        *("--memory-runner", variant),
        *("--memory-elements", str(args.memory_elements)),
        *("--memory-first", str(args.memory_first)),
        *("--memory-chunk", str(args.memory_chunk)),
        *("--memory-rate", str(args.memory_rate)),
        *("--dedup-ttl", str(args.dedup_ttl)),
    ]
    print(
        f"- memory ({variant}): {args.memory_elements:,} distinct messageIds through the dedup ...",
        file=sys.stderr,
        flush=True,
    )
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"the memory run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report_memory(results: Sequence[dict[str, Any]], args) -> list[str]:
    feed = (
        f"{args.memory_rate:,}/s in chunks of {args.memory_chunk:,}"
        if args.memory_rate
        else f"as fast as the runner takes them, in chunks of {args.memory_chunk:,}"
    )
    lines = [
        f"### 3. Memory: DeduplicateByMessageId alone, TTL {args.dedup_ttl:g} s (wall clock), "
        f"{args.memory_elements:,} distinct messageIds fed {feed}, BundleBasedDirectRunner (streaming), "
        "each variant in a process of its own",
    ]
    for result in results:
        variant, samples, started = result["variant"], result["samples"], result["started"]
        lines += [
            "",
            f"Runner {variant}: {MEMORY_VARIANTS[variant]}"
            + (f" ({result['dropped']:,} dropped)." if variant == "drop" else "."),
            "",
            "| elements out of the dedup | RSS (MiB) | seconds since start | elements/s so far "
            "| the runner's per-key entries | of which hold state or timers |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| 0 (pipeline built, before run) | {result['rss_before_kib'] / 1024:,.0f} | 0 | - | - | - |",
        ]
        for count, kib, at, entries, live in samples:
            elapsed = at - started
            lines.append(
                f"| {count:,} | {kib / 1024:,.0f} | {elapsed:,.1f} | {count / elapsed:,.0f} | {entries:,} "
                f"| {live:,} |"
            )
        by_count = {c: kib for c, kib, *_ in samples}
        first, last = by_count.get(args.memory_first), by_count.get(max(by_count, default=0))
        if first and last:
            ratio = last / first
            lines += [
                "",
                f"- runner {variant}: RSS after {max(by_count):,} / after {args.memory_first:,}: "
                f"**{ratio:.2f}x** (goal at most {MEMORY_GOAL:g}x): " + _verdict(ratio <= MEMORY_GOAL),
            ]
    lines.append(
        "- 'of which hold state or timers' is the dedup's own state (a messageId within its TTL); the "
        "other entries are the runner's bookkeeping for keys whose state the dedup has cleared. The "
        "runner's watermark monitor also scans every entry on each pass, which is why 'elements/s' falls "
        "as entries pile up."
    )
    return lines


def _shard_list(text: str) -> list[int]:
    try:
        shards = [int(part) for part in text.split(",")]
    except ValueError:
        shards = []
    if not shards or min(shards) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers of at least 1, comma-separated")
    return shards


# -- main ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    which = parser.add_argument_group("what to measure (default: all three)")
    which.add_argument(
        "--naive-vs-streaming", action="store_true", help="1: the naive writer vs the pipeline"
    )
    which.add_argument("--rate-test", action="store_true", help="2: the pipeline at --rate for --seconds")
    which.add_argument("--memory", action="store_true", help="3: the dedup's RSS over distinct messageIds")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=100.0,
        help="latency the local Salesforce adds to every call (default 100)",
    )
    parser.add_argument(
        "--rate", type=float, default=200.0, help="events a second fed to the pipeline (default 200)"
    )
    parser.add_argument("--events", type=int, default=2_000, help="1: events (default 2000)")
    parser.add_argument("--people", type=int, default=400, help="1: distinct people (default 400)")
    parser.add_argument("--companies", type=int, default=40, help="1: distinct companies (default 40)")
    parser.add_argument(
        "--naive-threads",
        type=int,
        default=1,
        help="1: the naive writer's threads (default 1, one event after the other)",
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="2: seconds of feed (default 120)")
    parser.add_argument(
        "--rate-people", type=int, default=50_000, help="2: distinct people drawn from (default 50000)"
    )
    parser.add_argument(
        "--rate-companies", type=int, default=2_000, help="2: distinct companies drawn from (default 2000)"
    )
    parser.add_argument("--group-share", type=float, default=0.1, help="share of group events (default 0.1)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--max-buffering-seconds",
        type=float,
        default=DEFAULT_MAX_BUFFERING_SECONDS,
        help=f"the pipeline's --max_buffering_seconds (default {DEFAULT_MAX_BUFFERING_SECONDS:g})",
    )
    parser.add_argument(
        "--shards",
        type=_shard_list,
        default=[STREAMING_SHARDS],
        help="1 and 2: the pipeline's --shards; several, comma-separated (e.g. 8,2), run the pipeline once "
        f"for each, in one run of the bench (default {STREAMING_SHARDS}, the pipeline's streaming default)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="the pipeline's --batch_size (default: its own)"
    )
    parser.add_argument(
        "--catch-up",
        type=int,
        default=1_000,
        help="1 and 2: when the runner has fallen behind the schedule, the feed hands it everything "
        "already due in one step, at most this many events, as a source polling a backlog does; 0: one "
        f"{TICK_SECONDS * 1000:.0f} ms tick a step however late (default 1000)",
    )
    parser.add_argument(
        "--sample-stacks",
        action="store_true",
        help="1 and 2: sample the runner's executor thread every 5 ms and say what it was doing (waiting "
        "for writes, the feed, the watermark monitor, other work); costs a little CPU",
    )
    parser.add_argument(
        "--memory-elements", type=int, default=1_000_000, help="3: distinct messageIds (default 1000000)"
    )
    parser.add_argument(
        "--memory-first",
        type=int,
        default=100_000,
        help="3: the first RSS sample, in elements (default 100000)",
    )
    parser.add_argument(
        "--memory-chunk", type=int, default=10_000, help="3: messageIds per feed step (default 10000)"
    )
    parser.add_argument(
        "--memory-rate",
        type=int,
        default=0,
        help="3: messageIds a second (default 0: as fast as the runner takes them)",
    )
    parser.add_argument(
        "--dedup-ttl", type=float, default=5.0, help="3: the dedup's TTL in seconds (default 5)"
    )
    parser.add_argument(
        "--memory-runner",
        choices=[*MEMORY_VARIANTS, "both"],
        default="both",
        help="3: keep: the runner as it is; drop: the runner's per-key entries the dedup has emptied "
        "dropped, as production runners free them; both (default): one run of each",
    )
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(run_memory_child(args)))
        return
    if not (args.naive_vs_streaming or args.rate_test or args.memory):
        args.naive_vs_streaming = args.rate_test = args.memory = True
    if args.rate <= 0 or args.seconds <= 0 or args.events < 1 or args.naive_threads < 1:
        parser.error("--rate and --seconds must be above 0, --events and --naive-threads at least 1")

    sections: list[list[str]] = []
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    load = os.getloadavg()[0]
    if args.naive_vs_streaming or args.rate_test:
        with tempfile.TemporaryDirectory(prefix="beamforce-streaming-") as tmp_dir:
            tmp = Path(tmp_dir)
            config = tmp / "org.yaml"
            config.write_text(json.dumps(ORG_CONFIG))  # JSON is YAML
            with start_emulator(tmp / "org", config) as emu:
                if args.naive_vs_streaming:
                    events = make_events(
                        args.events, args.people, args.companies, args.group_share, args.seed, args.rate
                    )
                    print(f"- naive writer: {args.events:,} events ...", file=sys.stderr, flush=True)
                    naive = run_naive(emu, events, args.latency_ms, args.naive_threads)
                    streams = [
                        run_streaming(emu, events, args.rate, args, tmp, f"streaming-{shards}", shards)
                        for shards in args.shards
                    ]
                    sections.append(report_naive_vs_streaming(naive, streams, events, args))
                if args.rate_test:
                    n = round(args.rate * args.seconds)
                    events = make_events(
                        n, args.rate_people, args.rate_companies, args.group_share, args.seed + 1, args.rate
                    )
                    runs = [
                        run_streaming(emu, events, args.rate, args, tmp, f"rate-{shards}", shards)
                        for shards in args.shards
                    ]
                    sections.append(report_rate(runs, events, args))
    if args.memory:
        variants = list(MEMORY_VARIANTS) if args.memory_runner == "both" else [args.memory_runner]
        sections.append(report_memory([run_memory(args, v) for v in variants], args))

    print()
    print(f"Command: .venv/bin/python -m bench.streaming_bench {shlex.join(sys.argv[1:])}")
    print(f"Machine: {machine()}")
    print(f"Date: {started}; 1-minute load average before: {load:.1f}.")
    if args.naive_vs_streaming or args.rate_test:
        print(
            f"Pipeline: --max_buffering_seconds {args.max_buffering_seconds:g}, --shards "
            f"{','.join(map(str, args.shards))}, --batch_size {args.batch_size or 'default'}; feed "
            f"--catch-up {args.catch_up}; org with docs/org-setup.md's fields."
        )
        print()
        print(FEED_NOTE)
    for section in sections:
        print()
        print("\n".join(section))


if __name__ == "__main__":
    main()
