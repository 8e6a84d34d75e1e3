"""The source options: one source per run, checked together before anything is read."""

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.sources import check_pubsub_credentials, check_source, choose_source, dead_letter_topic
from salesforce.errors import ConfigurationError

SUB = "projects/my-project/subscriptions/events"
TOPIC = "projects/my-project/topics/dead-letters"


@pytest.mark.parametrize(
    "argv, flag, kind, unbounded, rereadable",
    [
        (["--input", "events/*.jsonl"], "--input", "files", False, True),
        (["--input", "exports/*.avro"], "--input", "files", False, True),
        (["--archive", "gs://bucket", "--since", "2024-03-01"], "--archive", "archive", False, True),
        (["--input_subscription", SUB], "--input_subscription", "pubsub", True, False),
        (["--input_topic", TOPIC], "--input_topic", "pubsub", True, False),
        (
            ["--kafka_bootstrap_servers", "k:9092", "--kafka_topic", "a,b"],
            "--kafka_topic",
            "kafka",
            True,
            False,
        ),
        (
            ["--kafka_bootstrap_servers", "k:9092", "--kafka_topic", "a", "--kafka_bounded"],
            "--kafka_topic",
            "kafka",
            False,
            False,
        ),
    ],
)
def test_each_source_is_chosen_with_its_mode(argv, flag, kind, unbounded, rereadable):
    options = PipelineOptions(argv)
    assert check_source(options) == flag
    source = choose_source(options)
    assert (source.kind, source.unbounded, source.rereadable) == (kind, unbounded, rereadable)


def test_an_avro_glob_is_read_as_archive_files_and_json_lines_as_lines():
    from transforms.read_archives import ReadArchive
    from transforms.read_events import ReadEvents

    assert isinstance(choose_source(PipelineOptions(["--input", "x/*.AVRO"])).transform, ReadArchive)
    assert isinstance(choose_source(PipelineOptions(["--input", "x/*.jsonl.gz"])).transform, ReadEvents)


def test_kafka_topics_may_be_repeated_or_comma_separated():
    options = PipelineOptions(
        ["--kafka_bootstrap_servers", "k:9092", "--kafka_topic", "a, b", "--kafka_topic", "c"]
    )
    assert choose_source(options).where == "a,b,c"


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--input", "e.jsonl", "--input_subscription", SUB],
            "--input and --input_subscription name two sources: a run reads one; give only one of them",
        ),
        (
            ["--input", "e.jsonl", "--since", "2024-03-01"],
            "--since selects the day folders of --archive: give --archive ROOT, or leave --since out",
        ),
        (
            ["--archive", "a", "--until", "2024-3-1"],
            "--until '2024-3-1' is not a date: give YYYY-MM-DD, e.g. 2024-03-01",
        ),
        (
            ["--archive", "a", "--since", "2024-03-02", "--until", "2024-03-01"],
            "--since 2024-03-02 is after --until 2024-03-01: give since <= until",
        ),
        (
            ["--input_subscription", "my-sub"],
            "--input_subscription 'my-sub' is not a subscription path: give "
            "projects/PROJECT/subscriptions/NAME",
        ),
        (
            ["--input_topic", "projects/p/subscriptions/s"],
            "--input_topic 'projects/p/subscriptions/s' is not a topic path: give "
            "projects/PROJECT/topics/NAME",
        ),
        (
            ["--input", "e.jsonl", "--dead_letter_topic", "t"],
            "--dead_letter_topic 't' is not a topic path: give projects/PROJECT/topics/NAME",
        ),
        (
            ["--kafka_topic", "a"],
            "Kafka needs its brokers: give --kafka_bootstrap_servers HOST:PORT (comma-separated for several)",
        ),
        (
            ["--kafka_bootstrap_servers", "k:9092", "--kafka_topic", " , "],
            "--kafka_topic is empty: give a topic name, e.g. --kafka_topic segment-events",
        ),
        (
            ["--input", "e.jsonl", "--kafka_bootstrap_servers", "k:9092"],
            "--kafka_bootstrap_servers is given without --kafka_topic or --dead_letter_kafka_topic: give the "
            "topic to read, or leave the brokers out",
        ),
        (
            ["--input", "e.jsonl", "--kafka_bounded"],
            "--kafka_bounded applies to --kafka_topic: give the topic, or leave it out",
        ),
        # Options of another source: silently ignored before, as if they had done something.
        (
            ["--input", "e.jsonl", "--kafka_group_id", "backfill"],
            "--kafka_group_id applies to --kafka_topic: give the topic, or leave it out",
        ),
        (
            ["--archive", "a/", "--kafka_reader", "xlang"],
            "--kafka_reader applies to --kafka_topic: give the topic, or leave it out",
        ),
        (
            ["--input", "e.jsonl", "--kafka_config", "security.protocol=SSL"],
            "--kafka_config applies to Kafka (--kafka_topic, --dead_letter_kafka_topic): give the topic, or "
            "leave it out",
        ),
        (
            [
                "--kafka_bootstrap_servers",
                "k:9092",
                "--kafka_topic",
                "t",
                "--pubsub_timestamp_attribute",
                "ts",
            ],
            "--pubsub_timestamp_attribute applies to Pub/Sub input (--input_subscription, --input_topic): "
            "give the subscription or topic, or leave it out",
        ),
        (
            ["--input", "e.jsonl", "--dead_letter_topic", TOPIC, "--dead_letter_kafka_topic", "d"],
            "--dead_letter_topic and --dead_letter_kafka_topic name two dead-letter sinks: give one",
        ),
    ],
)
def test_bad_source_options_say_what_to_fix(argv, message):
    with pytest.raises(ConfigurationError) as raised:
        check_source(PipelineOptions(argv))
    assert str(raised.value) == message


def test_a_dead_letter_topic_is_named_as_the_summary_shows_it():
    assert dead_letter_topic(PipelineOptions(["--input", "e"])) is None
    assert dead_letter_topic(PipelineOptions(["--dead_letter_topic", TOPIC])) == f"pubsub://{TOPIC}"
    assert dead_letter_topic(PipelineOptions(["--dead_letter_kafka_topic", "dl"])) == "kafka://dl"


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--input_subscription", SUB, "--runner", "DirectRunner"], "lost to this run"),
        (["--input_subscription", SUB, "--runner", "BundleBasedDirectRunner"], "lost to this run"),
        (["--input_subscription", SUB, "--runner", "DataflowRunner"], "delivered again"),
        (["--kafka_bootstrap_servers", "k:9092", "--kafka_topic", "a"], "restart in the group"),
        (
            ["--kafka_bootstrap_servers", "k:9092", "--kafka_topic", "a", "--kafka_bounded"],
            "reads these events again",
        ),
        (
            ["--kafka_topic", "a", "--kafka_max_idle_seconds", "5"],
            "only once the run has handled every event",
        ),
        (["--input", "events/*.jsonl"], "not duplicated"),
    ],
)
def test_an_interrupted_run_says_what_becomes_of_unwritten_events(argv, says):
    from pipeline.main import _unwritten_events

    assert says in _unwritten_events(PipelineOptions(argv))


PUBSUB_NO_CREDENTIALS = (
    "needs Google credentials on this machine, and none were found: run gcloud auth application-default "
    "login, or set GOOGLE_APPLICATION_CREDENTIALS to a service account's key file (or PUBSUB_EMULATOR_HOST "
    "for the Pub/Sub emulator)"
)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--input_subscription", SUB], "--input_subscription"),
        (["--input_topic", TOPIC], "--input_topic"),
        (["--input", "e.jsonl", "--dead_letter_topic", TOPIC], "--dead_letter_topic"),
    ],
)
def test_pubsub_without_google_credentials_is_refused_before_the_run(argv, flag, tmp_path, monkeypatch):
    """Without credentials a run wrote to Salesforce and then failed to publish its dead letters."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud configuration
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as raised:
        check_pubsub_credentials(PipelineOptions(argv), environ={})
    assert str(raised.value) == f"{flag} {PUBSUB_NO_CREDENTIALS}"
    # The Pub/Sub emulator needs none; files need none.
    check_pubsub_credentials(PipelineOptions(argv), environ={"PUBSUB_EMULATOR_HOST": "localhost:8085"})
    check_pubsub_credentials(PipelineOptions(["--input", "e.jsonl"]), environ={})
