"""Benchmark: a backfill's peak memory and events per second as the events grow over the same people.

Issue 10, point 12 ("Memory and time of a backfill"). For each size, identify events over the same
`--people` (and group events, `--group-share` of them, over `--companies`) are generated into gzip JSON
lines, and the pipeline runs on them as a child process (`python -m pipeline`, FnApiRunner) into the
local Salesforce, emptied before every run so that every run creates its records. Reported per run:
the child's peak resident memory (its own `wait4` rusage, and /proc VmHWM polled while it runs, so a
run that times out still shows its peak so far), wall time from start to exit (interpreter and Beam
start-up included), events per second, Salesforce API calls, records created, and whether the summary
adds up. Also the speed of plain `json.loads` over the same lines, for reference. With `--repeat`, the
verdict lines compare each code's median run (and list the ratio of each interleaved pair): the machine is
shared, and one run slowed by a neighbour should not decide them.

Goals: N events over P people within 1.5x the peak memory of P events over P people, and at least 80% of
its events per second; at P events, at least twice the events per second of the code before the work.

Run on demand:

    .venv/bin/python -m bench.backfill_bench [--sizes 100000,1000000 --people 100000]
    .venv/bin/python -m bench.backfill_bench --compare /tmp/main-before   # both trees, 3 interleaved pairs
    .venv/bin/python -m bench.backfill_bench --code /tmp/main-before      # another checkout only

(`git worktree add /tmp/main-before <commit>` makes such a checkout.) The child runs with its cwd and
PYTHONPATH set to the checkout, so that its packages win over the editable install; the local
Salesforce always comes from this tree.
"""

import argparse
import gzip
import json
import os
import platform
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from emulator.process import EmulatorProcess, start_emulator

REPO_ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.05
WEEKS = 6  # the events' timestamps spread over this many weeks
DISORDER_SECONDS = 900  # and arrive up to this much out of order, as exports do
GENERATOR_VERSION = 1  # bump when the events change, so that a kept --events-dir is regenerated

# Custom fields the events' extra traits land in, so that they are written rather than dropped.
ORG_CONFIG: dict[str, Any] = {
    "daily_api_requests": 10_000_000,  # never the limit here: old code may spend more calls
    "custom_fields": {
        "Lead": [
            {"name": "plan__c", "type": "picklist", "values": ["free", "team", "business", "enterprise"]},
            {"name": "logins__c", "type": "number", "precision": 9, "scale": 0},
            {"name": "signupDate__c", "type": "date"},
            {"name": "beta__c", "type": "boolean"},
        ],
        "Account": [
            {"name": "plan__c", "type": "string", "length": 40},
            {"name": "industry__c", "type": "string", "length": 80},
        ],
    },
}

FIRST = (
    "Ada Alan Amara Ben Carmen Chen Dana Diego Elena Farah Grace Hiro Ines Ivan Jamal Jana Kofi Lena Luis "
    "Maya Mei Nadia Noah Olga Omar Priya Raj Rosa Sam Sofia Tariq Uma Vera Wei Yara Yusuf Zoe Aisha Bruno"
).split()
LAST = (
    "Adams Baker Bianchi Chen Costa Diaz Dubois Evans Fischer Garcia Gupta Haddad Ito Jensen Kim Kowalski "
    "Lopez Martin Meyer Moreau Nakamura Nguyen Novak Okafor Olsen Patel Petrov Rossi Santos Schmidt Silva "
    "Singh Smith Tanaka Taylor Virtanen Walker Wang Weber Young"
).split()
TITLES = (
    "CTO",
    "VP Engineering",
    "Software Engineer",
    "Senior Software Engineer",
    "Data Analyst",
    "Product Manager",
    "Head of Marketing",
    "Sales Director",
    "Account Executive",
    "Operations Manager",
    "CFO",
    "Designer",
)
CITIES = (
    ("Austin", "TX", "78701"),
    ("Boston", "MA", "02110"),
    ("Chicago", "IL", "60601"),
    ("Denver", "CO", "80202"),
    ("Miami", "FL", "33131"),
    ("New York", "NY", "10001"),
    ("Portland", "OR", "97204"),
    ("San Francisco", "CA", "94105"),
    ("Seattle", "WA", "98101"),
    ("Atlanta", "GA", "30303"),
)
PLANS = ("free", "team", "business", "enterprise")
INDUSTRIES = ("Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Media", "Education")
COMPANY_HEADS = (
    "Acme Blue Bright Cedar Delta Ever Falcon Golden Harbor Iron Juniper Keystone Lumen Maple North Orbit "
    "Pioneer Quartz River Summit Terra Union Vertex Willow Zenith"
).split()
COMPANY_TAILS = (
    "Analytics Labs Systems Logistics Health Foods Robotics Media Energy Capital Networks Studios Works "
    "Cloud Farms Bio Motors Retail Security Software"
).split()
COMPANY_KINDS = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Co", "Partners", "Corp")


@dataclass(frozen=True)
class EventSet:
    """One size's generated files and what a correct run creates from them."""

    events: int
    identifies: int
    groups: int
    leads: int  # distinct people identified: the Leads a run creates
    accounts: int  # distinct companies grouped: the Accounts a run creates
    glob: str
    gzip_bytes: int


@dataclass(frozen=True)
class ChildRun:
    outcome: str  # "ok", "failed (exit N)" or "timed out after T s"
    peak_mib: float
    wall_s: float
    cpu_s: float
    summary: dict[str, Any] | None


@dataclass
class RunResult:
    code: str
    events: int
    outcome: str  # "ok", or what went wrong
    peak_mib: float
    wall_s: float
    cpu_s: float  # the pipeline's user + system CPU time
    emulator_cpu_s: float  # the local Salesforce's, during the run (it shares the machine)
    api_calls: int | None = None
    leads: int | None = None
    accounts: int | None = None
    load_before: float = 0.0  # 1-minute load average when the run started (the machine is shared)

    @property
    def events_per_s(self) -> float | None:
        return self.events / self.wall_s if self.outcome == "ok" else None


def _mix(p: int, salt: int) -> int:
    """A cheap stable hash of a person or company number: per-entity traits without a Random each."""
    h = (p * 0x9E3779B1 + salt * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & 0xFFFFFFFF
    return h ^ (h >> 12)


def company_name(c: int) -> str:
    heads, tails, kinds = len(COMPANY_HEADS), len(COMPANY_TAILS), len(COMPANY_KINDS)
    head, tail, kind = c % heads, c // heads % tails, c // heads // tails % kinds
    name = f"{COMPANY_HEADS[head]} {COMPANY_TAILS[tail]} {COMPANY_KINDS[kind]}"
    return name if c < heads * tails * kinds else f"{name} {c}"


def company_domain(c: int) -> str:
    heads, tails = len(COMPANY_HEADS), len(COMPANY_TAILS)
    slug = f"{COMPANY_HEADS[c % heads]}{COMPANY_TAILS[c // heads % tails]}".lower()
    return f"{slug}{c}.example.com"


class _Cycle:
    """0..n-1 in a new shuffled order each pass: N draws over n entities touch exactly min(N, n) of them."""

    def __init__(self, n: int, rng: random.Random) -> None:
        self._n, self._rng, self._order, self._next = n, rng, list(range(n)), n
        self.passes = 0

    def draw(self) -> int:
        if self._next == self._n:
            self._rng.shuffle(self._order)
            self._next, self.passes = 0, self.passes + 1
        self._next += 1
        return self._order[self._next - 1]


def _timestamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _envelope(rng: random.Random, kind: str, user: int, t: float) -> dict[str, Any]:
    return {
        "type": kind,
        "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "userId": f"user-{user:07d}",
        "timestamp": _timestamp(t),
        "sentAt": _timestamp(t + 0.2),
        "receivedAt": _timestamp(t + 0.4 + rng.random()),
        "channel": "server",
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.2"},
            "ip": f"10.{user >> 16 & 255}.{user >> 8 & 255}.{user & 255}",
        },
        "integrations": {"Salesforce": True},
        "version": 2,
    }


def _identify(rng: random.Random, p: int, companies: int, passes: int, t: float) -> dict[str, Any]:
    h = _mix(p, 1)
    first, last = FIRST[h % len(FIRST)], LAST[(h >> 6) % len(LAST)]
    c = p % companies
    city, state, postal = CITIES[(h >> 12) % len(CITIES)]
    # Some traits change between a person's events (a new title, an upgrade, more logins).
    title = TITLES[(h >> 16) % len(TITLES)] if rng.random() > 0.05 else rng.choice(TITLES)
    traits: dict[str, Any] = {
        "name": f"{first} {last}",
        "email": f"{first}.{last}.{p}@{company_domain(c)}".lower(),
        "company": company_name(c),
        "title": title,
        "address": {"city": city, "state": state, "postalCode": postal, "country": "USA"},
        "plan": PLANS[min(len(PLANS) - 1, (h >> 20) % 3 + passes // 4)],
        "logins": passes * 7 + rng.randrange(7),
        "signupDate": time.strftime("%Y-%m-%d", time.gmtime(1_700_000_000 + (h >> 8) % 700 * 86400)),
        "beta": bool(h >> 31),
    }
    if h & 1:
        traits["phone"] = f"+1 512 555 {p % 10_000:04d}"
    event = _envelope(rng, "identify", p, t)
    event["traits"] = traits
    return event


def _group(rng: random.Random, c: int, people: int, companies: int, t: float) -> dict[str, Any]:
    h = _mix(c, 2)
    city, state, postal = CITIES[(h >> 4) % len(CITIES)]
    # The one who calls group works there (people are spread over companies by p % companies).
    member = c + companies * rng.randrange(max(1, (people - c + companies - 1) // companies))
    event = _envelope(rng, "group", member, t)
    event["groupId"] = f"acct-{c:06d}"
    event["traits"] = {
        "name": company_name(c),
        "industry": INDUSTRIES[h % len(INDUSTRIES)],
        "employees": 5 + h % 5000,
        "website": f"https://www.{company_domain(c)}",
        "plan": PLANS[(h >> 9) % len(PLANS)],
        "address": {"city": city, "state": state, "postalCode": postal, "country": "USA"},
    }
    return event


def generate(
    directory: Path, events: int, people: int, companies: int, files: int, group_share: float, seed: int
) -> EventSet:
    """Writes `files` gzip JSON-lines files of `events` events, one event at a time (never all in memory)."""
    manifest_path = directory / "manifest.json"
    params = dict(
        events=events,
        people=people,
        companies=companies,
        files=files,
        group_share=group_share,
        seed=seed,
        generator=GENERATOR_VERSION,
    )
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest["params"] == params:
            return EventSet(**manifest["set"])
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("events-*.jsonl.gz"):
        old.unlink()
    rng = random.Random(seed * 1_000_003 + events)
    who, which = _Cycle(people, rng), _Cycle(companies, rng)
    start, span = 1_788_220_800.0, WEEKS * 7 * 86400.0  # from 2026-09-01
    identifies = groups = 0
    for k in range(files):
        path = directory / f"events-{k:03d}-of-{files:03d}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=5) as f:
            for i in range(events * k // files, events * (k + 1) // files):
                t = start + span * i / events + rng.uniform(-DISORDER_SECONDS, DISORDER_SECONDS)
                if rng.random() < group_share:
                    event = _group(rng, which.draw(), people, companies, t)
                    groups += 1
                else:
                    event = _identify(rng, who.draw(), companies, who.passes - 1, t)
                    identifies += 1
                f.write(json.dumps(event, separators=(",", ":")) + "\n")
    result = EventSet(
        events=events,
        identifies=identifies,
        groups=groups,
        leads=min(identifies, people),
        accounts=min(groups, companies),
        glob=str(directory / "events-*.jsonl.gz"),
        gzip_bytes=sum(p.stat().st_size for p in directory.glob("events-*.jsonl.gz")),
    )
    manifest_path.write_text(json.dumps({"params": params, "set": asdict(result)}, indent=2))
    return result


def json_rates(event_set: EventSet) -> tuple[float, float]:
    """Lines per second: gunzip and split alone, and gunzip plus `json.loads` of every line."""
    paths = sorted(Path(event_set.glob).parent.glob(Path(event_set.glob).name))
    started = time.perf_counter()
    for path in paths:
        with gzip.open(path, "rb") as f:
            for _ in f:
                pass
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    loads = json.loads
    for path in paths:
        with gzip.open(path, "rb") as f:
            for line in f:
                loads(line)
    both_s = time.perf_counter() - started
    return event_set.events / read_s, event_set.events / both_s


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass  # it has just exited: wait4's rusage has the peak
    return 0


# Extra pipeline options for every measured run (--pipeline-args), e.g. runner settings to compare.
PIPELINE_ARGS: list[str] = []


def run_pipeline(
    code: Path, event_set: EventSet, emu: EmulatorProcess, out: Path, timeout: float
) -> ChildRun:
    """Runs `python -m pipeline` from `code` as a child process and measures it."""
    out.mkdir(parents=True)
    info = emu.info
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "--input",
        event_set.glob,
        "--salesforce_login_url",
        info["login_url"],
        "--salesforce_ca_bundle",
        info["ca_bundle"],
        "--dead_letter_output",
        str(out / "dead_letters"),
        "--summary_output",
        str(out / "summary.json"),
        *PIPELINE_ARGS,
    ]
    env = dict(
        os.environ,
        SALESFORCE_USERNAME=info["username"],
        SALESFORCE_PASSWORD=info["password"],
        SALESFORCE_SECURITY_TOKEN=info["security_token"],
        PYTHONPATH=os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])),
    )
    with open(out / "stdout.log", "wb") as stdout, open(out / "stderr.log", "wb") as stderr:
        started = time.perf_counter()
        # Its own session, so that a timeout kills whatever it started as well.
        proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    hwm = 0
    timed_out = False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - started > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, rusage = os.wait4(proc.pid, 0)
            timed_out = True
            break
        hwm = max(hwm, _vm_hwm_kib(proc.pid))
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    peak = max(hwm, rusage.ru_maxrss) / 1024  # both in KiB on Linux
    cpu = rusage.ru_utime + rusage.ru_stime
    if timed_out:
        return ChildRun(f"timed out after {timeout:.0f} s", peak, wall, cpu, None)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    if proc.returncode != 0:
        tail = (out / "stderr.log").read_text(errors="replace")[-1500:]
        print(
            f"  ! exit {proc.returncode}; end of its stderr ({out / 'stderr.log'}):\n{tail}", file=sys.stderr
        )
        return ChildRun(f"failed (exit {proc.returncode})", peak, wall, cpu, summary)
    return ChildRun("ok", peak, wall, cpu, summary)


def cpu_seconds(pid: int | None = None) -> float:
    """User and system CPU time of a process (this one by default; all its threads), in seconds."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check(event_set: EventSet, summary: dict[str, Any] | None, leads: int, accounts: int) -> str:
    """'ok', or every way the run's counts differ from what the events ask for."""
    if summary is None:
        return "no summary"
    problems = []
    if not summary.get("balanced"):
        problems.append("summary not balanced")
    if summary.get("events_read") != event_set.events:
        problems.append(f"read {summary.get('events_read')}")
    if summary.get("events_dead_lettered"):
        problems.append(f"{summary['events_dead_lettered']} dead letters")
    if (leads, accounts) != (event_set.leads, event_set.accounts):
        problems.append(
            f"created {leads:,}/{accounts:,}, expected {event_set.leads:,}/{event_set.accounts:,}"
        )
    return "; ".join(problems) or "ok"


def measure(
    label: str, code: Path, event_set: EventSet, emu: EmulatorProcess, out: Path, timeout: float
) -> RunResult:
    emu.admin("POST", "/_emulator/reset")  # every run creates its records
    emu.admin("POST", "/_emulator/calls/reset")
    load = os.getloadavg()[0]
    print(
        f"- {label}: {event_set.events:,} events (load average {load:.1f}) ...", file=sys.stderr, flush=True
    )
    emulator_cpu = cpu_seconds(emu.proc.pid)
    child = run_pipeline(code, event_set, emu, out, timeout)
    emulator_cpu = cpu_seconds(emu.proc.pid) - emulator_cpu
    calls = emu.admin("GET", "/_emulator/calls")["total"]
    result = RunResult(
        label,
        event_set.events,
        child.outcome,
        child.peak_mib,
        child.wall_s,
        child.cpu_s,
        emulator_cpu,
        calls,
        load_before=load,
    )
    summary = child.summary
    if child.outcome == "ok":
        sf = emu.salesforce()
        result.leads = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
        result.accounts = sf.query("SELECT COUNT() FROM Account")["totalSize"]
        sf.session.close()
        result.outcome = check(event_set, summary, result.leads, result.accounts)
        if summary is not None and summary.get("api_calls") != calls:
            result.outcome += f" (its summary counts {summary.get('api_calls')} API calls)"
    print(
        f"  {result.outcome}: {result.peak_mib:,.0f} MiB, {result.wall_s:.1f} s "
        f"(CPU: pipeline {result.cpu_s:.1f} s, local Salesforce {emulator_cpu:.1f} s)",
        file=sys.stderr,
        flush=True,
    )
    return result


def describe_code(code: Path) -> str:
    """The checkout's commit, and whether its files differ from it (read-only git calls)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(code), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(code)
    return f"{code} @{commit}" + (" + changes" if dirty else "")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        mem_gib = int(mem.split()[1]) / 1024**2
    except (OSError, StopIteration):
        mem_gib = 0.0
    return (
        f"{len(os.sched_getaffinity(0))} cores ({os.cpu_count()} online), {model}, {mem_gib:.0f} GiB, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"apache-beam {version('apache-beam')}"
    )


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def report(results: list[RunResult], sets: dict[int, EventSet], rates: dict[int, tuple[float, float]]) -> str:
    lines = [
        "| code | events | peak memory (MiB) | wall time (s) | events per second | CPU s: pipeline, "
        "local Salesforce | API calls | Leads, Accounts created | check |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        created = "-" if r.leads is None else f"{r.leads:,}, {r.accounts:,}"
        lines.append(
            f"| {r.code} | {r.events:,} | {r.peak_mib:,.0f} | {r.wall_s:,.1f} | {_fmt(r.events_per_s)} "
            f"| {r.cpu_s:,.0f}, {r.emulator_cpu_s:,.0f} | {_fmt(r.api_calls, ',')} | {created} "
            f"| {r.outcome} |"
        )
    lines += ["", "Plain Python over the same lines, for reference (one thread):", ""]
    lines += [
        "| events | gzip MB | gunzip lines/s | gunzip + json.loads lines/s |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for size, (read_rate, loads_rate) in rates.items():
        mb = sets[size].gzip_bytes / 1e6
        lines.append(f"| {size:,} | {mb:,.0f} | {read_rate:,.0f} | {loads_rate:,.0f} |")

    lines += [""]
    sizes = sorted(sets)
    codes = list(dict.fromkeys(r.code for r in results))
    runs = {
        (code, size): [r for r in results if r.code == code and r.events == size]
        for code in codes
        for size in sizes
    }
    small, large = sizes[0], sizes[-1]
    for code in codes:
        a_rate, a_peak = median_of(runs[code, small])
        b_rate, b_peak = median_of(runs[code, large])
        if large != small and a_rate and b_rate:
            lines.append(
                f"- {code}: {large:,} events take {b_peak / a_peak:.2f}x the peak memory of "
                f"{small:,} (goal at most 1.5x) at {b_rate / a_rate:.0%} of its events "
                "per second (goal at least 80%)"
            )
    if len(codes) == 2:
        for size in sizes:
            a_rate, a_peak = median_of(runs[codes[0], size])
            b_rate, b_peak = median_of(runs[codes[1], size])
            if a_rate and b_rate:
                pairs = [
                    f"{a.events_per_s / b.events_per_s:.2f}x"
                    for a, b in zip(runs[codes[0], size], runs[codes[1], size], strict=False)
                    if a.events_per_s and b.events_per_s
                ]
                lines.append(
                    f"- at {size:,} events, {codes[0]} runs {a_rate / b_rate:.2f}x the "
                    f"events per second of {codes[1]} (goal at least 2x) in "
                    f"{a_peak / b_peak:.2f}x its peak memory"
                    + (
                        f" (medians of {len(pairs)} runs each; pair by pair: {', '.join(pairs)})"
                        if len(pairs) > 1
                        else ""
                    )
                )
    return "\n".join(lines)


def median_of(runs: list[RunResult]) -> tuple[float | None, float]:
    """(events per second, peak MiB) of `runs` of one code and size: the medians, so that with --repeat
    one run slowed by a neighbour on the machine does not decide the verdict; (None, 0) unless all were ok."""
    if not runs or any(r.events_per_s is None for r in runs):
        return None, 0.0
    return statistics.median(r.events_per_s for r in runs), statistics.median(r.peak_mib for r in runs)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes such as 100000,1000000, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be whole numbers of at least 1, not {text!r}")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[100_000, 1_000_000],
        help="events per run, comma-separated (default 100000,1000000)",
    )
    parser.add_argument("--people", type=int, default=100_000, help="distinct people, the same at every size")
    parser.add_argument(
        "--companies", type=int, default=2_000, help="distinct companies (groupId) (default 2000)"
    )
    parser.add_argument("--group-share", type=float, default=0.1, help="share of group events (default 0.1)")
    parser.add_argument("--files", type=int, default=4, help="gzip files per size (default 4)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--code", type=Path, help="run the pipeline of this checkout instead of this tree")
    which.add_argument("--compare", type=Path, help="run this tree and this checkout, interleaved")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per size and code, interleaved (default: 3 with --compare, whose verdict then compares "
        "medians, as one run slowed by a neighbour on a shared machine should not decide it; else 1)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds before a run is killed (default 900)"
    )
    parser.add_argument(
        "--pipeline-args",
        default="",
        help="extra options for every pipeline run, as one quoted string (e.g. '--shards 4')",
    )
    parser.add_argument(
        "--events-dir",
        type=Path,
        help="keep the generated events here and reuse them when the parameters match (default: a temp dir)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="added to every API call by the local Salesforce, as a real org's round trips would be "
        "(default 0: loopback; bench/bulk_bench.py uses 100)",
    )
    args = parser.parse_args()
    if args.repeat is None:
        args.repeat = 3 if args.compare else 1
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    PIPELINE_ARGS[:] = shlex.split(args.pipeline_args)
    if args.people < 1 or args.companies < 1 or not 0 <= args.group_share < 1 or args.files < 1:
        parser.error("--people, --companies and --files must be at least 1, --group-share in [0, 1)")

    codes = [args.code.resolve()] if args.code else [REPO_ROOT]
    if args.compare:
        codes.append(args.compare.resolve())
    labels = {code: describe_code(code) for code in codes}
    for code in codes:
        if not (code / "pipeline" / "__main__.py").exists():
            parser.error(f"{code} has no pipeline/__main__.py: give a checkout of this project")

    with tempfile.TemporaryDirectory(prefix="beamforce-backfill-") as tmp:
        root = args.events_dir.resolve() if args.events_dir else Path(tmp) / "events"
        sets, rates = {}, {}
        for size in sorted(args.sizes):
            started = time.perf_counter()
            sets[size] = generate(
                root / f"{size}-events",
                size,
                args.people,
                args.companies,
                args.files,
                args.group_share,
                args.seed,
            )
            s = sets[size]
            print(
                f"events: {size:,} ({s.identifies:,} identify, {s.groups:,} group; "
                f"{s.gzip_bytes / 1e6:,.0f} MB gzip) ready in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            rates[size] = json_rates(s)
        config = Path(tmp) / "org.yaml"
        org = {**ORG_CONFIG, "faults": {"latency_ms": args.latency_ms}} if args.latency_ms else ORG_CONFIG
        config.write_text(json.dumps(org))  # JSON is YAML
        results = []
        with start_emulator(Path(tmp) / "org", config) as emu:
            for size in sorted(args.sizes):
                for n in range(args.repeat):
                    for i, code in enumerate(codes):
                        out = Path(tmp) / "runs" / f"{size}-{n}-{i}"
                        results.append(measure(labels[code], code, sets[size], emu, out, args.timeout))

    print()
    print(f"Command: .venv/bin/python -m bench.backfill_bench {shlex.join(sys.argv[1:])}")
    print(f"Machine: {machine()}")
    print(
        f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; people: {args.people:,}, "
        f"companies: {args.companies:,}, group share {args.group_share:.0%}; "
        f"latency {args.latency_ms:g} ms added to every API call; "
        "1-minute load average before the runs: " + ", ".join(f"{r.load_before:.1f}" for r in results)
    )
    print()
    print(report(results, sets, rates))


if __name__ == "__main__":
    main()
