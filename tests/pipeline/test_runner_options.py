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
