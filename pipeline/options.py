"""The pipeline's command-line options and the one place that checks them before anything runs."""

import argparse
import glob
import importlib.util
import math
import os
import re
import socket
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions
from apache_beam.runners.runner import create_runner

from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import ConfigurationError
from salesforce.governor import NO_LIMIT_PERCENT
from transforms.account_mapping import ADDRESS_MAPPINGS
from transforms.write_records import DEFAULT_BULK_THRESHOLD, DEFAULT_WRITE_METHOD, WRITE_METHODS

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
# SOAP login() exists from API 31.0 and is gone from 65.0 on (Salesforce, Winter '26).
MIN_API_VERSION, MAX_API_VERSION = 31, 64
# Without --dead_letter_output, dead letters go under the current directory, a new folder per run,
# so that a forgotten flag loses nothing and no run overwrites another's.
DEFAULT_DEAD_LETTER_DIR = "dead_letters"
BOUNDED_BATCH_SIZE = 1000
STREAMING_BATCH_SIZE = 200
# Write shards: files spread the whole input's records over 8 writers; a stream's buffers are written by
# age at moderate traffic, so 2 shards make fuller batches (bench/streaming_bench.py --rate-test).
BOUNDED_SHARDS = 8
STREAMING_SHARDS = 2
DEFAULT_DEDUP_TTL_SECONDS = 86_400.0
DEFAULT_MAX_BUFFERING_SECONDS = 5.0
DEFAULT_PROGRESS_SECONDS = 60.0
DEFAULT_WRITER_THREADS = 4
ON_API_LIMIT_CHOICES = ("wait", "dead_letter")
DEAD_LETTER_FILE_PREFIX = "dead_letters"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


class BeamforceOptions(PipelineOptions):
    """Where events come from, which org they go to, and where failures and counts are written."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--input",
            metavar="GLOB",
            default=None,
            help="Event files to read: JSON lines, one Segment event a line; .jsonl or .json, "
            "gzip-compressed when the name ends in .gz (quote the glob, e.g. 'events/*.jsonl*'); a glob "
            "ending in .avro reads Avro files of schemas/segment_event.avsc. One source is required: "
            "this, --archive, --input_subscription, --input_topic or --kafka_topic.",
        )
        parser.add_argument(
            "--salesforce_login_url",
            metavar="URL",
            default=None,
            help=f"Where to log in (SOAP login). Default {PRODUCTION_LOGIN_URL}, or {SANDBOX_LOGIN_URL} "
            "with --sandbox. Use your My Domain URL, or a local emulator's.",
        )
        parser.add_argument(
            "--sandbox",
            metavar="NAME",
            default=None,
            help="Write to the sandbox NAME: '.NAME' is appended to SALESFORCE_USERNAME (as Salesforce "
            f"names sandbox users) and the login goes to {SANDBOX_LOGIN_URL} unless "
            "--salesforce_login_url is given.",
        )
        parser.add_argument(
            "--salesforce_ca_bundle",
            metavar="FILE",
            default=None,
            help="PEM file of the certificate authorities to trust for Salesforce (e.g. a local "
            "emulator's CA); default: the system's trust store.",
        )
        parser.add_argument(
            "--salesforce_api_version",
            metavar="VERSION",
            default=None,
            help=f"Salesforce API version, {MIN_API_VERSION}.0 to {MAX_API_VERSION}.0 with --auth password "
            "(SOAP login is not available from 65.0), to 66.0 with the OAuth flows. Default: the newest "
            "the --auth flow allows (64.0 for password, 66.0 for the others).",
        )
        parser.add_argument(
            "--dead_letter_output",
            metavar="PREFIX",
            default=None,
            help="Write events that could not be delivered as JSON lines to PREFIX-SSSSS-of-NNNNN.jsonl "
            "(stage, reason, message, retryable, the original event); PREFIX ends in a file name, e.g. "
            f"out/{DEAD_LETTER_FILE_PREFIX}. Default: {DEFAULT_DEAD_LETTER_DIR}/<UTC start time, e.g. "
            f"20261201T104501Z>/{DEAD_LETTER_FILE_PREFIX} under the current directory, a new one each run "
            "(the summary says where). These files are valid --input: a later run replays the events "
            "they hold; a bounded run refuses a PREFIX that holds an earlier run's dead letters it does not "
            "read. On Dataflow give a bucket prefix (gs://...): its workers cannot write here.",
        )
        parser.add_argument(
            "--summary_output",
            metavar="FILE",
            default=None,
            help="Also write the run's summary (the counters) as JSON to FILE: a local path or any Beam "
            "filesystem path (gs://..., with the gcp extra), checked before the run starts. A bounded run "
            "computes the summary inside the pipeline and a worker writes it when the input has been "
            "handled, so every runner gives the same file, also a job launched without waiting (a Flex "
            "Template); on Dataflow or a remote Flink or Spark cluster give a path the workers can write. "
            "A streaming run writes it from the launching process when it stops.",
        )
        parser.add_argument(
            "--address_mapping",
            choices=ADDRESS_MAPPINGS,
            default="billing",
            help="Which Account address a group call's address fills: billing (default), shipping or both.",
        )
        parser.add_argument(
            "--always_enabled",
            action="store_true",
            default=False,
            help='Send every event, not only those with integrations {"Salesforce": true} (the Segment '
            "destination's gate, which protects the org's API limits). Events that opt out explicitly "
            '("Salesforce": false, or "All": false without Salesforce) are still filtered.',
        )
        parser.add_argument(
            "--batch_size",
            type=_positive_int,
            default=None,
            help="Records looked up with one SOQL query and written together (in calls of 200). "
            f"Default {BOUNDED_BATCH_SIZE} for files; {STREAMING_BATCH_SIZE} when streaming, where a "
            "shard's buffer is also flushed once this many distinct records wait in it.",
        )
        parser.add_argument(
            "--api_usage_limit_percent",
            type=float,
            metavar="P",
            default=NO_LIMIT_PERCENT,
            help="Stop calling Salesforce once the org's API usage over the rolling 24 hours (as "
            "Salesforce reports it with every response) reaches P%% of its daily allocation, leaving the "
            "rest for the org's other integrations; the events not written then are retryable dead "
            "letters (API_USAGE_RESERVED) to replay later. More than 0, at most 100. Default 100: off "
            "(the org's own limit applies).",
        )
        parser.add_argument(
            "--max_calls_per_second",
            type=float,
            metavar="R",
            default=None,
            help="At most R Salesforce API calls a second (logins included) for the whole job: each of "
            "the --shards writers may make R / shards a second, so the org never sees more than R however "
            "many workers run. Time waited is reported as throttling to the runner. Default: no limit.",
        )
        parser.add_argument(
            "--shards",
            type=_positive_int,
            default=None,
            help="Number of parallel write shards; records are spread by a stable hash of their key. "
            f"Default {BOUNDED_SHARDS} for files, {STREAMING_SHARDS} streaming: a streaming shard writes "
            "each object's buffer about every --max_buffering_seconds, so fewer shards mean fuller "
            "batches and fewer calls at moderate traffic (README: Streaming, calls per event).",
        )
        parser.add_argument(
            "--writer_threads",
            type=_positive_int,
            default=DEFAULT_WRITER_THREADS,
            help="Batches each writer sends at once (a batch sharing a record with one in flight waits "
            "for it, so a record is never written by two calls at once). More overlap Salesforce's "
            f"answers with the pipeline's work. Default {DEFAULT_WRITER_THREADS}.",
        )
        parser.add_argument(
            "--write_method",
            choices=WRITE_METHODS,
            default=DEFAULT_WRITE_METHOD,
            help="How records are written. rest: sObject Collections, about 2 API calls per 200 records, "
            "written by all --shards at once. bulk: Bulk API 2.0 jobs, 10 to 20 calls per object and "
            "50,000 records, but each job is polled until Salesforce has run it (a small run takes longer) "
            "and spends one of the org's daily Bulk batches per 10,000 records; bounded input only (files, "
            "archives, --kafka_bounded). auto (default): bulk for an object with more than "
            "--bulk_threshold records, rest for the others and always for streams.",
        )
        parser.add_argument(
            "--bulk_threshold",
            type=_non_negative_int,
            metavar="N",
            default=DEFAULT_BULK_THRESHOLD,
            help="With --write_method auto, an object (Lead, Account) with more than N distinct records in "
            "the input is written through Bulk API 2.0. The two cost the same API calls at about 2,000 "
            "records; from 10,000 on Bulk spends a fifth of REST's calls or less, and its polling no "
            f"longer matters against the run. Default {DEFAULT_BULK_THRESHOLD}.",
        )
        parser.add_argument(
            "--salesforce_credentials_file",
            metavar="FILE",
            default=None,
            help="Read SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN from FILE "
            "(NAME=VALUE lines, e.g. a mounted secret) instead of the environment. Workers read it "
            "themselves when they start, so the credentials never travel inside the job's graph.",
        )
        parser.add_argument(
            "--dedup_ttl_seconds",
            type=float,
            metavar="S",
            default=DEFAULT_DEDUP_TTL_SECONDS,
            help="Streaming: a messageId seen again within S seconds of its first delivery is a "
            "duplicate and dropped (counted); each record's last event time per field is remembered as "
            "long, so that a late event never overwrites a newer value. Bounds the state the job keeps. "
            f"Default {DEFAULT_DEDUP_TTL_SECONDS:g} (24 hours, Segment's own window).",
        )
        parser.add_argument(
            "--max_buffering_seconds",
            type=float,
            metavar="S",
            default=DEFAULT_MAX_BUFFERING_SECONDS,
            help="Streaming: a shard's buffer is written once its oldest event has waited S seconds, "
            "even if it holds fewer than --batch_size records. Larger S: fewer API calls per event, "
            f"later writes. Default {DEFAULT_MAX_BUFFERING_SECONDS:g}.",
        )
        parser.add_argument(
            "--on_api_limit",
            choices=ON_API_LIMIT_CHOICES,
            default=None,
            help="What to do when the org's daily API allocation runs out (or --api_usage_limit_percent "
            "is reached): 'wait' pauses writing and checks the org's limits again at intervals, so the "
            "source keeps its backlog and nothing is dead-lettered; 'dead_letter' hands the events back "
            "as retryable dead letters (exit status 3). Default: wait when streaming, dead_letter for "
            "files.",
        )
        parser.add_argument(
            "--progress_seconds",
            type=float,
            metavar="S",
            default=DEFAULT_PROGRESS_SECONDS,
            help="Print a progress line every S seconds while the job runs (counts so far, API calls "
            f"used and remaining, calls per event). Default {DEFAULT_PROGRESS_SECONDS:g}.",
        )


# The longest --dedup_ttl_seconds, --max_buffering_seconds and --progress_seconds: a year.
MAX_SECONDS = 365 * 24 * 3600

# The modules defining this project's options: imported before flags are checked, wherever that happens.
OPTION_MODULES = ("pipeline.options", "pipeline.sources", "pipeline.auth_options", "pipeline.action_options")


def load_runner(argv: Sequence[str]) -> None:
    """Imports every module that defines options for this run: ours, and the named runner's (a runner
    outside Beam's core, such as apache_beam.runners.dask.dask_runner.DaskRunner, defines its options in
    its own module). A runner that cannot be loaded is a configuration error naming it."""
    import importlib

    from apache_beam.options.pipeline_options import StandardOptions
    from apache_beam.runners.runner import create_runner

    for module in OPTION_MODULES:
        importlib.import_module(module)
    runner = PipelineOptions(list(argv)).view_as(StandardOptions).runner
    if not runner or not isinstance(runner, str):
        return
    try:
        create_runner(runner)
    except ImportError as e:
        raise ConfigurationError(
            f"--runner {runner} cannot be loaded ({e}): install its extra, e.g. pip install "
            "'apache-beam[dask]' for Beam's Dask runner"
        ) from None
    except ValueError as e:
        raise ConfigurationError(f"--runner {runner}: {e}") from None


def unknown_flags(argv: Sequence[str]) -> list[str]:
    """Flags no PipelineOptions class knows: Beam only warns about them, we refuse them (typos)."""
    return [a.split("=", 1)[0] for a in _unknown(argv) if a.startswith("-")]


# Options of one mode only: given to a run of the other, they do nothing, which the run says.
STREAMING_ONLY_OPTIONS = {
    "--dedup_ttl_seconds": "a bounded run merges every copy of an event over the whole input",
    "--max_buffering_seconds": "a bounded run writes once its whole input is merged",
}
BOUNDED_ONLY_OPTIONS = {
    "--bulk_threshold": "a streaming run writes through REST only",
}


def options_without_effect(argv: Sequence[str], streaming: bool) -> list[str]:
    """Why each option given in `argv` does nothing in this run (it belongs to the other mode)."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    other = BOUNDED_ONLY_OPTIONS if streaming else STREAMING_ONLY_OPTIONS
    mode = "streaming" if streaming else "bounded"
    return [f"{flag} has no effect on this {mode} run: {why}" for flag, why in other.items() if flag in given]


# Options naming what a run reads or writes: given twice, argparse keeps the last and the first would be
# silently ignored (a file not read, an output not where the user looks).
SINGLE_PATH_OPTIONS = (
    "--input",
    "--archive",
    "--actions_config",
    "--dead_letter_output",
    "--summary_output",
    "--read_output",
    "--dry_run_output",
    "--salesforce_credentials_file",
)


def check_not_repeated(argv: Sequence[str]) -> None:
    """ConfigurationError for an option of SINGLE_PATH_OPTIONS given more than once."""
    given = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    for flag in SINGLE_PATH_OPTIONS:
        times = given.count(flag)
        if times > 1:
            hint = (
                ": one glob matches several files, e.g. --input 'events/*.jsonl'" if flag == "--input" else ""
            )
            raise ConfigurationError(
                f"{flag} is given {times} times, and a run takes one (only the last would count): give it "
                f"once{hint}"
            )


def stray_arguments(argv: Sequence[str]) -> list[str]:
    """Arguments that are no option's value (Beam only warns and ignores them): most often the files of
    an unquoted glob, which the shell expanded, so that all but the first would go unread."""
    return [a for a in _unknown(argv) if not a.startswith("-")]


def _unknown(argv: Sequence[str]) -> list[str]:
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    load_runner(argv)
    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(list(argv))
    return unknown


def local_prefix_writable(prefix: str) -> bool:
    """False when a local prefix's directory cannot exist: its nearest existing ancestor is a file
    or not writable (Beam creates the missing directories). Remote prefixes (gs://...) are left to Beam.
    """
    if "://" in prefix:
        return True
    ancestor = os.path.dirname(os.path.abspath(prefix))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    return os.path.isdir(ancestor) and os.access(ancestor, os.W_OK)


def default_dead_letter_output(started: datetime) -> str:
    """dead_letters/<UTC start, e.g. 20261201T104501Z>/dead_letters, relative to the current directory."""
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir, n = os.path.join(DEFAULT_DEAD_LETTER_DIR, stamp), 1
    # Runs started in the same second must not write (and overwrite) the same files.
    while os.path.exists(run_dir):
        n += 1
        run_dir = os.path.join(DEFAULT_DEAD_LETTER_DIR, f"{stamp}-{n}")
    return os.path.join(run_dir, DEAD_LETTER_FILE_PREFIX)


def with_directory(pattern: str) -> str:
    """A local path or glob without a directory part ('dead*') as one in the current directory ('./dead*'):
    Beam's local filesystem matches nothing for a glob without a directory."""
    if "://" in pattern or os.path.dirname(pattern) or not pattern:
        return pattern
    return os.path.join(os.curdir, pattern)


def _check_input(pattern: str) -> frozenset[str]:
    """The files `pattern` matches (local ones as absolute paths); ConfigurationError when it matches none
    that could be read."""
    check_filesystem("--input", pattern, "read")
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as e:  # Beam wraps every filesystem's failure differently
        raise ConfigurationError(f"--input {pattern!r} cannot be listed: {e}") from None
    # Beam reads nothing from a directory, quietly: the run would end "done" with no event read.
    if any(not os.path.isdir(m.path) for m in matched):
        return frozenset(_normalized(m.path) for m in matched)
    # Beam's glob lists files only, so a glob of directories matches nothing at all.
    local = "://" not in pattern
    if local and (os.path.isdir(pattern) or any(os.path.isdir(p) for p in glob.glob(pattern))):
        example = pattern.rstrip("/" + os.sep) + "/*.jsonl"
        what, where = (
            ("is a directory", "it") if os.path.isdir(pattern) else ("matches only directories", "them")
        )
        raise ConfigurationError(
            f"--input {pattern!r} {what}: give a glob of the event files in {where}, e.g. --input '{example}'"
        )
    raise ConfigurationError(
        f"--input {pattern!r} matches no file: check the path, and quote the glob so that the shell "
        "does not expand it"
    )


# Runners whose workers are other machines: they cannot write dead letters to this machine's disk.
REMOTE_RUNNERS = ("DataflowRunner", "TestDataflowRunner")
# Runners whose workers are this machine unless their master says otherwise: option -> local masters.
CLUSTER_MASTERS = {
    "FlinkRunner": ("flink_master", ("[local]", "[auto]", "localhost", "127.0.0.1")),
    "SparkRunner": ("spark_master_url", ("local",)),
}


def remote_workers(options: PipelineOptions, runner: object) -> str | None:
    """Which runner (and master) runs the workers on other machines than this one, or None."""
    name = runner if isinstance(runner, str) else type(runner).__name__ if runner else ""
    name = name.rsplit(".", 1)[-1]
    if name in REMOTE_RUNNERS:
        return name
    if name in CLUSTER_MASTERS:
        option, local = CLUSTER_MASTERS[name]
        master = str(options.get_all_options().get(option) or local[0])
        if not master.startswith(local):
            return f"{name} (--{option} {master})"
    return None


def _check_runner(options: PipelineOptions, runner: object) -> None:
    """A runner that cannot run this job fails now, not with a traceback once the job has started."""
    try:
        create_runner(runner)
    except (ValueError, ImportError) as e:
        raise ConfigurationError(f"--runner {runner!r} cannot be used: {e}") from None
    name = (runner if isinstance(runner, str) else type(runner).__name__).rsplit(".", 1)[-1]
    if name == "FnApiRunner" and options.view_as(StandardOptions).streaming:
        raise ConfigurationError(
            "--runner FnApiRunner runs bounded input only, and this run is a streaming one (an unbounded "
            "source, or --streaming): leave --runner out (BundleBasedDirectRunner runs streams locally), or "
            "give a streaming runner such as DataflowRunner or FlinkRunner"
        )
    if name == "PortableRunner":
        endpoint = options.view_as(PortableOptions).job_endpoint
        if not endpoint:
            raise ConfigurationError(
                "--runner PortableRunner needs --job_endpoint HOST:PORT, the job service of the runner to "
                "submit to (e.g. a Flink job server); or give the runner by name, e.g. --runner FlinkRunner"
            )
        if endpoint != "embed":  # Beam starts that job service itself
            check_job_endpoint(endpoint)


# How long the check at start waits for --job_endpoint to accept a connection.
JOB_ENDPOINT_TIMEOUT_SECONDS = 10.0


def check_job_endpoint(endpoint: str, timeout: float = JOB_ENDPOINT_TIMEOUT_SECONDS) -> None:
    """--job_endpoint HOST:PORT must accept a connection: Beam's gRPC client would wait for it forever."""
    address = _host_port(endpoint)
    if address is None:
        raise ConfigurationError(
            f"--job_endpoint {endpoint!r} is not HOST:PORT (e.g. localhost:8099), the address of the job "
            "service to submit to"
        )
    refused = _refused(*address, timeout)
    if refused:
        raise ConfigurationError(
            f"--job_endpoint {endpoint}: no job service answers there ({refused}): start the runner's job "
            "service (e.g. a Flink job server) or give its address"
        )


def check_kafka_brokers(servers: str, timeout: float = JOB_ENDPOINT_TIMEOUT_SECONDS) -> None:
    """--kafka_bootstrap_servers must be HOST:PORT entries, one of which accepts a connection: the Kafka
    client would otherwise retry for half a minute and fail inside the pipeline, naming no option."""
    entries = [e.strip() for e in servers.split(",") if e.strip()]
    # librdkafka also takes PROTOCOL://HOST:PORT.
    addresses = [_host_port(e.split("://", 1)[-1]) for e in entries]
    bad = [e for e, a in zip(entries, addresses, strict=True) if a is None]
    if bad or not entries:
        raise ConfigurationError(
            f"--kafka_bootstrap_servers {servers!r}: {bad[0] if bad else servers!r} is not HOST:PORT: give "
            "the brokers as HOST:PORT, comma-separated, e.g. --kafka_bootstrap_servers b1:9092,b2:9092"
        )
    reasons = []
    for address in addresses:
        refused = _refused(*address, timeout)
        if not refused:
            return
        reasons.append(refused)
    raise ConfigurationError(
        f"--kafka_bootstrap_servers {servers}: no broker accepts a connection ({reasons[0]}): start the "
        "brokers, or give their address"
    )


def _host_port(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


def _refused(host: str, port: int, timeout: float) -> str | None:
    """Why nothing at host:port accepts a TCP connection; None when something does."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return "timed out" if isinstance(e, TimeoutError) else e.strerror or str(e)
    return None


def _check_no_earlier_dead_letters(prefix: str, input_files: frozenset[str], dry_run: bool = False) -> None:
    """A bounded run writes `<prefix>-SSSSS-of-NNNNN.jsonl`, and Beam's sink deletes the files of that
    pattern before it renames its own into place: an earlier run's dead letters there would be lost, unless
    this run reads them (a replay: they are among `input_files`), and writes them (a dry run writes nothing,
    so its dead letters would replace the ones it read with fewer). Empty files (a run without dead letters)
    hold nothing to lose."""
    try:
        held = [m for m in FileSystems.match([f"{prefix}-*-of-*.jsonl"])[0].metadata_list if m.size_in_bytes]
    except Exception:  # cannot be listed: the write will say so
        return
    if dry_run:
        replayed = sorted(m.path for m in held if _normalized(m.path) in input_files)
        if replayed:
            raise ConfigurationError(
                f"--dead_letter_output {prefix!r} is where the dead letters this dry run reads are "
                f"({replayed[0]}): a dry run writes nothing to Salesforce, so its own dead letters would "
                "replace them, and the events it would have written would be lost; give the dry run another "
                "--dead_letter_output"
            )
    kept = sorted(m.path for m in held if _normalized(m.path) not in input_files)
    if kept:
        raise ConfigurationError(
            f"--dead_letter_output {prefix!r} already holds dead letters of an earlier run ({kept[0]}"
            f"{f' and {len(kept) - 1} more' if len(kept) > 1 else ''}), which this run would replace: replay "
            f"them first (--input '{prefix}-*.jsonl', with another --dead_letter_output), move them, or give "
            "another prefix"
        )


def _normalized(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _check_remote_dead_letters(prefix: str, default: bool, workers: str | None) -> None:
    if workers is not None and "://" not in prefix:
        raise ConfigurationError(
            f"--dead_letter_output {prefix!r}{' (the default)' if default else ''} is on this machine, "
            f"which the workers of {workers} cannot write to: give a prefix they all can, e.g. "
            "--dead_letter_output gs://bucket/beamforce/dead_letters (or s3://, hdfs://), or a "
            "dead-letter topic"
        )


# Beam's filesystems that load without their client library and fail only when first used (for
# dead letters, after Salesforce was written): scheme -> (the library, the extra that installs it).
FILESYSTEM_CLIENTS = {
    "s3": ("boto3", "beamforce[aws]"),
    "azfs": ("azure.storage.blob", "apache-beam[azure]"),
}


def check_filesystem(flag: str, path: str, verb: str = "written", here: bool = True) -> None:
    """A path with a scheme (gs://, s3://) must have a Beam filesystem here; found now, not after writing.
    `here`: this process reads or writes it (a local runner), so the scheme's client library must be
    installed too; remote workers bring their own."""
    if "://" not in path:
        return
    try:
        FileSystems.get_filesystem(path)
    except Exception as e:  # Beam wraps a missing filesystem's failure differently per scheme
        raise ConfigurationError(
            f"{flag} {path!r} cannot be {verb}: {e} (install the Beam extra for its scheme, e.g. pip "
            "install 'beamforce[gcp]' for gs://)"
        ) from None
    scheme = path.split("://", 1)[0].lower()
    if here and scheme in FILESYSTEM_CLIENTS:
        module, extra = FILESYSTEM_CLIENTS[scheme]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its parent package is missing too
            found = False
        if not found:
            raise ConfigurationError(
                f"{flag} {path!r} cannot be {verb}: {scheme}:// needs {module}, which is not installed: pip "
                f"install '{extra}'"
            )


def _check_dead_letter_output(prefix: str, default: bool) -> None:
    if glob.has_magic(prefix):
        # Beam's file sink matches its own temporary files with the prefix as a glob, and fails to.
        raise ConfigurationError(
            f"--dead_letter_output {prefix!r} holds a glob character (* ? [): give a plain prefix such as "
            "out/dead_letters"
        )
    if not default and (prefix.endswith(("/", os.sep)) or ("://" not in prefix and os.path.isdir(prefix))):
        # Beam would write files named "-00000-of-00001.jsonl" into the directory.
        example = prefix.rstrip("/" + os.sep) + "/" + DEAD_LETTER_FILE_PREFIX
        raise ConfigurationError(
            f"--dead_letter_output {prefix!r} names a directory, not a file name prefix: give a prefix "
            f"such as '{example}' (files {DEAD_LETTER_FILE_PREFIX}-SSSSS-of-NNNNN.jsonl in that directory)"
        )
    if not local_prefix_writable(prefix):
        raise ConfigurationError(
            f"--dead_letter_output {prefix!r}{' (the default)' if default else ''} cannot be written: its "
            "directory is not a directory that can be created or written; give a prefix such as "
            "out/dead_letters"
        )


# An output is a file (exact path) or a prefix of files named <prefix>-....jsonl.
FILE, PREFIX = "file", "prefix"


def _takes(prefix: str, path: str) -> bool:
    return path.startswith(prefix + "-") and path.endswith(".jsonl")


def check_outputs_apart(outputs: list[tuple[str, str, str]], read: list[tuple[str, str]]) -> None:
    """No output may overwrite a file the run reads, nor another output's files (Beam's file sinks
    delete what they replace). `outputs` are (flag, path, FILE or PREFIX), `read` (flag, path) of the
    files the run reads. An input among the dead letters' files is a replay in place, which
    _check_no_earlier_dead_letters rules on."""
    outputs = [(flag, path, _normalized(path), kind) for flag, path, kind in outputs]
    read = [(flag, path, _normalized(path)) for flag, path in read]
    for n, (flag, path, where, kind) in enumerate(outputs):
        for read_flag, read_path, read_where in read:
            if kind == FILE and where == read_where:
                what = "one of the --input files" if read_flag == "--input" else f"the {read_flag} file"
                raise ConfigurationError(
                    f"{flag} {path!r} is {what}: the run would overwrite it; give another file name"
                )
            if kind == PREFIX and _takes(where, read_where):
                if flag == "--dead_letter_output" and read_flag == "--input":
                    continue
                raise ConfigurationError(
                    f"{flag} {path!r} writes files named {path}-*.jsonl, and {read_flag} {read_path!r} is "
                    "one: the run would overwrite it; give another prefix"
                )
        for other_flag, other_path, other_where, other_kind in outputs[n + 1 :]:
            if kind == FILE and other_kind == FILE and where == other_where:
                raise ConfigurationError(
                    f"{flag} and {other_flag} name the same file {path!r}: one would overwrite the other; "
                    "give each its own"
                )
            if kind != other_kind:
                (file_flag, file_path, file_where), (prefix_flag, prefix_path, prefix_where) = (
                    ((flag, path, where), (other_flag, other_path, other_where))
                    if kind == FILE
                    else ((other_flag, other_path, other_where), (flag, path, where))
                )
                if _takes(prefix_where, file_where):
                    owner = "a dead-letter file" if prefix_flag == "--dead_letter_output" else "a file"
                    raise ConfigurationError(
                        f"{file_flag} {file_path!r} takes the name of {owner} of {prefix_flag} "
                        f"{prefix_path!r}: give another file name"
                    )
            if (
                kind == PREFIX
                and other_kind == PREFIX
                and (
                    where == other_where
                    or _takes(where, other_where + ".jsonl")
                    or _takes(other_where, where + ".jsonl")
                )
            ):
                raise ConfigurationError(
                    f"{flag} {path!r} and {other_flag} {other_path!r} would write files of the same names "
                    f"({path}-*.jsonl), and each run's files replace the other's: give each its own prefix"
                )


def _check_summary_output(path: str, workers: str | None) -> None:
    """The summary is written last, after Salesforce was: a path that cannot take it must fail first.
    A remote path (gs://...) must have a filesystem here; Beam's writes it when the run ends."""
    if "://" in path:
        check_filesystem("--summary_output", path, here=workers is None)
        return
    if workers is not None:
        # Written inside the pipeline on a remote runner, by one of its workers (pipeline/summary_stage.py).
        raise ConfigurationError(
            f"--summary_output {path!r} is on this machine, which the workers of {workers} cannot write "
            "to: give a path they all can, e.g. --summary_output gs://bucket/beamforce/summary.json (or "
            "s3://, hdfs://)"
        )
    if os.path.isdir(path):
        raise ConfigurationError(
            f"--summary_output {path!r} is a directory: give a file name, e.g. "
            f"'{os.path.join(path, 'summary.json')}'"
        )
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigurationError(
            f"--summary_output {path!r} cannot be written: give a file in an existing directory"
        )
    try:
        if os.path.exists(path):
            # Opened for appending and closed: nothing is written, nothing truncated. O_NONBLOCK so
            # that a FIFO without a reader fails instead of hanging.
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
        else:
            # A nameless temporary file (O_TMPFILE where the filesystem has it), gone when closed.
            with tempfile.TemporaryFile(dir=parent):
                pass
    except OSError as e:
        raise ConfigurationError(
            f"--summary_output {path!r} cannot be written ({e.strerror}): give a file you may write, or a "
            "new file in a directory you may write"
        ) from None


# The slowest --max_calls_per_second: slower would wait longer than a run can, or than a clock can count.
MIN_CALLS_PER_SECOND = 0.001
_SANDBOX_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def validate(
    options: PipelineOptions, environ: Mapping[str, str] = os.environ, started: datetime | None = None
) -> tuple[Credentials, ConnectionSettings]:
    """Checks the options together and reads the credentials; ConfigurationError says what to fix.

    Fills in the default --dead_letter_output (from `started`, the run's start, default now) in
    `options`, so that the run writes where its summary says.
    """
    from pipeline.sources import (
        SourceOptions,
        check_archive_has_files,
        check_pubsub_credentials,
        check_pubsub_names,
        check_source,
        dead_letter_topic,
    )

    o = options.view_as(BeamforceOptions)
    source_flag = check_source(options)
    if source_flag == "--input":
        o.input = with_directory(o.input)
    elif source_flag == "--archive":
        options.view_as(SourceOptions).archive = with_directory(options.view_as(SourceOptions).archive)
    input_files = _check_input(o.input) if source_flag == "--input" else frozenset()

    runner = options.view_as(StandardOptions).runner
    if runner is not None:
        _check_runner(options, runner)
    streaming = bool(options.view_as(StandardOptions).streaming)
    # Where this process reads and writes (a local runner), a path's filesystem must work here; remote
    # workers bring their own.
    workers = remote_workers(options, runner)
    local = workers is None
    if local:
        check_pubsub_credentials(options, environ)
        check_pubsub_names(options)
        servers = options.view_as(SourceOptions).kafka_bootstrap_servers
        if servers:
            check_kafka_brokers(servers)
    if local and source_flag == "--archive":
        archive = options.view_as(SourceOptions)
        check_filesystem("--archive", archive.archive, "read")
        check_archive_has_files(archive.archive, archive.since, archive.until)

    from pipeline.action_options import ActionOptions
    from pipeline.auth_options import AuthOptions, api_version, credentials_source
    from salesforce.oauth import check_login_url

    auth = options.view_as(AuthOptions).auth
    version = api_version(auth, o.salesforce_api_version)

    sandbox = o.sandbox
    if sandbox is not None and not _SANDBOX_NAME.match(sandbox):
        raise ConfigurationError(
            f"--sandbox {sandbox!r} is not a sandbox name: give the name only (letters and digits, "
            "starting with a letter), e.g. --sandbox uat"
        )
    if o.salesforce_login_url is not None and not o.salesforce_login_url.strip():
        # An unset variable in a script ($LOGIN_URL) must not send the credentials to production.
        raise ConfigurationError(
            f"--salesforce_login_url {o.salesforce_login_url!r} names nothing: give the org's login URL, "
            f"e.g. {PRODUCTION_LOGIN_URL} or the org's My Domain URL, or leave the option out"
        )
    login_url = o.salesforce_login_url or (SANDBOX_LOGIN_URL if sandbox else PRODUCTION_LOGIN_URL)
    if not re.match(r"^https://[^/\s]+(/\S*)?$", login_url):
        raise ConfigurationError(
            f"--salesforce_login_url {login_url!r} is not an https:// URL: Salesforce (and "
            f"simple-salesforce) only speak HTTPS, e.g. {PRODUCTION_LOGIN_URL}"
        )
    try:
        _ = urllib.parse.urlsplit(login_url).port  # raises for a port that is no number or out of range
    except ValueError:
        raise ConfigurationError(
            f"--salesforce_login_url {login_url!r} has no valid port: give a number from 1 to 65535 after "
            f"the host, or none, e.g. {PRODUCTION_LOGIN_URL}"
        ) from None
    if sandbox and auth == "client_credentials":
        raise ConfigurationError(
            f"--sandbox {sandbox!r} names a sandbox by its users' names, and --auth client_credentials logs "
            "in with no username: give the sandbox's My Domain URL with --salesforce_login_url instead"
        )

    ca_bundle = o.salesforce_ca_bundle
    if ca_bundle is not None and not os.path.isfile(ca_bundle):
        raise ConfigurationError(
            f"--salesforce_ca_bundle {ca_bundle!r} is not a file: give the path of a PEM file of "
            "CA certificates"
        )

    topic = dead_letter_topic(options)
    if topic and o.dead_letter_output:
        raise ConfigurationError(
            f"--dead_letter_output and a dead-letter topic ({topic}) name two places for dead letters: "
            "give one"
        )
    for flag, value in (
        ("--dead_letter_output", o.dead_letter_output),
        ("--summary_output", o.summary_output),
    ):
        if value is not None and not value.strip():
            raise ConfigurationError(f"{flag} {value!r} names nothing: give a path, or leave the option out")
    default = not o.dead_letter_output and not topic
    if default:
        o.dead_letter_output = default_dead_letter_output(started or datetime.now(UTC))
    if not topic:
        _check_remote_dead_letters(o.dead_letter_output, default, workers)
        _check_dead_letter_output(o.dead_letter_output, default)
        if local:
            check_filesystem("--dead_letter_output", o.dead_letter_output)
        if not default and not streaming:
            dry_run = options.view_as(ActionOptions).salesforce_dry_run
            _check_no_earlier_dead_letters(o.dead_letter_output, input_files, dry_run)

    if o.summary_output is not None:
        # A bounded run's summary is written by a worker; a streaming run's by this process.
        _check_summary_output(o.summary_output, None if streaming else workers)

    actions = options.view_as(ActionOptions)
    check_outputs_apart(
        [
            (flag, path, kind)
            for flag, path, kind in (
                ("--summary_output", o.summary_output, FILE),
                ("--dry_run_output", actions.dry_run_output, FILE),
                ("--dead_letter_output", None if topic else o.dead_letter_output, PREFIX),
                ("--read_output", actions.read_output, PREFIX),
            )
            if path
        ],
        [("--input", f) for f in sorted(input_files)]
        + [
            (flag, path)
            for flag, path in (
                ("--actions_config", actions.actions_config),
                ("--salesforce_credentials_file", o.salesforce_credentials_file),
                ("--salesforce_ca_bundle", ca_bundle),
            )
            if path
        ],
    )

    limit = o.api_usage_limit_percent
    if not 0 < limit <= NO_LIMIT_PERCENT:  # also refuses nan
        raise ConfigurationError(
            f"--api_usage_limit_percent {limit:g} is out of range: give a share of the org's daily API "
            "allocation more than 0 and at most 100, e.g. --api_usage_limit_percent 80 (100, the default, "
            "turns the limit off)"
        )
    rate = o.max_calls_per_second
    if rate is not None and not (rate >= MIN_CALLS_PER_SECOND and math.isfinite(rate)):
        raise ConfigurationError(
            f"--max_calls_per_second {rate:g} is not a rate: give a number of calls a second of at least "
            f"{MIN_CALLS_PER_SECOND:g} (one call in {1 / MIN_CALLS_PER_SECOND:g} s), e.g. "
            "--max_calls_per_second 5, or leave the option out for no limit"
        )
    for flag, value, example in (
        ("--dedup_ttl_seconds", o.dedup_ttl_seconds, "86400"),
        ("--max_buffering_seconds", o.max_buffering_seconds, "5"),
        ("--progress_seconds", o.progress_seconds, "60"),
    ):
        if not 0 < value <= MAX_SECONDS:
            # Past that, a timer or a wait overflows (threading's waits end at about 292 years).
            raise ConfigurationError(
                f"{flag} {value:g} is not a duration: give seconds above 0 and at most {MAX_SECONDS} (a "
                f"year), e.g. {flag} {example}"
            )
    if o.write_method == "bulk" and streaming:
        raise ConfigurationError(
            "--write_method bulk writes bounded input only, and this run is a streaming one (an unbounded "
            "source, or --streaming): leave --write_method out (auto writes streams through REST), or read "
            "the events as a backfill (files, --archive, --kafka_bounded)"
        )
    if o.batch_size is None:
        o.batch_size = STREAMING_BATCH_SIZE if streaming else BOUNDED_BATCH_SIZE
    if o.shards is None:
        o.shards = STREAMING_SHARDS if streaming else BOUNDED_SHARDS
    if o.on_api_limit is None:
        o.on_api_limit = "wait" if streaming else "dead_letter"
    if o.salesforce_credentials_file is not None and not os.path.isfile(o.salesforce_credentials_file):
        raise ConfigurationError(
            f"--salesforce_credentials_file {o.salesforce_credentials_file!r} is not a file: give the path "
            "of a file of NAME=VALUE lines (SALESFORCE_USERNAME=..., SALESFORCE_PASSWORD=..., "
            "SALESFORCE_SECURITY_TOKEN=...)"
        )

    check_login_url(auth, login_url)
    credentials = credentials_source(options).resolve(environ)
    if sandbox and credentials.username.lower().endswith("." + sandbox.lower()):
        raise ConfigurationError(
            f"SALESFORCE_USERNAME already ends with '.{sandbox}': set it to the production username, "
            "--sandbox appends the sandbox name"
        )
    settings = ConnectionSettings(
        login_url=login_url.rstrip("/"),
        sandbox=sandbox,
        ca_bundle=ca_bundle,
        api_version=version,
        auth=auth,
        api_usage_limit_percent=limit,
        # The job-wide rate, shared out over the shards: at most one writer per shard at a time.
        max_calls_per_second=rate / o.shards if rate is not None else None,
        duplicate_rules=options.view_as(ActionOptions).duplicate_rules,
    )
    return credentials, settings
