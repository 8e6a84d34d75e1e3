"""Which runs hand elements between stages by reference: only the FnApiRunner's in-process modes."""

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.runner_kind import runs_in_this_process


@pytest.mark.parametrize(
    "args, local",
    [
        (["--runner", "FnApiRunner"], True),
        (["--runner", "FnApiRunner", "--direct_running_mode", "in_memory"], True),
        (["--runner", "FnApiRunner", "--direct_running_mode", "multi_threading"], True),
        (["--runner", "FnApiRunner", "--direct_num_workers", "2"], True),
        # Worker processes: each would hold its own handles.
        (["--runner", "FnApiRunner", "--direct_running_mode", "multi_processing"], False),
        # Bundles processed more than once would decode an element twice.
        (["--runner", "FnApiRunner", "--direct_runner_bundle_repeat", "1"], False),
        (["--runner", "FnApiRunner", "--streaming"], False),
        (["--runner", "BundleBasedDirectRunner"], False),
        (["--runner", "DirectRunner"], False),
        (["--runner", "DataflowRunner"], False),
        (["--runner", "FlinkRunner"], False),
        (["--runner", "PortableRunner"], False),
        ([], False),  # no runner named: Beam's choice, which may be anything
    ],
)
def test_only_the_fn_api_runner_in_this_process_hands_over_by_reference(args, local):
    assert runs_in_this_process(PipelineOptions(args)) is local


def test_a_runner_given_as_an_object_counts_by_its_class():
    assert runs_in_this_process(PipelineOptions(runner=FnApiRunner())) is True
