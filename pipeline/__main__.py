"""`python -m pipeline ...`: run the pipeline from the command line."""

import logging
import sys

# Beam warns at import time that its optional Google Cloud modules are missing; this pipeline
# does not use them, and the warnings read like errors to users.
_BEAM_IMPORT_NOISE = ("Failed to import GCSFileSystem", "apitools not found")


class _DropBeamImportNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_BEAM_IMPORT_NOISE)


logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
for _handler in logging.getLogger().handlers:
    _handler.addFilter(_DropBeamImportNoise())

from pipeline.collector import collect_old_objects_on_a_timer, leave_objects_to_the_exit  # noqa: E402
from pipeline.main import main as run_main  # noqa: E402  (after the filter, which must see Beam's import)


def main() -> int:
    """`python -m pipeline` and the `beamforce` command: the collector's policy, then the run."""
    collect_old_objects_on_a_timer()
    status = run_main()
    leave_objects_to_the_exit()
    return status


if __name__ == "__main__":
    sys.exit(main())
