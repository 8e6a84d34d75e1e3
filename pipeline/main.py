"""The pipeline's entry point: check the options, log in once, build and run the graph, report the counts."""

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineResult

from actions.config import default_actions_text
from pipeline import direct_runner_metrics
from pipeline.action_options import ActionOptions, action_plan, dry_run_flag
from pipeline.auth_options import AuthOptions, credentials_source
from pipeline.graph import build
from pipeline.options import (
    BeamforceOptions,
    check_not_repeated,
    options_without_effect,
    stray_arguments,
    unknown_flags,
    validate,
)
from pipeline.progress import ProgressReporter
from pipeline.runner_kind import runs_in_this_process
from pipeline.sources import SourceOptions, check_runner, choose_source, dead_letter_sink, dead_letter_topic
from pipeline.summary import Summary
from pipeline.summary_stage import WriteSummary, write_text
from salesforce import stopping
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import CREDENTIAL_VARS, PASSWORD, Credentials
from salesforce.dry_run import DryRunFactory
from salesforce.errors import ConfigurationError, SalesforceLoginError, TransientError
from salesforce.login import UNKNOWN_HOST
from salesforce.oauth import FLOW_NAMES, login_fix
from transforms.batch_writer import login_paused, paused_logins
from transforms.json_lines import keep_unfinished, new_run_id
from transforms.write_to_salesforce import ClientFactory

NAMESPACE = "beamforce"
# Beam's default DirectRunner first tries to download the Prism runner, which fails without
# internet; the in-process FnApiRunner runs batch pipelines (state, timers, metrics) everywhere.
DEFAULT_RUNNER = "FnApiRunner"
# Streaming (unbounded sources, TestStream) runs on the bundle-based DirectRunner locally.
STREAMING_RUNNER = "BundleBasedDirectRunner"
# The run finished, but some events failed for a reason that passes (API limit, Salesforce
# unavailable): schedulers should replay the dead letters later rather than treat the run as done.
EXIT_RETRYABLE = 3

_log = logging.getLogger(__name__)


class RunFailed(RuntimeError):
    """The run cannot go on for a reason outside the configuration; the message says what happened."""


def counters(result: PipelineResult) -> tuple[dict[str, int], dict[str, set[str]]]:
    """The run's counters and string sets in our namespace, summed (and joined) over steps, since
    several steps share a name: (counter name -> total, string-set name -> values)."""
    totals: dict[str, int] = {}
    string_sets: dict[str, set[str]] = {}
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for c in query["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + (value or 0)
    for m in query.get("string_sets", ()):
        value = m.committed if m.committed is not None else m.attempted
        # Runners hand back a StringSetData (values in .string_set) or, like the FnApiRunner, a set.
        values = getattr(value, "string_set", value) or ()
        string_sets.setdefault(m.key.metric.name, set()).update(values)
    return totals, string_sets


def login_once(
    credentials: Credentials, settings: ConnectionSettings, client_factory: ClientFactory = SalesforceClient
) -> SalesforceClient:
    """Fails fast on bad credentials, before anything is read; returns the client (for its call count)."""
    client = client_factory(credentials, settings)
    try:
        client.login()
    except SalesforceLoginError as e:
        flow = "" if credentials.auth == PASSWORD else f" ({FLOW_NAMES[credentials.auth]})"
        user = f" as {settings.login_username(credentials.username)}" if credentials.username else ""
        # Salesforce's code and reason as its faultstring puts them ("INVALID_LOGIN: Invalid username..."),
        # then what to fix.
        raise ConfigurationError(
            f"Salesforce login{flow} at {settings.login_url}{user} was refused: {e.code}: "
            f"{e.message.rstrip('.')}. {login_fix(credentials.auth, e.code, e.message)}"
        ) from None
    except TransientError as e:
        if e.error_code == "SSLError":
            fix = (
                f"--salesforce_ca_bundle {settings.ca_bundle} does not hold the CA that signed it: give a "
                "PEM file of that CA's certificate"
                if settings.ca_bundle
                else "give the CA that signed it with --salesforce_ca_bundle FILE"
            )
            raise ConfigurationError(
                f"the certificate of {settings.login_url} is not trusted ({e}): {fix}"
            ) from None
        if e.error_code == UNKNOWN_HOST:
            raise ConfigurationError(
                f"cannot log in at {settings.effective_login_url}: {e.message}. Check "
                "--salesforce_login_url for a typo"
            ) from None
        raise RunFailed(
            f"cannot log in at {settings.login_url}: {e}. Check --salesforce_login_url and that Salesforce "
            "is reachable"
        ) from None
    return client


def _unwritten_events(options: PipelineOptions) -> str:
    """What becomes of the events a stopped job had not written yet, for the source it read."""
    s = options.view_as(SourceOptions)
    local = "Direct" in str(options.view_as(StandardOptions).runner)
    if (s.input_subscription or s.input_topic) and local:
        return (
            "Beam's local runner acknowledged the Pub/Sub messages it pulled: events it had not written "
            "yet are lost to this run (publish them again, or run on Dataflow, which acknowledges only "
            "handled messages)"
        )
    if s.input_subscription or s.input_topic:
        return "Pub/Sub messages not handled yet stay unacknowledged and are delivered again"
    if s.kafka_topic and (s.kafka_bounded or s.kafka_max_idle_seconds is not None):
        return (
            "A Kafka read that ends commits its offsets only once the run has handled every event: a new run "
            "in the group reads these events again; records already written are not duplicated"
        )
    if s.kafka_topic:
        return "Kafka offsets are committed only for handled events: a restart in the group reads the rest"
    return "Files are read again from the start by a new run; records already written are not duplicated"


def interrupted_by_user(error: BaseException) -> bool:
    """Whether `error` is, or was raised while handling, a KeyboardInterrupt or a writer's wait that the
    stop ended (salesforce/stopping.py). Beam tags a step's exception with the step's name, and a
    KeyboardInterrupt, which takes no message, becomes a RuntimeError raised while handling it."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if _ended_by_the_stop(error):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _prepare(argv: Sequence[str], environ: Mapping[str, str], run_id: str | None = None):
    """Checks the options, logs in once and builds the graph: (options, pipeline, client, streaming).
    `run_id` names a streaming run's files (transforms/json_lines.py)."""
    argv = dry_run_flag(list(argv))
    # Our options' values first, so that a bad one is reported with our short usage, not Beam's
    # hundreds of runner options.
    help_parser().parse_known_args(argv)
    unknown = unknown_flags(argv)
    if unknown:
        raise ConfigurationError(
            f"unknown option {unknown[0]}: see python -m pipeline --help for the options"
        )
    stray = stray_arguments(argv)
    if stray:
        raise ConfigurationError(
            f"unexpected argument {stray[0]!r} ({len(stray)} in all): every value belongs to an option. An "
            "unquoted glob is expanded by the shell and only its first file would be read: quote it, e.g. "
            "--input 'events/*.jsonl'"
        )
    check_not_repeated(argv)
    options = PipelineOptions(argv)
    source = choose_source(options)
    standard = options.view_as(StandardOptions)
    # Every unbounded source makes the run a streaming one.
    standard.streaming = streaming = bool(standard.streaming) or source.unbounded
    if standard.runner is None:
        standard.runner = STREAMING_RUNNER if streaming else DEFAULT_RUNNER
    check_runner(source, standard.runner, streaming)
    for message in options_without_effect(argv, streaming):
        _log.warning("%s", message)
    credentials, settings = validate(options, environ)
    bf = options.view_as(BeamforceOptions)
    client = login_once(credentials, settings)
    # The actions file, checked against the org's describe before any event is read.
    plan = action_plan(options, client.describe, streaming)
    client_factory: ClientFactory = SalesforceClient
    if plan.dry_run:
        client_factory = DryRunFactory(SalesforceClient)
        if bf.write_method != "rest":
            _log.info(
                "Dry run: it plans the writes and counts the API calls that --write_method rest would make, "
                "not those of --write_method %s (Bulk API jobs cannot be tried without writing)",
                bf.write_method,
            )
        bf.write_method = "rest"

    summary = None
    if bf.summary_output and not streaming:
        # Computed inside the pipeline, so that a remote runner, or a launch that does not wait, gives
        # the same file; the launcher's own calls (its login, the describes) are all made by now.
        summary = WriteSummary(
            bf.summary_output,
            client.api_calls,
            dead_letter_topic(options) or bf.dead_letter_output,
            options.view_as(ActionOptions).salesforce_dry_run,
        )
    p = beam.Pipeline(options=options)
    # The writers read the credentials themselves when they start: the graph carries no secret.
    build(
        p,
        bf,
        credentials_source(options),
        settings,
        client_factory=client_factory,
        source=source.transform,
        streaming=streaming,
        # Streaming keeps each event's text: a write failure's dead letter is written when it happens.
        rereadable=source.rereadable and not streaming,
        dead_letter_sink=dead_letter_sink(options),
        plan=plan,
        summary=summary,
        run=run_id,
        local=runs_in_this_process(options),
    )
    return options, p, client, streaming


def submit(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> PipelineResult:
    """Checks, builds and submits the job, then returns without waiting for it: the launch of a Dataflow
    Flex Template, which must exit once the job is submitted. The job's counters are in the runner's
    metrics; a bounded job's --summary_output is written by the job itself (pipeline/summary_stage.py)."""
    environ = os.environ if environ is None else environ
    options, p, _, streaming = _prepare(list(argv), environ)
    if streaming and options.view_as(BeamforceOptions).summary_output:
        raise ConfigurationError(
            "--summary_output is written when a run ends, and a streaming job launched without waiting "
            "never reports its end here: leave it out and read the job's metrics (namespace beamforce) in "
            "the runner"
        )
    with _credentials_exported(environ):
        result = p.run()
    job = getattr(result, "job_id", None)
    _log.warning("Submitted %s; not waiting for it", f"job {job()}" if callable(job) else "the job")
    return result


def run(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Summary:
    """Runs the pipeline to completion and returns its summary (also printed, and written if asked)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    run_id = new_run_id()
    stopping.reset()  # a run before this one in the process may have been stopped
    options, p, client, streaming = _prepare(argv, environ, run_id)
    bf = options.view_as(BeamforceOptions)
    interrupted = False
    runner = str(options.view_as(StandardOptions).runner)
    local_streaming = contextlib.nullcontext()
    if runner in ("BundleBasedDirectRunner", "DirectRunner") and streaming:
        local_streaming = direct_runner_metrics.counting_every_bundle()
    with _credentials_exported(environ), local_streaming:
        try:
            result = p.run()
        except Exception as e:
            # The in-process runner runs the whole job inside run(): Ctrl-C lands in a step, which Beam
            # re-raises as a RuntimeError, and the job's counts are gone with it.
            if not interrupted_by_user(e):
                raise
            _log.warning(
                "Interrupted: the run stopped before its end, so there is no summary. %s",
                _unwritten_events(options),
            )
            raise KeyboardInterrupt from None
        with ProgressReporter(
            lambda: _progress_metrics(result), bf.progress_seconds, lambda: client.api_calls
        ):
            try:
                result.wait_until_finish()
            except KeyboardInterrupt:
                interrupted = True
                _log.warning("Interrupted: stopping the job. %s", _unwritten_events(options))
                _cancel(result)
    if streaming:
        _keep_unfinished_files(options, run_id)

    totals, string_sets = counters(result)
    summary = Summary.from_metrics(
        totals,
        string_sets,
        extra_api_calls=client.api_calls,
        dead_letter_output=dead_letter_topic(options) or bf.dead_letter_output,
        dry_run=options.view_as(ActionOptions).salesforce_dry_run,
        streaming=streaming,
        stopped=interrupted,
    )
    print(summary.format_text())
    if bf.summary_output and (streaming or interrupted):
        # A bounded run's pipeline wrote it (pipeline/summary_stage.py); a stopped one never got there.
        write_text(bf.summary_output, summary.to_json() + "\n")
    if interrupted:
        raise KeyboardInterrupt
    if not summary.balanced:
        _log.error("The counts do not add up: some events are unaccounted for (see the summary)")
    return summary


def _keep_unfinished_files(options: PipelineOptions, run_id: str) -> None:
    """A stopped local stream's dead letters (and records read) of the window still open are in its
    temporary files: moved where the windows' files go, so that the summary's "written" holds. After a
    stream that ended, this removes the empty temporary folders."""
    outputs = [
        (
            "dead letters",
            None if dead_letter_topic(options) else options.view_as(BeamforceOptions).dead_letter_output,
        ),
        ("records read", options.view_as(ActionOptions).read_output),
    ]
    for what, prefix in outputs:
        kept = keep_unfinished(prefix, run_id) if prefix else None
        if kept:
            _log.warning(
                "%d %s of the window still open when the run stopped: written to %s", kept[1], what, kept[0]
            )


@contextlib.contextmanager
def _credentials_exported(environ: Mapping[str, str]):
    """Writers read the credentials from their own environment; when run() was given another mapping
    than os.environ (an embedding program, tests), its credentials are exported for the run's duration
    so that in-process and locally spawned workers see them."""
    if environ is os.environ:
        yield
        return
    saved = {name: os.environ.get(name) for name in CREDENTIAL_VARS}
    try:
        for name in CREDENTIAL_VARS:
            if name in environ:
                os.environ[name] = environ[name]
            else:
                os.environ.pop(name, None)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def gauges(result: PipelineResult) -> dict[str, int]:
    """The latest value of each of our gauges (several writers: the largest)."""
    values: dict[str, int] = {}
    for g in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE)).get("gauges", ()):
        data = g.committed if g.committed is not None else g.attempted
        value = getattr(data, "value", data)
        if isinstance(value, int):
            values[g.key.metric.name] = max(values.get(g.key.metric.name, value), value)
    return values


def _progress_metrics(result: PipelineResult) -> tuple[dict[str, int], dict[str, int]]:
    # Writers in this process (local runners) say at once why they pause; remote ones through gauges.
    paused = {login_paused(reason): 1 for reason in paused_logins()}
    return counters(result)[0], {**gauges(result), **paused}


def _cancel(result: PipelineResult) -> None:
    try:
        result.cancel()
    except Exception as e:  # some runners cannot cancel a job that is already stopping
        _log.warning("could not cancel the job: %s", e)


def _program_name() -> str:
    """How the user started us: the `beamforce` command or `python -m pipeline`."""
    return "beamforce" if os.path.basename(sys.argv[0] or "") == "beamforce" else "python -m pipeline"


class _OptionParser(argparse.ArgumentParser):
    """A bad value is a configuration error, told in one line like the others (not the usage and all)."""

    def error(self, message: str):
        raise ConfigurationError(f"{message} (see {self.prog} --help)")


def help_parser() -> argparse.ArgumentParser:
    """Only our options: Beam's parser would list hundreds of runner options."""
    parser = _OptionParser(
        prog=_program_name(),
        description="Send Segment events from files, archives, Pub/Sub or Kafka to Salesforce: identify "
        "as Leads and group as Accounts, or what an actions file (--actions_config) says.",
        epilog="Credentials come from the environment only (see --auth for each flow's variables; "
        "any secret may instead be in a file named by <variable>_FILE), a credentials file or a secret "
        "manager. Apache Beam pipeline options (--runner, ...) are accepted too; "
        f"the default runner is {DEFAULT_RUNNER} (in-process). Exit status: 0 done, 2 configuration "
        f"error, {EXIT_RETRYABLE} done but some events are retryable dead letters (e.g. the org's API "
        "limit ran out: replay them later by giving the dead-letter files as --input), 1 other failure, "
        "130 stopped by Ctrl-C and 143 by SIGTERM (at once, even while the writers wait for the API "
        "allocation).",
    )
    BeamforceOptions._add_argparse_args(parser)
    AuthOptions._add_argparse_args(parser.add_argument_group("logging in to Salesforce"))
    SourceOptions._add_argparse_args(parser.add_argument_group("sources and dead-letter topics"))
    ActionOptions._add_argparse_args(
        parser.add_argument_group("custom actions, converted Leads, duplicate rules and dry runs")
    )
    return parser


def _ended_by_the_stop(error: BaseException | None) -> bool:
    return isinstance(error, KeyboardInterrupt | stopping.Stopped)


class _QuietStop(logging.Filter):
    """Drops Beam's report of a step that the stop ended (it logs every failing step's traceback): a
    stopped run shows its warning and its summary, not a traceback per step that was waiting."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _ended_by_the_stop(record.exc_info[1]))


# Where Beam reports a failing step.
_STEP_LOGGER = "apache_beam.runners.common"


class _Signals:
    """Ctrl-C (SIGINT) and SIGTERM (docker stop, systemd, a scheduler's kill) stop the run alike: every
    writer's wait ends at once (salesforce/stopping.py), the job is cancelled and what it did is
    summarized; the exit status is 130, or 143 (128 + SIGTERM) after SIGTERM. A SIGINT that the
    process ignores (started in the background by a shell) stays ignored."""

    def __init__(self) -> None:
        self.terminated = False  # SIGTERM was received

    def __call__(self, signum, frame) -> None:
        if signum == signal.SIGTERM:
            self.terminated = True
        stopping.stop()
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def handling(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may handle signals (an embedding program's worker thread)
            return
        signals = [signal.SIGTERM]
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signals.append(signal.SIGINT)
        previous = {signum: signal.signal(signum, self) for signum in signals}
        quiet = _QuietStop()
        logging.getLogger(_STEP_LOGGER).addFilter(quiet)
        thread_hook = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            # A local runner's thread that ran a step the stop ended.
            if not _ended_by_the_stop(args.exc_value):
                thread_hook(args)

        threading.excepthook = hook
        try:
            yield
        finally:
            threading.excepthook = thread_hook
            logging.getLogger(_STEP_LOGGER).removeFilter(quiet)
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        help_parser().print_help()
        return 0
    if "--print_default_actions" in argv:
        sys.stdout.write(default_actions_text())
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Our own progress lines (INFO) show; Beam's INFO chatter does not.
    for name in ("pipeline", "transforms"):
        logging.getLogger(name).setLevel(logging.INFO)
    signals = _Signals()
    try:
        with signals.handling():
            summary = run(argv)
    except ConfigurationError as e:
        print(f"beamforce: configuration error: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:
        print(f"beamforce: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:  # argparse rejected a value; it has printed why
        return 2 if e.code not in (0, None) else 0
    except KeyboardInterrupt:
        return 143 if signals.terminated else 130
    except Exception:
        _log.exception("beamforce failed")
        return 1
    # An unbalanced run means a bug that may have lost events: fail so that it gets looked at.
    if not summary.balanced:
        return 1
    if summary.retryable_dead_letters:
        where = summary.dead_letter_files or ""
        how = (
            f"they were published to {where}: replay them later by reading that topic as the input"
            if "://" in where and not where.startswith(("gs://", "s3://"))
            else f"replay them later by running again with --input '{where}' (and another "
            "--dead_letter_output, if you gave one)"
        )
        print(
            f"beamforce: {summary.retryable_dead_letters} events could not be written for now; they are "
            f"retryable dead letters: {how}",
            file=sys.stderr,
        )
        return EXIT_RETRYABLE
    return 0
