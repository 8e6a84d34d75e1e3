"""Benchmark: sustained events per second from Pub/Sub and Kafka into the local Salesforce (issue 7).

For each broker, on this machine: `--events` (Pub/Sub) or `--kafka-events` events (the streaming bench's
shapes: identifies over `--people` people, groups over `--companies` companies) are published to a real
broker first (a backlog,
each with its messageId attribute or header and its user as key), then the pipeline runs as a user runs
it, `python -m pipeline` (pipeline.main.run) in a process of its own, into the local Salesforce with
`--latency-ms` (default 100) added to every call, until every event is accounted for:

- Pub/Sub: Google's Pub/Sub emulator, `--input_subscription`, streaming on the BundleBasedDirectRunner
  (stateful buffers flushed by size and by age, `--max_buffering_seconds`); the bench stops it with
  Ctrl-C once its progress lines account for every event, as the streaming demo does.
- Kafka: a noida-db broker, `--kafka_topic` with `--kafka_max_idle_seconds` (the local runners refuse
  streaming Kafka, so this is the catch-up run: it reads until no record came for that long, then merges
  and writes in batch mode on the FnApiRunner, and ends by itself), once per `--kafka-write-method`
  (default auto, which goes through Bulk API 2.0 above --bulk_threshold records, and rest).

Reported per broker: API calls (as the local Salesforce counts them) and calls per event, the phases'
times seen from outside (the pipeline's progress lines and the org's call counter, both polled), and the
sustained events per second: events / (last write - first event read) for Pub/Sub; for Kafka, whose
catch-up run reports nothing until it ends, events / (last write - the pipeline's login - the idle wait).
Start-up (interpreter, imports, graph) is outside both; it is reported beside them.

    .venv/bin/python -m bench.broker_bench [--pubsub] [--kafka] [--events 3000] [--kafka-events 30000]
"""

import argparse
import atexit
import dataclasses
import json
import os
import runpy
import shlex
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.backfill_bench import cpu_seconds, machine
from bench.streaming_bench import ORG_CONFIG, EventSet, fresh_org, make_events
from bench.streaming_helpers import StackSampler
from emulator.process import EmulatorProcess, start_emulator
from examples import brokers
from examples.stream_demo import PipelineProcess, Progress, message_of, wait_until

PROJECT = "beamforce-bench"
TOPIC = f"projects/{PROJECT}/topics/events"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/beamforce"
KAFKA_TOPIC = "events"
KAFKA_PARTITIONS = 3
POLL_SECONDS = 0.2  # how often the bench reads the org's call counter and the pipeline's progress
PUBLISH_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0  # for the pipeline to stop and write its summary after Ctrl-C
ROOT = Path(__file__).resolve().parent.parent
SAMPLED = "--sampled-pipeline"  # first argument of this module run as a pipeline with a stack sampler


@dataclasses.dataclass
class Timeline:
    """What the bench saw from outside while the pipeline ran, in seconds since the pipeline started."""

    first_call: float | None = None  # the pipeline's login (its first call)
    first_write: float | None = None  # the first call that is not a login, describe or limits read
    last_call: float | None = None
    first_read: float | None = None  # first progress line with an event read (Pub/Sub)
    all_read: float | None = None  # progress: every event read
    all_accounted: float | None = None  # progress: every event written, filtered, deduplicated or lettered
    ended: float | None = None  # the pipeline's exit (Kafka) or every event accounted for (Pub/Sub)
    reads: list[tuple[float, int]] = dataclasses.field(default_factory=list)  # (time, events read)


@dataclasses.dataclass
class BrokerRun:
    broker: str
    how: str
    events: int
    records: int
    published_s: float
    calls: dict[str, Any]
    timeline: Timeline
    summary: dict[str, Any] | None
    exit_code: int | None
    leads: int
    accounts: int
    cpu: dict[str, float]  # CPU seconds of the pipeline, the local Salesforce and the broker during the run
    idle_s: float = 0.0
    runner_thread: dict[str, float] = dataclasses.field(default_factory=dict)  # --sample-stacks
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def span_s(self) -> float | None:
        """The sustained period: first event read (Pub/Sub) or login (Kafka) to the last write, without
        the catch-up run's idle wait."""
        t = self.timeline
        start = t.first_read if self.broker == "Pub/Sub" else t.first_call
        if start is None or t.last_call is None:
            return None
        return t.last_call - start - self.idle_s

    @property
    def events_per_s(self) -> float | None:
        span = self.span_s
        return self.events / span if span else None

    @property
    def read_rate(self) -> float | None:
        """Events read a second between 10% and 90% of the events (the source alone), from the progress
        lines; None when they were not seen (Kafka's catch-up run reports at its end only)."""
        reads = self.timeline.reads
        low = next(((t, n) for t, n in reads if n >= 0.1 * self.events), None)
        high = next(((t, n) for t, n in reads if n >= 0.9 * self.events), None)
        if low is None or high is None or high[0] <= low[0]:
            return None
        return (high[1] - low[1]) / (high[0] - low[0])

    @property
    def calls_but_logins(self) -> int:
        return self.calls["total"] - self.calls["by_kind"].get("login", 0)


class Watcher(threading.Thread):
    """Polls the org's call counter, the pipeline's progress and its CPU time every POLL_SECONDS into a
    Timeline."""

    def __init__(self, emu: EmulatorProcess, pipeline: "PipelineRun", events: int) -> None:
        super().__init__(name="bench-watcher", daemon=True)
        self._emu, self._pipeline, self._events = emu, pipeline, events
        self._done = threading.Event()
        self.timeline = Timeline()
        self.error: BaseException | None = None

    def run(self) -> None:
        t, last_total, last_read = self.timeline, 0, -1
        try:
            while not self._done.wait(POLL_SECONDS):
                now = time.monotonic() - self._pipeline.started
                self._pipeline.sample_cpu()
                calls = self._emu.admin("GET", "calls")
                if calls["total"] != last_total:
                    last_total = calls["total"]
                    t.last_call = now
                    t.first_call = now if t.first_call is None else t.first_call
                    kinds = calls["by_kind"]
                    writes = calls["total"] - sum(kinds.get(k, 0) for k in ("login", "describe", "limits"))
                    if writes and t.first_write is None:
                        t.first_write = now
                p: Progress = self._pipeline.progress
                if p.read != last_read:
                    last_read = p.read
                    t.reads.append((now, p.read))
                if p.read and t.first_read is None:
                    t.first_read = now
                if p.read >= self._events and t.all_read is None:
                    t.all_read = now
                if p.accounted >= self._events and t.all_accounted is None:
                    t.all_accounted = now
        except BaseException as e:  # reported by the bench, in its own thread
            self.error = e

    def stop(self) -> Timeline:
        self._done.set()
        self.join(10)
        if self.error is not None:
            raise self.error
        return self.timeline


def _publish(publisher, events: EventSet) -> float:
    """Publishes every event and waits until the broker accepted them all; returns the seconds it took."""
    started = time.monotonic()
    for line in events.lines:
        data, key, attributes = message_of(line)
        publisher.publish(data, key, **attributes)
    publisher.flush(PUBLISH_TIMEOUT)
    delivered, errors = publisher.deliveries.delivered, publisher.deliveries.errors
    publisher.close()
    if delivered != len(events.lines) or errors:
        raise RuntimeError(f"the broker accepted {delivered} of {len(events.lines)} events: {errors[:3]}")
    return time.monotonic() - started


def _pipeline_command(
    emu: EmulatorProcess, flags: list[str], tmp: Path, args, sampled: bool = False
) -> list[str]:
    info = emu.info
    module = ["bench.broker_bench", SAMPLED, str(tmp / "runner_thread.json")] if sampled else ["pipeline"]
    return [
        sys.executable,
        "-m",
        *module,
        *flags,
        *("--salesforce_login_url", info["login_url"], "--salesforce_ca_bundle", info["ca_bundle"]),
        *("--summary_output", str(tmp / "summary.json"), "--dead_letter_output", str(tmp / "dead_letters")),
        *("--max_buffering_seconds", f"{args.max_buffering_seconds:g}", "--progress_seconds", "1"),
        *args.pipeline_args,
    ]


def _environ(emu: EmulatorProcess, extra: dict[str, str]) -> dict[str, str]:
    info = emu.info
    return dict(
        os.environ,
        **extra,
        SALESFORCE_USERNAME=info["username"],
        SALESFORCE_PASSWORD=info["password"],
        SALESFORCE_SECURITY_TOKEN=info["security_token"],
    )


def _finish(
    broker: str,
    how: str,
    emu: EmulatorProcess,
    events: EventSet,
    published_s: float,
    timeline: Timeline,
    exit_code: int | None,
    tmp: Path,
    cpu: dict[str, float],
    idle_s: float = 0.0,
) -> BrokerRun:
    try:
        summary = json.loads((tmp / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = None
    run = BrokerRun(
        broker,
        how,
        len(events.lines),
        events.records,
        published_s,
        emu.admin("GET", "calls"),
        timeline,
        summary,
        exit_code,
        emu.admin("GET", "records/Lead")["totalSize"],
        emu.admin("GET", "records/Account")["totalSize"],
        cpu,
        idle_s,
    )
    run.problems = _check(run, events, tmp)
    return run


def _check(run: BrokerRun, events: EventSet, tmp: Path) -> list[str]:
    """What a correct run shows: every event read and written, the counts balanced, one record per key."""
    problems = []
    s = run.summary
    if s is None:
        problems.append(f"no summary (exit {run.exit_code}; log {tmp / 'pipeline.log'})")
    else:
        if (s["events_read"], s["events_written"]) != (run.events, run.events):
            problems.append(f"{s['events_read']} read, {s['events_written']} written of {run.events}")
        if not s["balanced"]:
            problems.append("the summary does not add up")
        if s["events_dead_lettered"]:
            problems.append(f"{s['events_dead_lettered']} dead letters")
    leads = len({k for k in events.keys if k.startswith("Lead|")})
    if (run.leads, run.accounts) != (leads, events.records - leads):
        problems.append(
            f"the org holds {run.leads} Leads, {run.accounts} Accounts; expected {leads}, "
            f"{events.records - leads}"
        )
    return problems


class PipelineRun(PipelineProcess):
    """`python -m pipeline` (pipeline.main.run) in a process of its own: its summary (stdout) and log
    (stderr) go to files, its latest progress line is kept, and its CPU time is read while it runs."""

    def __init__(self, cmd: list[str], env: dict[str, str], tmp: Path) -> None:
        self.started = time.monotonic()
        self.cpu_s = 0.0
        with open(tmp / "pipeline.out", "w", encoding="utf-8") as out:
            super().__init__(cmd, env, tmp / "pipeline.log", stdout=out)

    def sample_cpu(self) -> None:
        """Reads the process's CPU time while it is there (a finished process's is gone)."""
        try:
            self.cpu_s = cpu_seconds(self.pid)
        except (OSError, IndexError, ValueError):
            pass


class _Cpu:
    """CPU seconds the local Salesforce and the broker used between start() and stop()."""

    def __init__(self, emu: EmulatorProcess, broker_pid: int) -> None:
        self._pids = {"salesforce": emu.proc.pid, "broker": broker_pid}
        self._at: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._at = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self) -> None:
        self.used = {name: cpu_seconds(pid) - self._at[name] for name, pid in self._pids.items()}


def run_pubsub(emu: EmulatorProcess, events: EventSet, args, tmp: Path) -> BrokerRun:
    fresh_org(emu, args.latency_ms)
    with brokers.start_pubsub_emulator(tmp / "pubsub-emulator.log") as pubsub:
        pubsub.create_topic(TOPIC, SUBSCRIPTION)
        print(f"- Pub/Sub: publishing {len(events.lines):,} events ...", file=sys.stderr, flush=True)
        published_s = _publish(pubsub.publisher(TOPIC), events)
        cmd = _pipeline_command(emu, ["--input_subscription", SUBSCRIPTION], tmp, args, args.sample_stacks)
        # The local runner's pull waits up to 30 s on an empty subscription, and its timers behind it:
        # once the backlog is read, keep-alive messages (counted as blank lines, not events) keep it prompt.
        heartbeat = brokers.Heartbeat(pubsub.publisher(TOPIC))
        cpu = _Cpu(emu, pubsub.proc.pid)
        cpu.start()
        pipeline = PipelineRun(cmd, _environ(emu, pubsub.environ), tmp)
        watcher = Watcher(emu, pipeline, len(events.lines))
        watcher.start()
        print(f"- Pub/Sub: pipeline started (log {pipeline.log_path}) ...", file=sys.stderr, flush=True)
        n = len(events.lines)
        try:
            if wait_until(
                lambda: pipeline.progress.read >= n or pipeline.exit_code is not None,
                args.timeout,
                POLL_SECONDS,
            ):
                heartbeat.start()
            wait_until(
                lambda: pipeline.progress.accounted >= n or pipeline.exit_code is not None,
                args.timeout,
                POLL_SECONDS,
            )
            time.sleep(2 * POLL_SECONDS)  # for the watcher to see the last calls
            cpu.stop()
            watcher.timeline.ended = time.monotonic() - pipeline.started
        finally:
            if heartbeat.ident is None:
                heartbeat.start()  # the pipeline's cancel waits behind its pull too
            timeline = watcher.stop()
            exit_code = pipeline.interrupt(STOP_TIMEOUT)
            heartbeat.stop()
    run = _finish(
        "Pub/Sub",
        "streaming, BundleBasedDirectRunner",
        emu,
        events,
        published_s,
        timeline,
        exit_code,
        tmp,
        {"pipeline": pipeline.cpu_s, **cpu.used},
    )
    if args.sample_stacks and (tmp / "runner_thread.json").exists():
        run.runner_thread = json.loads((tmp / "runner_thread.json").read_text(encoding="utf-8"))
    return run


def run_kafka(emu: EmulatorProcess, events: EventSet, args, tmp: Path) -> list[BrokerRun]:
    """One catch-up run per --kafka-write-method, each on an emptied org, reading the topic from its
    start (a new consumer group each)."""
    runs = []
    with brokers.start_kafka_broker(tmp / "kafka") as kafka:
        kafka.create_topic(KAFKA_TOPIC, KAFKA_PARTITIONS)
        print(f"- Kafka: publishing {len(events.lines):,} events ...", file=sys.stderr, flush=True)
        published_s = _publish(kafka.publisher(KAFKA_TOPIC), events)
        for method in args.kafka_write_method:
            fresh_org(emu, args.latency_ms)
            run_dir = tmp / f"kafka-{method}"
            run_dir.mkdir()
            flags = [
                *("--kafka_bootstrap_servers", kafka.bootstrap, "--kafka_topic", KAFKA_TOPIC),
                *("--kafka_group_id", f"bench-{uuid.uuid4().hex[:8]}"),
                *("--kafka_max_idle_seconds", f"{args.kafka_idle_seconds:g}"),
                *("--write_method", method),
            ]
            cmd = _pipeline_command(emu, flags, run_dir, args)
            cpu = _Cpu(emu, kafka.proc.pid)
            cpu.start()
            pipeline = PipelineRun(cmd, _environ(emu, {}), run_dir)
            watcher = Watcher(emu, pipeline, len(events.lines))
            watcher.start()
            print(
                f"- Kafka, --write_method {method}: pipeline started (log {pipeline.log_path}) ...",
                file=sys.stderr,
                flush=True,
            )
            try:
                wait_until(lambda p=pipeline: p.exit_code is not None, args.timeout, POLL_SECONDS)
                cpu.stop()
                watcher.timeline.ended = time.monotonic() - pipeline.started
            finally:
                exit_code = pipeline.interrupt(STOP_TIMEOUT)
                time.sleep(2 * POLL_SECONDS)  # for the watcher to see the last calls
                timeline = watcher.stop()
            run = _finish(
                "Kafka",
                f"catch-up run (--kafka_max_idle_seconds), FnApiRunner, --write_method {method}",
                emu,
                events,
                published_s,
                timeline,
                exit_code,
                run_dir,
                {"pipeline": pipeline.cpu_s, **cpu.used},
                idle_s=args.kafka_idle_seconds,
            )
            runs.append(run)
    return runs


# -- report ----------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def _kinds(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(by_kind.items(), key=lambda kv: -kv[1]) if n)


def _cpu(run: BrokerRun) -> str:
    """CPU seconds of each process, and as a share of one core over the pipeline's run."""
    wall = run.timeline.ended or 0.0
    parts = [run.cpu.get(name, 0.0) for name in ("pipeline", "salesforce", "broker")]
    shares = " / ".join(f"{c / wall:.0%}" for c in parts) if wall else "-"
    return " / ".join(f"{c:,.0f} s" for c in parts) + f" ({shares})"


def report(runs: list[BrokerRun], args) -> list[str]:
    lines = [
        "### Brokers: events published first (a backlog), then the pipeline (python -m pipeline) into "
        f"the local Salesforce, {args.latency_ms:g} ms per call",
        "",
        "| broker | how the pipeline reads | events (records) | API calls | calls per event (without logins) "
        "| start-up (s) | read (s) | first to last write (s) | sustained events/s | read events/s (10-90%) "
        "| CPU: pipeline / Salesforce / broker | check |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in runs:
        t = run.timeline
        start = t.first_read if run.broker == "Pub/Sub" else t.first_call
        read_s = t.all_read - t.first_read if t.all_read is not None and t.first_read is not None else None
        writes = (
            t.last_call - t.first_write if t.last_call is not None and t.first_write is not None else None
        )
        lines.append(
            f"| {run.broker} | {run.how} | {run.events:,} ({run.records:,}) "
            f"| {run.calls['total']:,} ({_kinds(run.calls['by_kind'])}) "
            f"| {run.calls['total'] / run.events:.4f} ({run.calls_but_logins / run.events:.4f}) "
            f"| {_fmt(start)} | {_fmt(read_s)} | {_fmt(writes)} | **{_fmt(run.events_per_s)}** "
            f"| {_fmt(run.read_rate)} | {_cpu(run)} | {'; '.join(run.problems) or 'ok'} |"
        )
    lines.append("")
    for run in runs:
        if run.runner_thread:
            lines.append(
                f"- {run.broker}: the runner's one executor thread (stack samples every 5 ms): "
                + "; ".join(f"{share:.0%} {state}" for state, share in run.runner_thread.items())
                + "."
            )
    lines += [
        "- start-up: from starting `python -m pipeline` to its first event read (Pub/Sub, first progress "
        "line with a read) or to its login (Kafka).",
        "- sustained events/s: events / (last write's return - first event read) for Pub/Sub; for Kafka "
        f"events / (last write - login - the idle wait of {args.kafka_idle_seconds:g} s), so it includes "
        "the FnApiRunner's own start after the login. Times are polled every "
        f"{POLL_SECONDS:g} s (the org's call counter) and every 1 s (the pipeline's progress lines).",
        "- read events/s: how fast the source alone delivered, between the 10% and 90% marks of events "
        "read (progress lines; the Kafka catch-up run prints none before it ends).",
        "- CPU: seconds used by the pipeline's process, the local Salesforce and the broker from the "
        "pipeline's start to the last event accounted for, and as a share of one core over that time "
        "(the machine has 2).",
    ]
    return lines


def _methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods or any(m not in ("auto", "rest", "bulk") for m in methods):
        raise argparse.ArgumentTypeError(f"{text!r}: give auto, rest or bulk, comma-separated")
    return methods


def run_sampled_pipeline(out: Path, argv: list[str]) -> None:
    """`python -m pipeline ARGV` in this process, with the runner's executor thread sampled (StackSampler);
    what it was doing goes to `out` as JSON when the process exits."""
    sampler = StackSampler()
    sampler.start()
    atexit.register(lambda: out.write_text(json.dumps(sampler.stop()), encoding="utf-8"))
    sys.argv = ["pipeline", *argv]
    runpy.run_module("pipeline", run_name="__main__", alter_sys=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == SAMPLED:
        run_sampled_pipeline(Path(sys.argv[2]), sys.argv[3:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    which = parser.add_argument_group("which brokers (default: both)")
    which.add_argument("--pubsub", action="store_true", help="the Pub/Sub emulator")
    which.add_argument("--kafka", action="store_true", help="a Kafka broker (noida-db)")
    parser.add_argument(
        "--events", type=int, default=3_000, help="events published to Pub/Sub (default 3000)"
    )
    parser.add_argument(
        "--kafka-events", type=int, default=30_000, help="events published to Kafka (default 30000)"
    )
    parser.add_argument(
        "--kafka-write-method",
        type=_methods,
        default=["auto", "rest"],
        help="the Kafka runs' --write_method, one run each, comma-separated (default auto,rest: auto "
        "writes through Bulk API 2.0 above --bulk_threshold records)",
    )
    parser.add_argument(
        "--people", type=int, default=50_000, help="distinct people drawn from (default 50000)"
    )
    parser.add_argument(
        "--companies", type=int, default=2_000, help="distinct companies drawn from (default 2000)"
    )
    parser.add_argument("--group-share", type=float, default=0.1, help="share of group events (default 0.1)")
    parser.add_argument("--seed", type=int, default=11, help="random seed (default 11)")
    parser.add_argument(
        "--latency-ms", type=float, default=100.0, help="latency the local Salesforce adds to every call"
    )
    parser.add_argument(
        "--max-buffering-seconds", type=float, default=5.0, help="the pipeline's --max_buffering_seconds"
    )
    parser.add_argument(
        "--kafka-idle-seconds",
        type=float,
        default=3.0,
        help="the Kafka run's --kafka_max_idle_seconds (default 3: the backlog is there before it starts)",
    )
    parser.add_argument(
        "--sample-stacks",
        action="store_true",
        help="Pub/Sub: sample the runner's executor thread in the pipeline's process every 5 ms and say "
        "what it was doing (waiting for writes, the watermark monitor, other work)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds a pipeline run may take (default 600)"
    )
    parser.add_argument(
        "pipeline_args", nargs="*", help="more pipeline flags, after --, e.g. -- --shards 16 --batch_size 200"
    )
    args = parser.parse_args()
    if not (args.pubsub or args.kafka):
        args.pubsub = args.kafka = True
    missing = [
        reason
        for wanted, reason in ((args.pubsub, brokers.pubsub_missing()), (args.kafka, brokers.kafka_missing()))
        if wanted and reason
    ]
    if missing:
        parser.error("; ".join(missing))
    if args.events < 1 or args.kafka_events < 1:
        parser.error("--events and --kafka-events must be at least 1")

    started = time.strftime("%Y-%m-%d %H:%M %Z")
    load = os.getloadavg()[0]
    sets = {
        name: make_events(n, args.people, args.companies, args.group_share, args.seed, 200.0)
        for name, n, wanted in (
            ("Pub/Sub", args.events, args.pubsub),
            ("Kafka", args.kafka_events, args.kafka),
        )
        if wanted
    }
    runs: list[BrokerRun] = []
    with tempfile.TemporaryDirectory(prefix="beamforce-brokers-") as tmp_dir:
        tmp = Path(tmp_dir)
        config = tmp / "org.yaml"
        config.write_text(json.dumps(ORG_CONFIG))  # JSON is YAML
        with start_emulator(tmp / "org", config) as emu:
            if args.pubsub:
                (tmp / "pubsub").mkdir()
                runs.append(run_pubsub(emu, sets["Pub/Sub"], args, tmp / "pubsub"))
            if args.kafka:
                runs += run_kafka(emu, sets["Kafka"], args, tmp)
    print()
    print(f"Command: .venv/bin/python -m bench.broker_bench {shlex.join(sys.argv[1:])}")
    print(f"Machine: {machine()}")
    shapes = "; ".join(f"{name}: {e.identifies:,} identify, {e.groups:,} group" for name, e in sets.items())
    print(
        f"Date: {started}; 1-minute load average before: {load:.1f}. Events drawn over {args.people:,} "
        f"people and {args.companies:,} companies ({shapes}). Pipeline: --max_buffering_seconds "
        f"{args.max_buffering_seconds:g}{' ' + shlex.join(args.pipeline_args) if args.pipeline_args else ''}."
    )
    print()
    print("\n".join(report(runs, args)))
    if any(run.problems for run in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
