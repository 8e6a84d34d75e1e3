"""One local Salesforce (the emulator, over HTTPS) for the end-to-end tests, and a way to run the pipeline."""

import glob
import json
import subprocess
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from emulator.process import start_emulator
from pipeline.main import run
from pipeline.summary import Summary
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from tests.org_setup import ORG_SETUP_FIELDS
from transforms.coders import held_handles

SANDBOX_USER = {"username": "sandbox.api@example.com", "password": "sandbox-pw", "security_token": "SBXTOKEN"}
ORG_CONFIG = """\
users:
  - {username: admin@example.com, password: emulator-password, security_token: EMULATORTOKEN}
  - {username: sandbox.api@example.com, password: sandbox-pw, security_token: SBXTOKEN, sandbox: uat}
custom_fields:
  Lead:
    - {name: testProp__c, type: string, length: 100}
"""

# Fields the org fills on its own: not what the pipeline wrote (a Lead's Name is derived from
# FirstName and LastName; an Account's Name is written).
SYSTEM_FIELDS = frozenset(
    {
        "Id",
        "IsDeleted",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "LastActivityDate",
        "LastViewedDate",
        "LastReferencedDate",
        "OwnerId",
        "IsConverted",
        "IsUnreadByOwner",
        "Status",
        "MasterRecordId",
        "HasOptedOutOfEmail",  # a checkbox: false by default
    }
)


def emulator_with(tmp_path_factory, name: str, org_config: str):
    """A running emulator (context manager) whose org is configured by the YAML `org_config`."""
    root = tmp_path_factory.mktemp(name)
    (root / "org.yaml").write_text(org_config)
    return start_emulator(root / "data", config_path=root / "org.yaml")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    with emulator_with(tmp_path_factory, "emulator", ORG_CONFIG) as emu:
        yield emu


@pytest.fixture
def org(emulator):
    """The emulator, emptied: no records, call counts at zero."""
    emulator.admin("POST", "/_emulator/reset")
    emulator.admin("POST", "/_emulator/calls/reset")
    return emulator


@pytest.fixture(scope="module")
def keyed_emulator(tmp_path_factory):
    """An emulator whose org has docs/org-setup.md's fields, one a test module."""
    with emulator_with(tmp_path_factory, "keyed-emulator", ORG_SETUP_FIELDS) as emu:
        yield emu


def environ(emu) -> dict[str, str]:
    info = emu.info
    return {
        "SALESFORCE_USERNAME": info["username"],
        "SALESFORCE_PASSWORD": info["password"],
        "SALESFORCE_SECURITY_TOKEN": info["security_token"],
    }


def export_credentials(emu, monkeypatch: pytest.MonkeyPatch) -> None:
    """Puts the org's login in this test's environment, where the pipeline's writers read it."""
    for name, value in environ(emu).items():
        monkeypatch.setenv(name, value)


def connection_flags(emu) -> list[str]:
    return ["--salesforce_login_url", emu.info["login_url"], "--salesforce_ca_bundle", emu.info["ca_bundle"]]


def streaming_options(emu, dead_letter_prefix: str) -> PipelineOptions:
    """A streaming run's options against `emu`: dead letters under the prefix, buffers written each second."""
    return PipelineOptions(
        [
            "--streaming",
            "--dead_letter_output",
            dead_letter_prefix,
            "--max_buffering_seconds",
            "1",
            *connection_flags(emu),
        ]
    )


def client(emu) -> SalesforceClient:
    """Our own client, to set up records through the real API."""
    info = emu.info
    settings = ConnectionSettings(login_url=info["login_url"], ca_bundle=info["ca_bundle"])
    creds = Credentials(info["username"], info["password"], info["security_token"])
    return SalesforceClient(creds, settings)


def records(emu, sobject: str) -> list[dict]:
    """The org's records of `sobject`, without the fields the org sets itself, nulls and compound
    fields (Address, BillingAddress: the org derives them from their parts)."""
    rows = emu.admin("GET", f"/_emulator/records/{sobject}")["records"]
    skip = SYSTEM_FIELDS | ({"Name"} if sobject == "Lead" else set())
    return [
        {k: v for k, v in r.items() if k not in skip and v is not None and not isinstance(v, dict)}
        for r in rows
    ]


def calls(emu) -> dict:
    return emu.admin("GET", "/_emulator/calls")


def write_lines(path: Path, events: list) -> Path:
    """One event a line; strings are written as they are (bad lines), the rest as JSON."""
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    return path


# What a writer logs when it starts waiting for a used-up allocation (--on_api_limit wait).
ALLOCATION_USED_UP = "the org's API allocation is used up"


def stderr_until(proc: subprocess.Popen, text: str) -> list[str]:
    """Reads a running `python -m pipeline` child's stderr (text mode) up to the first line holding `text`,
    and checks that the child still runs; returns the lines read, for a failing test's message."""
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        if text in line:
            break
    assert proc.poll() is None, "".join(lines)
    return lines


def run_pipeline(
    emu, tmp_path: Path, events: list, *flags: str, name: str = "events"
) -> tuple[Summary, list]:
    """Runs the whole pipeline over `events` against the emulator; returns the summary and dead letters.

    The summary file the pipeline writes (from its stages' tallies) must equal the summary built from the
    metrics, which is the one returned."""
    write_lines(tmp_path / f"{name}.jsonl", events)
    prefix = str(tmp_path / f"{name}-dead")
    own = str(tmp_path / f"{name}-summary.json")
    summary_flags = () if "--summary_output" in flags else ("--summary_output", own)
    summary = run(
        [
            "--input",
            str(tmp_path / f"{name}.jsonl"),
            "--dead_letter_output",
            prefix,
            *summary_flags,
            *connection_flags(emu),
            *flags,
        ],
        environ(emu),
    )
    # A bounded run on this process's runner hands its merges and groupings over by reference: every value
    # handed over was taken back.
    assert held_handles() == 0
    summary_path = summary_flags[1] if summary_flags else flags[flags.index("--summary_output") + 1]
    assert json.loads(Path(summary_path).read_text(encoding="utf-8")) == json.loads(summary.to_json())
    dead = [
        json.loads(line) for f in sorted(glob.glob(prefix + "*.jsonl")) for line in open(f, encoding="utf-8")
    ]
    return summary, dead
