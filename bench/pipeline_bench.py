"""Benchmark: identify and group events through the whole pipeline into the local Salesforce.

Reports Salesforce API calls per event and events per second (the pipeline's wall time, from graph
construction to the end of the run, and the same without the runner's start-up). Run on demand:

    .venv/bin/python -m bench.pipeline_bench [--events 10000 --people 2000 --companies 200] [pipeline options]

Options it does not know go to the pipeline, e.g. `--actions_config FILE`.
"""

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from emulator.process import start_emulator
from pipeline.main import run


def write_events(path: Path, events: int, people: int, companies: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(events):
            ts = (
                f"2026-11-{1 + i // 86400 % 27:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
            )
            if i % 5 == 4:
                c = rng.randrange(companies)
                event = {
                    "type": "group",
                    "groupId": f"acct-{c}",
                    "userId": f"u{i}",
                    "traits": {
                        "name": f"Company {c}",
                        "employees": rng.randint(1, 9999),
                        "address": {"city": "Austin", "state": "TX", "country": "USA"},
                        "website": f"https://c{c}.example.com",
                    },
                }
            else:
                p = rng.randrange(people)
                event = {
                    "type": "identify",
                    "userId": f"u{p}",
                    "traits": {
                        "email": f"person{p}@example.com",
                        "name": f"Person Number{p}",
                        "title": rng.choice(["CTO", "Engineer", "Analyst"]),
                        "company": f"Company {p % companies}",
                        "city": "Austin",
                    },
                }
            event.update(messageId=f"m{i}", timestamp=ts, integrations={"Salesforce": True})
            f.write(json.dumps(event) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="events to generate (default 10000)")
    parser.add_argument("--people", type=int, default=2_000, help="distinct emails (default 2000)")
    parser.add_argument("--companies", type=int, default=200, help="distinct group ids (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    args, pipeline_args = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="beamforce-bench-") as tmp:
        events = Path(tmp) / "events.jsonl"
        write_events(events, args.events, args.people, args.companies, args.seed)
        with start_emulator(Path(tmp) / "org") as emu:
            info = emu.info
            environ = dict(
                os.environ,
                SALESFORCE_USERNAME=info["username"],
                SALESFORCE_PASSWORD=info["password"],
                SALESFORCE_SECURITY_TOKEN=info["security_token"],
            )
            argv = [
                "--input",
                str(events),
                "--salesforce_login_url",
                info["login_url"],
                "--salesforce_ca_bundle",
                info["ca_bundle"],
                "--summary_output",
                str(Path(tmp) / "s.json"),
                *pipeline_args,
            ]
            results = []
            for label in ("first run (creates)", "second run, same events (updates)"):
                emu.admin("POST", "/_emulator/calls/reset")
                started = time.perf_counter()
                summary = run(argv, environ)
                elapsed = time.perf_counter() - started
                calls = emu.admin("GET", "/_emulator/calls")
                results.append((label, elapsed, calls, summary.balanced))
            leads = emu.admin("GET", "/_emulator/records/Lead")["totalSize"]
            accounts = emu.admin("GET", "/_emulator/records/Account")["totalSize"]
    print(f"\nevents: {args.events}  people: {args.people}  companies: {args.companies}")
    print(f"records in Salesforce: {leads} Leads, {accounts} Accounts")
    for label, elapsed, calls, balanced in results:
        print(f"{label}:")
        print(f"  API calls: {calls['total']} {calls['by_kind']}")
        print(f"  API calls per event: {calls['total'] / args.events:.4f}")
        print(f"  wall time: {elapsed:.2f} s -> {args.events / elapsed:,.0f} events/s (start-up included)")
        print(f"  summary balanced: {balanced}")


if __name__ == "__main__":
    main()
