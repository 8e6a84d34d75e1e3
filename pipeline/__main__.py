"""`python -m pipeline ...`: run the pipeline from the command line."""

import sys

from pipeline.main import main

if __name__ == "__main__":
    sys.exit(main())
