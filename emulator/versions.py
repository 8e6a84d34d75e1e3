"""The REST API versions the emulator serves, the retired ones, and the first version of each resource."""

import re

from emulator.errors import ApiError

# Served: 31.0 (Summer '14) to 66.0 (Spring '26). Salesforce supports 31.0-40.0 until Summer '27 and 41.0
# on, and simple-salesforce logs in over SOAP at any of 31.0-64.0, whose serverUrl then names that version.
MIN_VERSION, MAX_VERSION = 31, 66
# "Versions 21.0 through 30.0: As of Summer '25, these versions are retired and unavailable. Versions 7.0
# through 20.0: As of Summer '22 ..." and "If you request any resource or use an operation from a retired
# API version, REST API returns the 410:GONE error code" (REST API guide, API End-of-Life Policy).
RETIRED_FROM, RETIRED_TO = 7, 30
_RELEASES = ("Winter", "Spring", "Summer")  # three releases a year; 50.0 was Winter '21
_VERSION = re.compile(r"\d{1,3}\.\d")

NOT_FOUND = ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def version_list() -> list[dict]:
    """GET /services/data: every served version, oldest first, labelled with its release."""
    out = []
    for number in range(MIN_VERSION, MAX_VERSION + 1):
        offset = number - 50
        label = f"{_RELEASES[offset % 3]} '{21 + offset // 3:02d}"
        out.append({"label": label, "url": f"/services/data/v{number}.0", "version": f"{number}.0"})
    return out


def first_version(rest_path: str) -> int:
    """The first API version that has the resource at `rest_path` (below /services/data/vXX.X)."""
    parts = [p for p in rest_path.split("/") if p]
    if parts[:2] == ["composite", "sobjects"]:
        return 46 if len(parts) > 2 else 42  # upsert of a collection by external id came in 46.0
    if parts[:1] == ["composite"]:
        return 38
    if parts[:2] == ["jobs", "ingest"]:
        return 41
    if parts[:2] == ["jobs", "query"]:
        return 47
    return MIN_VERSION


def version_error(version: str, rest_path: str) -> ApiError | None:
    """Why /services/data/v{version}{rest_path} cannot be served, or None if it can."""
    if not _VERSION.fullmatch(version):
        return NOT_FOUND
    number = float(version)
    if RETIRED_FROM <= number <= RETIRED_TO:
        # The guide names only the status; the code (the guide's own "GONE") and the wording are ours.
        return ApiError(
            410,
            "GONE",
            f"API version {version} is retired and no longer available; use {MIN_VERSION}.0 or later.",
        )
    if not MIN_VERSION <= number <= MAX_VERSION or number < first_version(rest_path):
        # Below a resource's first version Salesforce answers as for an unknown resource.
        return NOT_FOUND
    return None
