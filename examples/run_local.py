"""The main local job: a local Salesforce, the pipeline over the sample events, a summary and a table."""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from emulator.process import start_emulator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LEAD_COLUMNS = ("Email", "FirstName", "LastName", "Company", "Title", "City", "Status")
ACCOUNT_COLUMNS = ("AccountNumber", "Name", "BillingCity", "BillingCountry", "NumberOfEmployees", "Phone")
# Objects custom actions write (examples/actions/), shown when they hold records.
OTHER_COLUMNS = {
    "Contact": ("UserId__c", "Email", "FirstName", "LastName", "Title", "MailingCity"),
    "Case": ("Subject", "Origin", "Status", "Beamforce_Message_Id__c"),
}
OBJECTS = ("Lead", "Account", *OTHER_COLUMNS)
# The records the seed document's example calls make (examples/events/seed-calls.jsonl), with the
# fields the seed names, plus Lead Status, which Salesforce defaults on create.
SEED_LEAD_FIELDS = (
    "FirstName",
    "LastName",
    "Title",
    "Email",
    "Company",
    "Phone",
    "Rating",
    "Street",
    "City",
    "State",
    "PostalCode",
    "Country",
    "Status",
)
SEED_ACCOUNT_FIELDS = (
    "Name",
    "AccountNumber",
    "BillingCity",
    "BillingCountry",
    "BillingPostalCode",
    "BillingState",
    "BillingStreet",
    "NumberOfEmployees",
    "Phone",
    "Website",
    "Description",
)
SEED_RECORDS = (
    ("Lead", "Email", "peter.gibbons@example.com", SEED_LEAD_FIELDS),
    ("Account", "AccountNumber", "813", SEED_ACCOUNT_FIELDS),
)


def seed_record(sobject: str, field: str, value: str, fields: tuple[str, ...], records: list[dict]) -> str:
    found = [r for r in records if str(r.get(field, "")).lower() == value.lower()]
    if not found:
        return f"The seed's {sobject} ({field} = {value}) is missing"
    shown = {k: found[0].get(k) for k in fields}
    return f"The seed's {sobject} ({field} = {value}):\n" + "\n".join(
        f"  {k}: {v!r}" for k, v in shown.items()
    )


def table(title: str, records: list[dict], columns: tuple[str, ...], limit: int) -> str:
    rows = sorted(records, key=lambda r: str(r.get(columns[0]) or ""))[:limit]
    cells = [[str(r.get(c) if r.get(c) is not None else "")[:28] for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [
        f"{title}: {len(records)} records" + (f" (first {limit} shown)" if len(records) > limit else ""),
        line,
        "-" * len(line),
    ]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def _objects_written(records: dict[str, list[dict]]) -> set[str]:
    return {sobject for sobject, rows in records.items() if rows}


def _given(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Runs the beamforce pipeline over the bundled sample events into a local Salesforce "
        "(started on a free port and stopped at the end), then prints a summary and the resulting "
        "Leads and Accounts. Unknown arguments go to the pipeline (python -m pipeline --help)."
    )
    parser.add_argument(
        "--out",
        default=str(ROOT / "out"),
        help="folder for the dead letters and the JSON summary, both replaced at each run (default ./out)",
    )
    parser.add_argument("--rows", type=int, default=12, help="how many rows of each table to print")
    args, pipeline_args = parser.parse_known_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Each demo run starts from an empty local Salesforce, so the last demo run's dead letters are
    # replaced (the pipeline refuses to replace a prefix's dead letters on its own).
    for old in out.glob("dead_letters-*-of-*.jsonl"):
        old.unlink()
    inputs = str(HERE / "events" / "*.jsonl*")
    with (
        tempfile.TemporaryDirectory(prefix="beamforce-emulator-") as data_dir,
        start_emulator(data_dir, config_path=str(HERE / "org.yaml")) as emu,
    ):
        info = emu.info
        print(f"local Salesforce at {info['instance_url']} (CA {info['ca_bundle']})", file=sys.stderr)
        env = dict(
            os.environ,
            SALESFORCE_USERNAME=info["username"],
            SALESFORCE_PASSWORD=info["password"],
            SALESFORCE_SECURITY_TOKEN=info["security_token"],
        )
        cmd = [
            sys.executable,
            "-m",
            "pipeline",
            "--input",
            inputs,
            "--salesforce_login_url",
            info["login_url"],
            "--salesforce_ca_bundle",
            info["ca_bundle"],
            "--dead_letter_output",
            str(out / "dead_letters"),
            "--summary_output",
            str(out / "summary.json"),
            *pipeline_args,
        ]
        if _given(pipeline_args, "--actions_config") and not _given(pipeline_args, "--read_output"):
            # Read actions write the records they find; an actions file without any ignores it.
            cmd += ["--read_output", str(out / "records_read")]
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        if code != 0:
            return code
        if _given(pipeline_args, "--dry_run") or _given(pipeline_args, "--salesforce_dry_run"):
            calls = emu.admin("GET", "/_emulator/calls")
            print(f"\nDry run: no write; the local Salesforce saw {calls['total']} calls {calls['by_kind']}")
            return 0
        records = {o: emu.admin("GET", f"/_emulator/records/{o}")["records"] for o in OBJECTS}
        for sobject, field, value, fields in SEED_RECORDS:
            if _given(pipeline_args, "--actions_config") and sobject not in _objects_written(records):
                continue  # an actions file without the built-in action for this object
            print(f"\n{seed_record(sobject, field, value, fields, records[sobject])}")
        print(f"\n{table('Leads', records['Lead'], LEAD_COLUMNS, args.rows)}")
        print(f"\n{table('Accounts', records['Account'], ACCOUNT_COLUMNS, args.rows)}")
        for sobject, columns in OTHER_COLUMNS.items():
            if records[sobject]:  # written by custom actions (--actions_config) or converted Leads
                print(f"\n{table(sobject + 's', records[sobject], columns, args.rows)}")
        calls = emu.admin("GET", "/_emulator/calls")
        print(f"\nSalesforce API calls: {calls['total']} {calls['by_kind']}")
        print(f"dead letters: {out}/dead_letters-*.jsonl   summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
