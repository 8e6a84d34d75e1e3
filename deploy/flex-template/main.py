"""The Flex Template's entry file (FLEX_TEMPLATE_PYTHON_PY_FILE): the template's parameters as the
pipeline's flags, then the pipeline's own command-line entry."""

import os
import sys
from collections.abc import Mapping

from pipeline.main import submit
from salesforce.errors import ConfigurationError
from tools.flex_metadata import launcher_argv

# Set in the template's image (deploy/flex-template/Dockerfile): the worker image with this package
# installed, so that workers need not install anything when they start.
WORKER_IMAGE_VAR = "BEAMFORCE_WORKER_IMAGE"


def argv(args: list[str], environ: Mapping[str, str]) -> list[str]:
    """The pipeline's arguments for the launcher's: flags and lists unpacked, the worker image added
    unless the launch names one."""
    out = launcher_argv(args)
    image = environ.get(WORKER_IMAGE_VAR)
    if image and not any(a.split("=", 1)[0] == "--sdk_container_image" for a in out):
        out.append(f"--sdk_container_image={image}")
    return out


def launch(args: list[str], environ: Mapping[str, str]) -> int:
    """Submits the job and exits, as a Flex Template launcher must (it does not wait for the job)."""
    try:
        submit(argv(args, environ), environ)
    except ConfigurationError as e:
        print(f"beamforce: configuration error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:], os.environ))
