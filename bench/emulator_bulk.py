"""Benchmark: Bulk API 2.0 ingest records per second and CPU per record of the emulator on loopback.

Usage: .venv/bin/python bench/emulator_bulk.py [--rows 90000] [--operation insert] [--rounds 1]
                                               [--code /tmp/emu-before ...]
For every round and every emulator tree (`--code`, this tree by default; several are interleaved), a
fresh emulator with the backfill benchmark's org (custom fields plan__c, logins__c, signupDate__c and
beta__c on Lead) gets one ingest job of `--rows` Lead rows shaped like the pipeline's. Reported: the
time from closing the job (UploadComplete) to JobComplete, records per second, the emulator process's
CPU seconds over that time and per record, and the time to download successfulResults.
`git worktree add /tmp/emu-before <commit>` makes a tree to compare with.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backfill_bench import (  # noqa: E402
    CITIES,
    FIRST,
    LAST,
    ORG_CONFIG,
    PLANS,
    TITLES,
    company_name,
    cpu_seconds,
)
from emulator.process import start_emulator, trusting_session  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
HEADER = [
    "FirstName",
    "LastName",
    "Email",
    "Company",
    "Title",
    "Phone",
    "City",
    "State",
    "Country",
    "plan__c",
    "logins__c",
    "signupDate__c",
    "beta__c",
]
POLL_SECONDS = 0.05


def lead_csv(rows: int) -> bytes:
    """`rows` distinct Leads as comma-separated CSV with LF line endings, as the pipeline uploads them."""
    lines = [",".join(HEADER)]
    for n in range(rows):
        first, last = FIRST[n % len(FIRST)], LAST[n // len(FIRST) % len(LAST)]
        city, state, _ = CITIES[n % len(CITIES)]
        values = [
            first,
            last,
            f"{first}.{last}.{n}@example.com".lower(),
            company_name(n % 5000),
            TITLES[n % len(TITLES)],
            f"+1 555 {n % 1000:03d} {n % 10000:04d}",
            city,
            state,
            "US",
            PLANS[n % len(PLANS)],
            str(n % 500),
            f"2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
            "true" if n % 3 == 0 else "false",
        ]
        lines.append(",".join(f'"{v}"' if "," in v else v for v in values))
    return ("\n".join(lines) + "\n").encode()


def run(code: Path, data: bytes, rows: int, operation: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "org.json"
        config.write_text(json.dumps(ORG_CONFIG))  # JSON is YAML
        with start_emulator(Path(tmp) / "data", config, root=code) as emu:
            sf = emu.salesforce()
            http = trusting_session(emu.info)
            http.headers.update({"Authorization": f"Bearer {sf.session_id}"})
            base = f"{emu.instance_url}/services/data/v59.0/jobs/ingest"
            job = {"object": "Lead", "operation": operation, "contentType": "CSV", "lineEnding": "LF"}
            if operation == "upsert":
                job["externalIdFieldName"] = "Email"
            job_id = http.post(base, json=job).json()["id"]
            put = http.put(f"{base}/{job_id}/batches", data=data, headers={"Content-Type": "text/csv"})
            put.raise_for_status()
            cpu0, t0 = cpu_seconds(emu.proc.pid), time.perf_counter()
            http.patch(f"{base}/{job_id}", json={"state": "UploadComplete"}).raise_for_status()
            while (info := http.get(f"{base}/{job_id}").json())["state"] not in ("JobComplete", "Failed"):
                time.sleep(POLL_SECONDS)
            elapsed, cpu = time.perf_counter() - t0, cpu_seconds(emu.proc.pid) - cpu0
            t1 = time.perf_counter()
            results = http.get(f"{base}/{job_id}/successfulResults")
            results_s = time.perf_counter() - t1
    done = info["numberRecordsProcessed"] - info["numberRecordsFailed"]
    if info["state"] != "JobComplete" or done != rows or results.text.count("\n") != rows + 1:
        raise RuntimeError(f"{code}: the job did not complete every row: {info}")
    return {"elapsed": elapsed, "cpu": cpu, "results_s": results_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=90_000, help="Lead rows in the job (default: %(default)s)")
    p.add_argument("--operation", choices=("insert", "upsert"), default="insert", help="(default: insert)")
    p.add_argument("--rounds", type=int, default=1, help="runs of every tree (default: %(default)s)")
    p.add_argument("--code", type=Path, action="append", help="emulator tree(s) to run (default: this one)")
    args = p.parse_args()
    codes = [c.resolve() for c in args.code or [REPO_ROOT]]
    data = lead_csv(args.rows)
    print(f"machine: {os.cpu_count()} CPUs; {args.rows} rows ({len(data)} bytes), {args.operation}")
    for round_ in range(1, args.rounds + 1):
        for code in codes:
            r = run(code, data, args.rows, args.operation)
            print(
                f"round {round_} {code}: {r['elapsed']:.2f}s, {args.rows / r['elapsed']:.0f} records/s, "
                f"emulator CPU {r['cpu']:.2f}s ({r['cpu'] / args.rows * 1e6:.0f} us/record), "
                f"successfulResults {r['results_s']:.2f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
