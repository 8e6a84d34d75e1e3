"""Runner options are known whatever module defines them, and a runner that cannot load is a clear error."""

import sys

import pytest

from pipeline.options import unknown_flags
from salesforce.errors import ConfigurationError

ELSEWHERE = "tests.pipeline.runner_elsewhere.ElsewhereRunner"


def test_a_runner_defining_its_options_in_its_own_module_gets_them_accepted():
    sys.modules.pop("tests.pipeline.runner_elsewhere", None)  # as on a fresh start: nothing imported it

    assert unknown_flags(["--runner", ELSEWHERE, "--elsewhere_address", "tcp://x:8786"]) == []
    assert unknown_flags(["--runner", ELSEWHERE, "--elsewhere_adress", "tcp://x:8786"]) == [
        "--elsewhere_adress"
    ]


@pytest.mark.parametrize(
    "runner, says",
    [
        ("DaskRunner", "--runner DaskRunner: Unexpected pipeline runner: DaskRunner."),
        (
            "tests.pipeline.no_such_module.SomeRunner",
            "--runner tests.pipeline.no_such_module.SomeRunner cannot be loaded (No module named "
            "'tests.pipeline.no_such_module'): install its extra",
        ),
    ],
)
def test_a_runner_that_cannot_load_is_a_configuration_error(runner, says):
    with pytest.raises(ConfigurationError) as e:
        unknown_flags(["--runner", runner])
    assert str(e.value).startswith(says)


@pytest.mark.parametrize(
    "argv",
    [
        ["--runner", "FlinkRunner", "--flink_master", "localhost:8081"],
        ["--runner", "PortableRunner", "--job_endpoint", "localhost:8099", "--environment_type", "LOOPBACK"],
        ["--auth", "jwt", "--kafka_topic", "events", "--archive", "gs://b"],
    ],
)
def test_core_runner_and_project_options_are_known(argv):
    assert unknown_flags(argv) == []


ENV = {"SALESFORCE_USERNAME": "api@example.com", "SALESFORCE_PASSWORD": "pw", "SALESFORCE_SECURITY_TOKEN": ""}


@pytest.mark.parametrize(
    "flags, says",
    [
        ([], "--dead_letter_output 'dead_letters/20261202T000000Z/dead_letters' (the default) is on this"),
        (["--dead_letter_output", "/data/dead"], "--dead_letter_output '/data/dead' is on this machine"),
    ],
)
def test_dataflow_refuses_dead_letters_on_the_launching_machine(tmp_path, monkeypatch, flags, says):
    import datetime

    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import validate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "events.jsonl").write_text("{}\n")
    argv = ["--input", str(tmp_path / "events.jsonl"), "--runner", "DataflowRunner", *flags]
    started = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)
    with pytest.raises(ConfigurationError) as e:
        validate(PipelineOptions(argv), ENV, started=started)
    assert str(e.value).startswith(says)
    assert "which the workers of DataflowRunner cannot write to: give a prefix they all can" in str(e.value)


@pytest.mark.parametrize(
    ("flags", "workers"),
    [
        (
            ["--runner", "FlinkRunner", "--flink_master", "flink.example.com:8081"],
            "FlinkRunner (--flink_master flink.example.com:8081)",
        ),
        (
            ["--runner", "SparkRunner", "--spark_master_url", "spark://spark.example.com:7077"],
            "SparkRunner (--spark_master_url spark://spark.example.com:7077)",
        ),
        (["--runner", "FlinkRunner"], None),  # [auto]: an embedded Flink on this machine
        (["--runner", "FlinkRunner", "--flink_master", "localhost:8081"], None),
        (["--runner", "SparkRunner"], None),  # local[4]
        (["--runner", "DataflowRunner"], "DataflowRunner"),
        ([], None),
    ],
)
def test_runners_whose_workers_are_other_machines(flags, workers):
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from pipeline.options import remote_workers

    options = PipelineOptions(flags)
    assert remote_workers(options, options.view_as(StandardOptions).runner) == workers


def test_a_flink_cluster_refuses_dead_letters_on_the_launching_machine(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import validate

    (tmp_path / "events.jsonl").write_text("{}\n")
    argv = [
        "--input",
        str(tmp_path / "events.jsonl"),
        "--runner",
        "FlinkRunner",
        "--flink_master",
        "flink:8081",
    ]
    with pytest.raises(ConfigurationError) as e:
        validate(PipelineOptions([*argv, "--dead_letter_output", str(tmp_path / "dead")]), ENV)
    assert str(e.value) == (
        f"--dead_letter_output '{tmp_path / 'dead'}' is on this machine, which the workers of FlinkRunner "
        "(--flink_master flink:8081) cannot write to: give a prefix they all can, e.g. --dead_letter_output "
        "gs://bucket/beamforce/dead_letters (or s3://, hdfs://), or a dead-letter topic"
    )


def test_dataflow_takes_a_bucket_prefix_for_dead_letters(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import BeamforceOptions, validate

    (tmp_path / "events.jsonl").write_text("{}\n")
    argv = ["--input", str(tmp_path / "events.jsonl"), "--runner", "DataflowRunner"]
    options = PipelineOptions([*argv, "--dead_letter_output", "gs://bucket/dead"])
    validate(options, ENV)
    assert options.view_as(BeamforceOptions).dead_letter_output == "gs://bucket/dead"


FLINK_CLUSTER = ["--runner", "FlinkRunner", "--flink_master", "flink:8081"]


def _validate_summary(tmp_path, *flags: str) -> None:
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import validate

    (tmp_path / "events.jsonl").write_text("{}\n")
    # Remote workers write the dead letters to a bucket; a local run to this machine.
    dead_letters = "s3://bucket/dead" if "--runner" in flags else str(tmp_path / "dead")
    argv = ["--input", str(tmp_path / "events.jsonl"), "--dead_letter_output", dead_letters, *flags]
    validate(PipelineOptions(argv), ENV)


def test_a_flink_cluster_refuses_a_summary_file_on_the_launching_machine(tmp_path):
    # A bounded run's summary is written by one of the workers (pipeline/summary_stage.py).
    path = tmp_path / "summary.json"
    with pytest.raises(ConfigurationError) as e:
        _validate_summary(tmp_path, *FLINK_CLUSTER, "--summary_output", str(path))
    assert str(e.value) == (
        f"--summary_output '{path}' is on this machine, which the workers of FlinkRunner (--flink_master "
        "flink:8081) cannot write to: give a path they all can, e.g. --summary_output "
        "gs://bucket/beamforce/summary.json (or s3://, hdfs://)"
    )


def test_a_remote_summary_path_is_taken_and_a_streaming_run_writes_its_own_summary_here(tmp_path):
    _validate_summary(tmp_path, *FLINK_CLUSTER, "--summary_output", "s3://bucket/summary.json")
    # A streaming run's summary comes from the launching process when it stops: a local file is fine.
    _validate_summary(tmp_path, *FLINK_CLUSTER, "--streaming", "--summary_output", str(tmp_path / "s.json"))


def test_a_summary_path_without_its_filesystem_is_refused(tmp_path):
    with pytest.raises(ConfigurationError) as e:
        _validate_summary(tmp_path, "--summary_output", "nosuchfs://bucket/summary.json")
    message = str(e.value)
    assert message.startswith("--summary_output 'nosuchfs://bucket/summary.json' cannot be written: Unable")
    assert message.endswith(
        "(install the Beam extra for its scheme, e.g. pip install 'beamforce[gcp]' for gs://)"
    )
