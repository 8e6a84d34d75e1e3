"""Records in a test's local Salesforce, through its admin API: seeded, read back, and its call counts."""

from typing import Any

from emulator.process import EmulatorProcess
from tests.salesforce.conftest import calls


def seed(emu: EmulatorProcess, sobject: str, *records: dict) -> list[str]:
    return emu.admin("POST", f"records/{sobject}", json=list(records))["ids"]


def stored(emu: EmulatorProcess, sobject: str, *fields: str) -> list[dict]:
    """The org's live records of `sobject`: Id and `fields` (None when unset), in id (= creation) order."""
    records = emu.admin("GET", f"records/{sobject}")["records"]
    return sorted(({"Id": r["Id"], **{f: r.get(f) for f in fields}} for r in records), key=lambda r: r["Id"])


def kinds(emu: EmulatorProcess) -> dict:
    return calls(emu)["by_kind"]


def contact(last_name: str, email: str, **extra: Any) -> dict:
    return {"LastName": last_name, "Email": email, **extra}
