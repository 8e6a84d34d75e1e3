"""The Flex Template's metadata.json: every pipeline option described, nothing stale, no secret in it."""

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.options import BeamforceOptions, unknown_flags
from pipeline.sources import SourceOptions
from tools import flex_metadata
from tools.flex_metadata import (
    METADATA_PATH,
    SecretParameterError,
    differences,
    generate,
    launcher_argv,
    option_classes,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
ENTRY_FILE = ROOT / "deploy" / "flex-template" / "main.py"
# The fields of Dataflow's ParameterMetadata and ParameterType (google.dataflow.v1beta3, as gcloud's
# generated dataflow_v1b3 messages define them): anything else is not a template parameter field.
PARAMETER_FIELDS = {
    "name",
    "label",
    "helpText",
    "isOptional",
    "regexes",
    "paramType",
    "enumOptions",
    "defaultValue",
    "customMetadata",
    "groupName",
    "hiddenUi",
    "parentName",
    "parentTriggerValues",
}
PARAM_TYPES = {
    "DEFAULT",
    "TEXT",
    "GCS_READ_BUCKET",
    "GCS_WRITE_BUCKET",
    "GCS_READ_FILE",
    "GCS_WRITE_FILE",
    "GCS_READ_FOLDER",
    "GCS_WRITE_FOLDER",
    "PUBSUB_TOPIC",
    "PUBSUB_SUBSCRIPTION",
    "BIGQUERY_TABLE",
    "JAVASCRIPT_UDF_FILE",
    "SERVICE_ACCOUNT",
    "MACHINE_TYPE",
    "KMS_KEY_NAME",
    "WORKER_REGION",
    "WORKER_ZONE",
    "BOOLEAN",
    "ENUM",
    "NUMBER",
    "KAFKA_READ_TOPIC",
    "KAFKA_WRITE_TOPIC",
}
TEMPLATE_FIELDS = {
    "name",
    "description",
    "parameters",
    "streaming",
    "supportsAtLeastOnce",
    "supportsExactlyOnce",
    "defaultStreamingMode",
}


@pytest.fixture(scope="module")
def committed():
    return json.loads(METADATA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def generated():
    return generate()


def _flags(cls) -> set[str]:
    parser = argparse.ArgumentParser(add_help=False)
    cls._add_argparse_args(parser)
    return {s[2:] for a in parser._actions for s in a.option_strings if s.startswith("--")}


def test_committed_metadata_is_what_the_options_generate(committed, generated):
    problems = differences(committed, generated)
    assert not problems, (
        "deploy/flex-template/metadata.json is out of date with the pipeline's options:\n  "
        + "\n  ".join(problems)
        + "\nRegenerate it: .venv/bin/python -m tools.flex_metadata (and commit the file)"
    )
    assert METADATA_PATH.read_text(encoding="utf-8") == render(generated), (
        "metadata.json is not laid out as the tool writes it: .venv/bin/python -m tools.flex_metadata"
    )


def test_the_project_option_classes_are_found():
    classes = option_classes()
    # Module order (pipeline/options.py before pipeline/sources.py), whatever other classes join them.
    assert classes.index(BeamforceOptions) < classes.index(SourceOptions)
    assert all(c.__module__.split(".")[0] in ("pipeline", "transforms", "salesforce") for c in classes)
    assert all(issubclass(c, PipelineOptions) for c in classes)


def test_every_option_of_every_class_is_a_parameter_and_nothing_else(committed):
    names = [p["name"] for p in committed["parameters"]]
    assert len(names) == len(set(names))
    expected = set().union(*(_flags(c) for c in option_classes()))
    assert set(names) == expected
    # Counted from pipeline/options.py and pipeline/sources.py as they are today: a class that the search
    # stopped finding would shrink this.
    assert {"input", "summary_output", "progress_seconds"} <= set(names)
    assert {"archive", "input_subscription", "kafka_reader", "dead_letter_kafka_topic"} <= set(names)


def test_every_parameter_is_a_flag_the_pipeline_accepts(committed):
    samples = {"BOOLEAN": "true", "NUMBER": "1"}
    for p in committed["parameters"]:
        value = p["enumOptions"][0]["value"] if "enumOptions" in p else samples.get(p["paramType"], "x")
        assert unknown_flags(launcher_argv([f"--{p['name']}={value}"])) == [], p["name"]


def test_every_parameter_is_described_in_dataflows_terms(committed):
    assert set(committed) <= TEMPLATE_FIELDS
    assert committed["name"] == "beamforce"
    for p in committed["parameters"]:
        assert set(p) <= PARAMETER_FIELDS, p["name"]
        assert p["label"].strip() and p["helpText"].strip(), p["name"]
        assert p["isOptional"] is True, p["name"]
        assert p["paramType"] in PARAM_TYPES, p["name"]
        assert "%(" not in p["helpText"] and "%%" not in p["helpText"], p["name"]


@pytest.mark.parametrize(
    ("name", "param_type", "regexes"),
    [
        ("always_enabled", "BOOLEAN", ["^(true|false)$"]),
        ("kafka_bounded", "BOOLEAN", ["^(true|false)$"]),
        ("address_mapping", "ENUM", ["^(billing|shipping|both)$"]),
        ("kafka_reader", "ENUM", ["^(python|xlang)$"]),
        ("shards", "NUMBER", ["^[1-9][0-9]*$"]),
        ("bulk_threshold", "NUMBER", ["^[0-9]+$"]),
        ("dedup_ttl_seconds", "NUMBER", [r"^-?[0-9]+(\.[0-9]+)?$"]),
        ("auth", "ENUM", ["^(password|jwt|client_credentials|refresh_token)$"]),
        ("salesforce_secret", "TEXT", ["^projects/[^/]+/secrets/[^/]+/versions/[^/]+$"]),
        ("input_subscription", "PUBSUB_SUBSCRIPTION", ["^projects/[^/]+/subscriptions/[^/]+$"]),
        ("dead_letter_topic", "PUBSUB_TOPIC", ["^projects/[^/]+/topics/[^/]+$"]),
        ("since", "TEXT", ["^[0-9]{4}-[0-9]{2}-[0-9]{2}$"]),
        ("salesforce_login_url", "TEXT", [r"^https://\S+$"]),
        ("input", "TEXT", None),
        ("kafka_config", "TEXT", None),
    ],
)
def test_parameter_types_and_regexes(committed, name, param_type, regexes):
    (p,) = [p for p in committed["parameters"] if p["name"] == name]
    assert p["paramType"] == param_type
    assert p.get("regexes") == regexes


def test_help_text_is_the_options_own_help_expanded(committed):
    by_name = {p["name"]: p for p in committed["parameters"]}
    # "P%%" in the option's help is argparse's escape for one percent sign.
    assert "reaches P% of its daily allocation" in by_name["api_usage_limit_percent"]["helpText"]
    assert by_name["always_enabled"]["helpText"].endswith("are still filtered. In a template: true or false.")
    assert by_name["kafka_config"]["helpText"].endswith("In a template: several values separated by ';'.")
    assert by_name["address_mapping"]["enumOptions"] == [
        {"value": "billing", "label": "billing"},
        {"value": "shipping", "label": "shipping"},
        {"value": "both", "label": "both"},
    ]
    assert by_name["salesforce_api_version"]["label"] == "Salesforce API version"
    assert by_name["input_subscription"]["label"] == "Input subscription"


def test_no_parameter_holds_a_secret(committed):
    for p in committed["parameters"]:
        name = p["name"].lower()
        if any(word in name for word in ("password", "secret", "token")):
            # Only references: a file, an environment variable's name, or a Secret Manager version.
            assert name.endswith(("_file", "_env", "_var")) or p.get("regexes", [""])[0].startswith(
                "^projects/[^/]+/secrets/"
            ), f"{p['name']} looks like a secret value in the template's parameters"


class _LeakyOptions:
    """Not a PipelineOptions subclass, so that it never joins the pipeline's own flags."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--salesforce_password", help="The password.")


class _ReferenceOptions:
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--salesforce_token_file", metavar="FILE", help="Where the token is.")
        parser.add_argument(
            "--salesforce_secret", metavar="projects/P/secrets/S/versions/V", help="Secret Manager version."
        )
        parser.add_argument("--kafka_secret", metavar="REFERENCE", help="Where Kafka's password is.")


class _UndescribedOptions:
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--mystery")


def test_an_option_holding_a_secret_is_refused():
    with pytest.raises(
        SecretParameterError, match=r"--salesforce_password \(_LeakyOptions\) looks like a secret"
    ):
        generate([_LeakyOptions])


def test_references_to_secrets_are_parameters():
    params = generate([_ReferenceOptions])["parameters"]
    assert [p["name"] for p in params] == ["salesforce_token_file", "salesforce_secret", "kafka_secret"]
    assert "regexes" not in params[0]
    # A secret pasted where its reference belongs does not match, and the launch is refused.
    assert params[1]["regexes"] == params[2]["regexes"] == ["^projects/[^/]+/secrets/[^/]+/versions/[^/]+$"]


def test_an_option_without_help_is_refused():
    with pytest.raises(ValueError, match=r"--mystery \(_UndescribedOptions\) has no help"):
        generate([_UndescribedOptions])


def test_a_flag_defined_twice_is_refused():
    with pytest.raises(ValueError, match="--salesforce_token_file is defined by both"):
        generate([_ReferenceOptions, _ReferenceOptions])


def test_differences_name_missing_stale_and_changed_options(generated):
    committed = json.loads(render(generated))
    committed["parameters"] = [p for p in committed["parameters"] if p["name"] != "shards"]
    committed["parameters"].append(
        {"name": "gone_option", "label": "Gone", "helpText": "x", "isOptional": True}
    )
    committed["parameters"] = [
        {**p, "helpText": "old words"} if p["name"] == "input" else p for p in committed["parameters"]
    ]
    committed["streaming"] = False
    assert differences(committed, generated) == [
        "stale: --input differs from its option in helpText",
        "missing: --shards is a pipeline option but not a template parameter",
        "stale: --gone_option is a template parameter but no pipeline option",
        "stale: the template's 'streaming' differs",
    ]


def test_check_exits_1_naming_the_missing_option_and_the_fix(tmp_path, generated):
    stale = json.loads(render(generated))
    stale["parameters"] = [p for p in stale["parameters"] if p["name"] != "kafka_bounded"]
    path = tmp_path / "metadata.json"
    path.write_text(render(stale), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tools.flex_metadata", "--check", "--path", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert (
        f"{path}: missing: --kafka_bounded is a pipeline option but not a template parameter" in done.stderr
    )
    assert "Regenerate it with: python -m tools.flex_metadata (and commit metadata.json)" in done.stderr


def test_writing_then_checking(tmp_path, generated):
    path = tmp_path / "metadata.json"
    assert flex_metadata.main(["--path", str(path)]) == 0
    assert json.loads(path.read_text(encoding="utf-8")) == generated
    assert flex_metadata.main(["--check", "--path", str(path)]) == 0


def _entry():
    spec = importlib.util.spec_from_file_location("flex_template_main", ENTRY_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["--always_enabled=true"], ["--always_enabled"]),
        (["--always_enabled=True"], ["--always_enabled"]),
        (["--always_enabled=false", "--shards=4"], ["--shards=4"]),
        (["--kafka_config=security.protocol=SASL_SSL; sasl.mechanism=PLAIN"],
         ["--kafka_config=security.protocol=SASL_SSL", "--kafka_config=sasl.mechanism=PLAIN"]),
        (["--kafka_topic=a,b"], ["--kafka_topic=a,b"]),
        (["--runner=DataflowRunner", "--input=gs://b/*.jsonl"], ["--runner=DataflowRunner", "--input=gs://b/*.jsonl"]),
    ],
)  # fmt: skip
def test_launcher_arguments_become_the_pipelines_flags(given, expected):
    assert launcher_argv(given) == expected


def test_a_flag_given_neither_true_nor_false_is_refused():
    with pytest.raises(ValueError, match="--kafka_bounded takes true or false in a template, not 'yes'"):
        launcher_argv(["--kafka_bounded=yes"])


def test_entry_file_adds_the_worker_image_and_the_pipeline_parses_the_result():
    entry = _entry()
    image = "europe-west1-docker.pkg.dev/p/beamforce/beamforce-worker:abc"
    argv = entry.argv(
        ["--always_enabled=true", "--kafka_topic=t1;t2", "--runner=DataflowRunner"],
        {entry.WORKER_IMAGE_VAR: image},
    )
    assert argv == [
        "--always_enabled",
        "--kafka_topic=t1",
        "--kafka_topic=t2",
        "--runner=DataflowRunner",
        f"--sdk_container_image={image}",
    ]
    options = PipelineOptions(argv)
    assert options.view_as(BeamforceOptions).always_enabled is True
    assert options.view_as(SourceOptions).kafka_topic == ["t1", "t2"]
    assert options.get_all_options()["sdk_container_image"] == image


def test_entry_file_keeps_a_worker_image_the_launch_names():
    entry = _entry()
    argv = entry.argv(["--sdk_container_image=mine:1"], {entry.WORKER_IMAGE_VAR: "default:2"})
    assert argv == ["--sdk_container_image=mine:1"]
    assert entry.argv([], {}) == []
