"""Where events come from and where dead letters go: the source options, their checks, and the transforms
they choose. Exactly one source per run; an unbounded one (Pub/Sub, Kafka unless --kafka_bounded) makes the
run a streaming one."""

import argparse
import dataclasses
import glob
import os
import re
from collections.abc import Mapping

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from salesforce.errors import ConfigurationError

KAFKA_READERS = ("python", "xlang")
DEFAULT_KAFKA_GROUP_ID = "beamforce"
_PUBSUB_SUBSCRIPTION = re.compile(r"^projects/[^/\s]+/subscriptions/[^/\s]+$")
_PUBSUB_TOPIC = re.compile(r"^projects/[^/\s]+/topics/[^/\s]+$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SourceOptions(PipelineOptions):
    """Streams and archives to read, beside --input (files), and the topics dead letters may go to."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--archive",
            metavar="ROOT",
            default=None,
            help="Read a Segment archive (S3/GCS layout: segment-logs/<source id>/<received day, epoch "
            "ms>/*.gz, JSON lines, or .avro files) from ROOT: a local folder, gs://bucket or s3://bucket "
            "(with the matching Beam extra installed), the segment-logs folder, or one source's folder. "
            "Only the day folders --since/--until select are listed.",
        )
        parser.add_argument(
            "--since",
            metavar="YYYY-MM-DD",
            default=None,
            help="With --archive: read the days received on or after this date (UTC). Default: from the "
            "first day.",
        )
        parser.add_argument(
            "--until",
            metavar="YYYY-MM-DD",
            default=None,
            help="With --archive: read the days received on or before this date (UTC). Default: to the "
            "last day.",
        )
        parser.add_argument(
            "--input_subscription",
            metavar="projects/P/subscriptions/S",
            default=None,
            help="Stream events from this Pub/Sub subscription, one event a message (streaming; needs the "
            "pubsub extra). On Dataflow a message is acknowledged once its event is handled; Beam's local "
            "DirectRunner acknowledges messages as it pulls them, so a local run stopped before its "
            "buffers flush (--max_buffering_seconds) loses the events it held: run production on Dataflow.",
        )
        parser.add_argument(
            "--input_topic",
            metavar="projects/P/topics/T",
            default=None,
            help="Stream events from this Pub/Sub topic through a subscription the runner creates for the "
            "job: only messages published after the job starts are read. Prefer --input_subscription.",
        )
        parser.add_argument(
            "--pubsub_timestamp_attribute",
            metavar="NAME",
            default=None,
            help="With Pub/Sub: the message attribute holding each event's time (RFC 3339 or epoch "
            "milliseconds), for the runner's watermark. Default: the event's own timestamp when earlier "
            "than its publish time. Late events are still merged by their own timestamp; this only "
            "moves the watermark.",
        )
        parser.add_argument(
            "--dead_letter_topic",
            metavar="projects/P/topics/T",
            default=None,
            help="Publish dead letters to this Pub/Sub topic (one JSON line a message, attributes stage, "
            "reason and retryable) instead of writing files. Create a subscription on it before the run: "
            "Pub/Sub keeps a topic's messages only for its subscriptions.",
        )
        parser.add_argument(
            "--kafka_bootstrap_servers",
            metavar="HOST:PORT[,...]",
            default=None,
            help="Read events from Kafka through these brokers (with --kafka_topic); streaming unless "
            "--kafka_bounded.",
        )
        parser.add_argument(
            "--kafka_topic",
            metavar="TOPIC",
            action="append",
            default=None,
            help="A Kafka topic to read (repeat the option, or separate topics with commas).",
        )
        parser.add_argument(
            "--kafka_group_id",
            metavar="GROUP",
            default=DEFAULT_KAFKA_GROUP_ID,
            help="The Kafka consumer group: reading starts at its committed offsets (else the earliest), "
            "and offsets are committed only once a bundle's events are handled (at least once). Default "
            f"{DEFAULT_KAFKA_GROUP_ID}.",
        )
        parser.add_argument(
            "--kafka_config",
            metavar="KEY=VALUE",
            action="append",
            default=None,
            help="A librdkafka setting passed to the consumer (repeatable), e.g. security.protocol=SASL_SSL, "
            "sasl.mechanism=PLAIN, sasl.username=svc. A secret's value names where to read it: "
            "sasl.password=env:KAFKA_PASSWORD or =file:/run/secrets/kafka, so it never sits in the job.",
        )
        parser.add_argument(
            "--kafka_bounded",
            action="store_true",
            default=False,
            help="Read the topics to the end offsets present at the start, then finish: a topic replayed "
            "as a backfill (batch mode: each record merged over the whole input).",
        )
        parser.add_argument(
            "--kafka_max_idle_seconds",
            type=float,
            metavar="S",
            default=None,
            help="Stop reading a partition once it has had no new record for S seconds; when every "
            "partition has stopped, the run writes what it read and ends with its summary (a catch-up "
            "run in batch mode, as --kafka_bounded, which the local runners can run). Default: read for "
            "ever (streaming).",
        )
        parser.add_argument(
            "--kafka_reader",
            choices=KAFKA_READERS,
            default="python",
            help="python (default): the pipeline's own reader on confluent-kafka, on every runner. xlang: "
            "Beam's cross-language ReadFromKafka (Java), for Dataflow and Flink; it needs a Java expansion "
            "service.",
        )
        parser.add_argument(
            "--dead_letter_kafka_topic",
            metavar="TOPIC",
            default=None,
            help="Produce dead letters to this Kafka topic (through --kafka_bootstrap_servers and "
            "--kafka_config; one JSON line a message, headers stage, reason and retryable) instead of "
            "writing files.",
        )


@dataclasses.dataclass(frozen=True)
class Source:
    """The chosen source: its transform (giving Result(EventLines, dead letters)), whether it never ends
    (a streaming run), and whether an event can be read again where it came from (files), so that
    failed writes rebuild their dead letters by reading instead of carrying every event's text."""

    kind: str
    where: str
    transform: beam.PTransform
    unbounded: bool
    rereadable: bool


def _given(options: PipelineOptions) -> list[str]:
    from pipeline.options import BeamforceOptions

    o, s = options.view_as(BeamforceOptions), options.view_as(SourceOptions)
    given = []
    for flag, value in (
        ("--input", o.input),
        ("--archive", s.archive),
        ("--input_subscription", s.input_subscription),
        ("--input_topic", s.input_topic),
        ("--kafka_topic", s.kafka_topic),
    ):
        if value:
            given.append(flag)
    return given


def _kafka_topics(values: list[str]) -> list[str]:
    from transforms.read_kafka import parse_topics

    return parse_topics(values)


def _check_archive(path: str) -> None:
    """A local archive root must exist: a typo would read nothing and end "done"."""
    if "://" not in path and not glob.has_magic(path) and not os.path.exists(path):
        raise ConfigurationError(
            f"--archive {path!r} does not exist: give the folder that holds segment-logs/ (or that folder, "
            "or one source's folder), or a glob of archive files"
        )


def check_archive_has_files(path: str, since: str | None, until: str | None) -> None:
    """An archive that exists but would read no file (a folder of plain files, an empty folder, a day
    folder given as the root, a --since past the last day) is a mistake, not a run with nothing to do."""
    from apache_beam.io.filesystems import FileSystems

    from transforms.read_archives import archive_day_folders, is_archive_root, parse_day

    if not is_archive_root(path):
        if not FileSystems.match([path])[0].metadata_list:
            raise ConfigurationError(
                f"--archive {path!r} matches no file: check the path, and quote the glob so that the shell "
                "does not expand it"
            )
        return
    days = archive_day_folders(path, parse_day(since), parse_day(until))
    if not days:
        window = f" from {since or 'the first day'} to {until or 'the last'}" if since or until else ""
        raise ConfigurationError(
            f"--archive {path!r} has no day folder of Segment's layout{window} "
            "(segment-logs/<source>/<day, a Unix time in ms>/): give the folder that holds segment-logs/ (or "
            "that folder, or one source's folder), or a glob of archive files"
            + (", or other --since/--until days" if since or until else "")
        )
    if not any(FileSystems.match([FileSystems.join(day, "*")])[0].metadata_list for day in days):
        raise ConfigurationError(
            f"--archive {path!r}: its {len(days)} day folder(s) hold no file: check the archive's path"
        )


def check_source(options: PipelineOptions) -> str:
    """Checks the source options together; returns the one source flag given. ConfigurationError says
    what to fix. Nothing is read or connected to."""
    s = options.view_as(SourceOptions)
    given = _given(options)
    if not given:
        raise ConfigurationError(
            "--input is required: give the event files to read, e.g. --input 'events/*.jsonl' (or read an "
            "archive with --archive, or a stream with --input_subscription, --input_topic or --kafka_topic)"
        )
    if len(given) > 1:
        raise ConfigurationError(
            f"{' and '.join(given)} name two sources: a run reads one; give only one of them"
        )
    flag = given[0]
    if (s.since or s.until) and flag != "--archive":
        which = "--since" if s.since else "--until"
        raise ConfigurationError(
            f"{which} selects the day folders of --archive: give --archive ROOT, or leave {which} out"
        )
    for name, value in (("--since", s.since), ("--until", s.until)):
        if value is not None and not _DAY.match(value):
            raise ConfigurationError(f"{name} {value!r} is not a date: give YYYY-MM-DD, e.g. 2024-03-01")
    if s.since and s.until and s.since > s.until:
        raise ConfigurationError(f"--since {s.since} is after --until {s.until}: give since <= until")
    if s.input_subscription is not None and not _PUBSUB_SUBSCRIPTION.match(s.input_subscription):
        raise ConfigurationError(
            f"--input_subscription {s.input_subscription!r} is not a subscription path: give "
            "projects/PROJECT/subscriptions/NAME"
        )
    for name, value in (("--input_topic", s.input_topic), ("--dead_letter_topic", s.dead_letter_topic)):
        if value is not None and not _PUBSUB_TOPIC.match(value):
            raise ConfigurationError(
                f"{name} {value!r} is not a topic path: give projects/PROJECT/topics/NAME"
            )
    if s.dead_letter_topic and s.dead_letter_kafka_topic:
        raise ConfigurationError(
            "--dead_letter_topic and --dead_letter_kafka_topic name two dead-letter sinks: give one"
        )
    kafka = flag == "--kafka_topic" or s.dead_letter_kafka_topic
    if kafka and not (s.kafka_bootstrap_servers or "").strip():
        raise ConfigurationError(
            "Kafka needs its brokers: give --kafka_bootstrap_servers HOST:PORT (comma-separated for several)"
        )
    if flag == "--kafka_topic" and not _kafka_topics(s.kafka_topic):
        raise ConfigurationError(
            "--kafka_topic is empty: give a topic name, e.g. --kafka_topic segment-events"
        )
    if s.kafka_bootstrap_servers and flag != "--kafka_topic" and not s.dead_letter_kafka_topic:
        raise ConfigurationError(
            "--kafka_bootstrap_servers is given without --kafka_topic or --dead_letter_kafka_topic: give the "
            "topic to read, or leave the brokers out"
        )
    idle = s.kafka_max_idle_seconds
    if idle is not None and not (0 < idle < float("inf")):
        raise ConfigurationError(
            f"--kafka_max_idle_seconds {idle:g} is not a duration: give seconds above 0, e.g. 30"
        )
    if idle is not None and flag != "--kafka_topic":
        raise ConfigurationError(
            "--kafka_max_idle_seconds applies to --kafka_topic: give the topic, or leave it out"
        )
    for given, option in (
        (s.kafka_bounded, "--kafka_bounded"),
        (s.kafka_group_id != DEFAULT_KAFKA_GROUP_ID, "--kafka_group_id"),
        (s.kafka_reader != "python", "--kafka_reader"),
    ):
        if given and flag != "--kafka_topic":
            raise ConfigurationError(f"{option} applies to --kafka_topic: give the topic, or leave it out")
    if s.kafka_config and not kafka:
        raise ConfigurationError(
            "--kafka_config applies to Kafka (--kafka_topic, --dead_letter_kafka_topic): give the topic, or "
            "leave it out"
        )
    if s.pubsub_timestamp_attribute and flag not in ("--input_subscription", "--input_topic"):
        raise ConfigurationError(
            "--pubsub_timestamp_attribute applies to Pub/Sub input (--input_subscription, --input_topic): "
            "give the subscription or topic, or leave it out"
        )
    if s.kafka_config:
        from transforms.read_kafka import parse_config, validate_config

        try:
            validate_config(parse_config(s.kafka_config))
        except ValueError as e:
            raise ConfigurationError(f"--kafka_config: {e}") from None
    if flag == "--archive":
        _check_archive(s.archive)
    return flag


def choose_source(options: PipelineOptions) -> Source:
    """The source the options name (checked with check_source first)."""
    from pipeline.options import BeamforceOptions

    flag = check_source(options)
    o, s = options.view_as(BeamforceOptions), options.view_as(SourceOptions)
    if flag == "--input":
        if _is_avro(o.input):
            from transforms.read_archives import ReadArchive

            return Source("files", o.input, ReadArchive(o.input), unbounded=False, rereadable=True)
        from transforms.read_events import ReadEvents

        return Source("files", o.input, ReadEvents(o.input), unbounded=False, rereadable=True)
    if flag == "--archive":
        from transforms.read_archives import ReadArchive

        try:
            read = ReadArchive(s.archive, s.since, s.until)
        except ValueError as e:
            raise ConfigurationError(f"--archive: {e}") from None
        return Source("archive", s.archive, read, unbounded=False, rereadable=True)
    if flag in ("--input_subscription", "--input_topic"):
        try:
            from transforms.read_pubsub import ReadPubSub

            read = ReadPubSub(
                subscription=s.input_subscription,
                topic=s.input_topic,
                timestamp_attribute=s.pubsub_timestamp_attribute,
            )
        except ImportError as e:
            raise ConfigurationError(f"{flag} needs Pub/Sub: {e}") from None
        except ValueError as e:
            raise ConfigurationError(f"{flag}: {e}") from None
        return Source("pubsub", s.input_subscription or s.input_topic, read, unbounded=True, rereadable=False)
    topics = _kafka_topics(s.kafka_topic)
    try:
        read = _kafka_reader(s, topics)
    except ImportError as e:
        raise ConfigurationError(f"--kafka_topic needs a Kafka client: {e}") from None
    except ValueError as e:
        raise ConfigurationError(f"--kafka_topic: {e}") from None
    # A read that stops when idle ends like a bounded one: the run merges over all it read (batch).
    ends = s.kafka_bounded or s.kafka_max_idle_seconds is not None
    return Source("kafka", ",".join(topics), read, unbounded=not ends, rereadable=False)


# Local runners that cannot run an unbounded Python splittable DoFn (the Kafka reader) in streaming
# mode: apache-beam 2.77's BundleBasedDirectRunner fails to build it ("ProcessKeyedElements/GroupByKey
# ... was not replaced as expected"), and the FnApiRunner does not fire the streaming stages'
# processing-time timers ("watermark-pending bundles did not execute").
LOCAL_RUNNERS = ("BundleBasedDirectRunner", "DirectRunner", "FnApiRunner", "SwitchingDirectRunner")


def check_runner(source: Source, runner: object, streaming: bool) -> None:
    """Refuses a source the runner cannot run, before anything is read, saying what to use instead."""
    name = runner if isinstance(runner, str) else type(runner).__name__
    if source.kind == "kafka" and streaming and name in LOCAL_RUNNERS:
        raise ConfigurationError(
            f"streaming from Kafka needs a runner that runs Python splittable DoFns unbounded (Dataflow, "
            f"Flink or Spark through --runner PortableRunner, Prism); the local {name} cannot. Locally, "
            "read what is there and stop: --kafka_bounded (to the end offsets present at the start) or "
            "--kafka_max_idle_seconds S (until no record came for S seconds)"
        )


def _kafka_reader(s: SourceOptions, topics: list[str]) -> beam.PTransform:
    from transforms.read_kafka import ReadKafka, parse_config

    config = parse_config(s.kafka_config or ())
    servers = s.kafka_bootstrap_servers
    if s.kafka_reader == "xlang":
        from transforms.read_kafka import ReadKafkaXlang

        return ReadKafkaXlang(servers, topics, s.kafka_group_id, config, bounded=s.kafka_bounded)
    return ReadKafka(
        servers,
        topics,
        s.kafka_group_id,
        config,
        bounded=s.kafka_bounded,
        max_idle_seconds=s.kafka_max_idle_seconds,
    )


def _is_avro(pattern: str) -> bool:
    """An --input glob of Avro files (e.g. 'exports/*.avro') is read as an archive's files are."""
    return pattern.lower().endswith(".avro")


def dead_letter_topic(options: PipelineOptions) -> str | None:
    """Where dead letters are published instead of files, as the summary names it (None: files)."""
    s = options.view_as(SourceOptions)
    if s.dead_letter_topic:
        return f"pubsub://{s.dead_letter_topic}"
    if s.dead_letter_kafka_topic:
        return f"kafka://{s.dead_letter_kafka_topic}"
    return None


def check_pubsub_credentials(options: PipelineOptions, environ: Mapping[str, str] = os.environ) -> None:
    """Pub/Sub from this process (a local runner) needs Google credentials here: found now, not once the
    run has written to Salesforce and publishes its dead letters. The Pub/Sub emulator needs none."""
    s = options.view_as(SourceOptions)
    flags = [
        flag
        for flag, value in (
            ("--input_subscription", s.input_subscription),
            ("--input_topic", s.input_topic),
            ("--dead_letter_topic", s.dead_letter_topic),
        )
        if value
    ]
    if not flags or environ.get("PUBSUB_EMULATOR_HOST"):
        return
    try:
        import google.auth
        import google.auth.exceptions
    except ImportError:
        return  # the Pub/Sub client is missing too: the source or sink says so when it is built
    try:
        google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError:
        raise ConfigurationError(
            f"{flags[0]} needs Google credentials on this machine, and none were found: run gcloud auth "
            "application-default login, or set GOOGLE_APPLICATION_CREDENTIALS to a service account's key "
            "file (or PUBSUB_EMULATOR_HOST for the Pub/Sub emulator)"
        ) from None


# Seconds to wait for Pub/Sub's answer about one name.
PUBSUB_CHECK_SECONDS = 15.0


def check_pubsub_names(options: PipelineOptions) -> None:
    """A subscription or topic that does not exist is found now: a missing --dead_letter_topic would
    otherwise end the run at its first dead letter, after Salesforce was written, and that event with it.

    Only an answer of NOT_FOUND refuses the run: an identity that may publish or pull but not read the
    name's settings (roles/pubsub.publisher, roles/pubsub.subscriber) is told PERMISSION_DENIED, and an
    unreachable Pub/Sub is for the run itself to report.
    """
    s = options.view_as(SourceOptions)
    names = [
        (flag, name, kind)
        for flag, name, kind in (
            ("--input_subscription", s.input_subscription, "subscription"),
            ("--input_topic", s.input_topic, "topic"),
            ("--dead_letter_topic", s.dead_letter_topic, "topic"),
        )
        if name
    ]
    if not names:
        return
    try:
        from google.api_core import exceptions
        from google.cloud import pubsub
    except ImportError:
        return  # the source or sink says so when it is built
    for flag, name, kind in names:
        try:
            if kind == "topic":
                publisher = pubsub.PublisherClient()
                try:
                    publisher.get_topic(topic=name, retry=None, timeout=PUBSUB_CHECK_SECONDS)
                finally:
                    publisher.transport.close()
            else:
                with pubsub.SubscriberClient() as subscriber:
                    subscriber.get_subscription(subscription=name, retry=None, timeout=PUBSUB_CHECK_SECONDS)
        except exceptions.NotFound:
            raise ConfigurationError(
                f"{flag} {name!r}: Pub/Sub has no such {kind} (or not in that project): create it "
                f"(gcloud pubsub {kind}s create ...), or give the full name of one that exists, "
                f"projects/PROJECT/{kind}s/NAME"
            ) from None
        except Exception:  # noqa: BLE001  (permission to read its settings, an unreachable Pub/Sub, ...)
            continue


def dead_letter_sink(options: PipelineOptions) -> beam.PTransform | None:
    """The transform that publishes dead letters to a topic, or None when they go to files."""
    s = options.view_as(SourceOptions)
    if s.dead_letter_topic:
        from transforms.write_pubsub import WriteDeadLettersToPubSub

        return WriteDeadLettersToPubSub(s.dead_letter_topic)
    if s.dead_letter_kafka_topic:
        from transforms.read_kafka import parse_config
        from transforms.write_kafka import WriteDeadLettersToKafka

        return WriteDeadLettersToKafka(
            s.kafka_bootstrap_servers, s.dead_letter_kafka_topic, parse_config(s.kafka_config or ())
        )
    return None
