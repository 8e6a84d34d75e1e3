"""A runner outside Beam's core that defines its options in its own module, as Beam's Dask runner does
(apache_beam.runners.dask.dask_runner.DaskOptions). Imported only through --runner, never by a test."""

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineRunner


class ElsewhereOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--elsewhere_address", default=None, help="Where the cluster is.")


class ElsewhereRunner(PipelineRunner):
    pass
