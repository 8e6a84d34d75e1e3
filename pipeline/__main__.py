"""`python -m pipeline ...`: run the pipeline from the command line."""

import gc
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

from pipeline.main import main  # noqa: E402  (after the filter, which must see Beam's import)

# The in-process runner's work allocates millions of small objects that live until the merge is done
# (every record's fields, and the batches between stages); with Python's default threshold (700) the
# collector runs every few hundred of them and each full run scans them all. Their cycles are few:
# with these thresholds a 100,000-event backfill took 25.1 s instead of 28.4 s (bench/backfill_bench.py's
# events, the same child run with each).
GC_THRESHOLDS = (50_000, 20, 100)

if __name__ == "__main__":
    gc.set_threshold(*GC_THRESHOLDS)
    sys.exit(main())
