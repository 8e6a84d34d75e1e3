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


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Runs the beamforce pipeline over the bundled sample events into a local Salesforce "
        "(started on a free port and stopped at the end), then prints a summary and the resulting "
        "Leads and Accounts. Unknown arguments go to the pipeline (python -m pipeline --help)."
    )
    parser.add_argument(
        "--out",
        default=str(ROOT / "out"),
        help="folder for the dead letters and the JSON summary (default ./out)",
    )
    parser.add_argument("--rows", type=int, default=12, help="how many rows of each table to print")
    args, pipeline_args = parser.parse_known_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        if code != 0:
            return code
        print()
        print(table("Leads", emu.admin("GET", "/_emulator/records/Lead")["records"], LEAD_COLUMNS, args.rows))
        print()
        print(
            table(
                "Accounts",
                emu.admin("GET", "/_emulator/records/Account")["records"],
                ACCOUNT_COLUMNS,
                args.rows,
            )
        )
        calls = emu.admin("GET", "/_emulator/calls")
        print(f"\nSalesforce API calls: {calls['total']} {calls['by_kind']}")
        print(f"dead letters: {out}/dead_letters-*.jsonl   summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
