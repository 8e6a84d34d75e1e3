"""Benchmark: simple REST calls per second against the emulator on loopback (latency injection off).

Usage: .venv/bin/python bench/emulator_rest.py [--processes 2] [--threads 4] [--seconds 10] [--mix get,query]
Client processes (so the clients' GIL is not what is measured), each with client threads; every
thread has its own simple-salesforce client and keep-alive connection and repeats small calls:
`sf.Lead.get(id)` and a one-row `sf.query(...)`.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from emulator.process import connect, start_emulator  # noqa: E402

QUERY = "SELECT Id, Email FROM Lead WHERE Email = 'bench@example.com' LIMIT 1"


def clients_run(
    info: dict[str, Any], lead_id: str, threads: int, seconds: float, mix: list[str]
) -> list[float]:
    """Runs `threads` clients for `seconds`; returns every call's latency."""
    calls = {"get": lambda sf: sf.Lead.get(lead_id), "query": lambda sf: sf.query(QUERY)}
    clients = [connect(info) for _ in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        sf, n = clients[i], 0
        while (t0 := time.perf_counter()) < deadline:
            calls[mix[n % len(mix)]](sf)
            latencies[i].append(time.perf_counter() - t0)
            n += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [x for lat in latencies for x in lat]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=2, help="client processes (default: %(default)s)")
    p.add_argument("--threads", type=int, default=4, help="client threads per process (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to measure (default: %(default)s)")
    p.add_argument(
        "--mix", default="get,query", help="calls to cycle through: get, query (default: %(default)s)"
    )
    args = p.parse_args()
    mix = args.mix.split(",")
    with tempfile.TemporaryDirectory() as data, start_emulator(data) as emu:
        emu.admin("POST", "faults", {})
        lead = {"LastName": "Bench", "Company": "Bench Co", "Email": "bench@example.com"}
        lead_id = emu.admin("POST", "records/Lead", lead)["id"]  # seeded: no login, no API call
        emu.admin("POST", "calls/reset")
        job = (emu.info, lead_id, args.threads, args.seconds, mix)
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            results = pool.starmap(clients_run, [job] * args.processes)
        elapsed = time.perf_counter() - started
        counted = emu.admin("GET", "calls")
    latencies = sorted(x for r in results for x in r)
    total = len(latencies)
    busy = args.seconds  # calls happen only inside each process's measuring window
    print(f"machine: {os.cpu_count()} CPUs; processes={args.processes} threads={args.threads} mix={args.mix}")
    print(f"calls: {total} in {busy:.1f}s ({counted['by_kind']} counted by the emulator, incl. logins)")
    median, p99 = statistics.median(latencies) * 1000, latencies[int(total * 0.99)] * 1000
    print(f"latency ms: median {median:.2f}, p99 {p99:.2f}")
    print(f"calls/s: {total / busy:.0f} (wall time incl. client start-up: {elapsed:.1f}s)")


if __name__ == "__main__":
    main()
