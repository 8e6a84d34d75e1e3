"""Whether a run's every stage runs in this process, so that stages may hand large elements to each other
by reference (transforms/coders.LocalHandleCoder) instead of as bytes.

Only Beam's FnApiRunner (this pipeline's default for bounded input) is counted, and only in its in-process
modes: `in_memory` (the default) and `multi_threading` run the SDK harness on threads of this process,
while `multi_processing` starts worker processes. Its `direct_runner_bundle_repeat` (a testing option)
processes bundles more than once, which would decode an element twice. Every other runner (Dataflow,
Flink, Spark, Prism, the bundle-based DirectRunner that runs streams) gets bytes.
"""

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

IN_PROCESS_RUNNERS = ("FnApiRunner",)
IN_PROCESS_MODES = ("in_memory", "multi_threading")


def runs_in_this_process(options: PipelineOptions) -> bool:
    """True when `options` run a bounded pipeline with every stage in this process (see the module)."""
    standard = options.view_as(StandardOptions)
    runner = standard.runner
    name = runner if isinstance(runner, str) or runner is None else type(runner).__name__
    direct = options.view_as(DirectOptions)
    return (
        name in IN_PROCESS_RUNNERS
        and not standard.streaming
        and direct.direct_running_mode in IN_PROCESS_MODES
        and not direct.direct_runner_bundle_repeat
    )
