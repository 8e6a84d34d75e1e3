"""Issue 10's acceptance tests ("Hardening from a hostile review"): the pipeline against the local Salesforce.

1. The hostile corpus (tests/e2e/hostile_corpus.py) in one run: exact records, dead letters and counts,
   dead-letter files that are valid input, and a replay of them that gives the same dead letters.
2. Two jobs at once over the same new emails: no duplicates with docs/org-setup.md's fields (and, as the
   control, duplicates without them).
3. Replays never revert newer values (docs/org-setup.md's times field).
4. 1e400 in a trait and a numeric groupId 10.0.

Expectations come from the seed, README, docs/ and the issue, not from the code. Emulators and runs are shared
by module-scoped fixtures, so that each run happens once.
"""

import contextlib
import glob
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.main import main, run
from tests.e2e import hostile_corpus as corpus
from tests.e2e.conftest import connection_flags, emulator_with, environ, records

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
KEY = "Beamforce_Key__c"
TIMES = "Beamforce_Field_Times__c"
# docs/org-setup.md's fields, plus the custom field the corpus and the replay tests write.
SETUP_ORG_CONFIG = f"""\
custom_fields:
  Lead:
    - {{name: {KEY}, type: external_id, length: 255, unique: true}}
    - {{name: {TIMES}, type: textarea, length: 131072}}
    - {{name: note__c, type: string, length: 255}}
  Account:
    - {{name: {KEY}, type: external_id, length: 255, unique: true}}
    - {{name: {TIMES}, type: textarea, length: 131072}}
    - {{name: note__c, type: string, length: 255}}
"""
EXIT_RETRYABLE = 3


# --- shared helpers --------------------------------------------------------------------------------


def reset(emu) -> None:
    emu.admin("POST", "/_emulator/reset")
    emu.admin("POST", "/_emulator/faults", json={})
    emu.admin("POST", "/_emulator/limits", json={"remaining": 100_000})
    emu.admin("POST", "/_emulator/calls/reset")


def canonical(event: Any) -> str:
    """An event as comparable text; lone surrogates as U+FFFD (how parsing and Salesforce hold them)."""
    return json.dumps(corpus.without_surrogates(event), sort_keys=True, ensure_ascii=True)


def dead_key(letter: dict) -> tuple[str, str, bool, str]:
    return letter["stage"], letter["reason"], letter["retryable"], canonical(letter["event"])


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_dead_letters(prefix: str) -> tuple[list[dict], list[Path]]:
    """Every dead letter under `prefix`, read strictly: UTF-8, JSON without NaN or Infinity."""
    files = sorted(Path(p) for p in glob.glob(prefix + "*.jsonl"))
    letters = []
    for f in files:
        text = f.read_bytes().decode("utf-8")  # strict: raises on anything that is not UTF-8
        for line in text.splitlines():
            if line.strip():
                letters.append(json.loads(line, parse_constant=_refuse_constant))
    return letters, files


def assert_balanced(summary: dict) -> None:
    outcomes = (
        sum(n for by in summary["written"].values() for n in by.values())
        + sum(summary["filtered"].values())
        + summary["deduplicated"]
        + sum(summary["dead_lettered"].values())
    )
    assert summary["events_read"] == outcomes, summary
    assert summary["balanced"] is True


def by_key(emu, sobject: str, match_field: str) -> dict[str, dict]:
    """The org's records of `sobject` as the pipeline wrote them, by lower-cased match value."""
    rows = records(emu, sobject)
    out: dict[str, dict] = {}
    for row in rows:
        key = corpus.record_key(sobject, str(row.get(match_field, "")))[1]
        assert key not in out, f"two {sobject} records for {key!r}: {out[key]} and {row}"
        out[key] = row
    return out


@contextlib.contextmanager
def credentials_in_environ(emu):
    """main() reads the credentials from os.environ, as the command line does."""
    saved = {k: os.environ.get(k) for k in environ(emu)}
    os.environ.update(environ(emu))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- emulators -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_org(tmp_path_factory):
    """An org with the corpus's custom fields and without docs/org-setup.md's fields."""
    with emulator_with(tmp_path_factory, "hardening-plain", corpus.ORG_CONFIG) as emu:
        yield emu


@pytest.fixture(scope="module")
def setup_org(tmp_path_factory):
    """An org set up as docs/org-setup.md says."""
    with emulator_with(tmp_path_factory, "hardening-setup", SETUP_ORG_CONFIG) as emu:
        yield emu


# --- 1. the hostile corpus ---------------------------------------------------------------------------


@dataclass
class CorpusRun:
    summary: dict
    dead: list[dict]
    dead_files: list[Path]
    dead_prefix: str
    source: str
    leads: dict[str, dict]
    accounts: dict[str, dict]


def _run_files(emu, input_glob: str, prefix: str, summary_file: Path) -> dict:
    returned = run(
        [
            "--input",
            input_glob,
            "--dead_letter_output",
            prefix,
            "--summary_output",
            str(summary_file),
            *connection_flags(emu),
        ],
        environ(emu),
    )
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    assert summary == json.loads(returned.to_json())
    return summary


@pytest.fixture(scope="module")
def corpus_run(plain_org, tmp_path_factory) -> CorpusRun:
    reset(plain_org)
    base = tmp_path_factory.mktemp("corpus")
    source = base / "hostile.jsonl"
    source.write_bytes(corpus.file_bytes())
    prefix = str(base / "dead" / "letters")
    summary = _run_files(plain_org, str(source), prefix, base / "summary.json")
    dead, files = read_dead_letters(prefix)
    return CorpusRun(
        summary,
        dead,
        files,
        prefix,
        str(source),
        by_key(plain_org, "Lead", "Email"),
        by_key(plain_org, "Account", "AccountNumber"),
    )


@pytest.fixture(scope="module")
def replay_run(corpus_run, plain_org, tmp_path_factory) -> CorpusRun:
    """The corpus run's dead-letter files given back as --input, once."""
    base = tmp_path_factory.mktemp("corpus-replay")
    prefix = str(base / "dead" / "letters")
    summary = _run_files(plain_org, corpus_run.dead_prefix + "*.jsonl", prefix, base / "summary.json")
    dead, files = read_dead_letters(prefix)
    return CorpusRun(
        summary,
        dead,
        files,
        prefix,
        corpus_run.dead_prefix,
        by_key(plain_org, "Lead", "Email"),
        by_key(plain_org, "Account", "AccountNumber"),
    )


def _case_id(case: corpus.Case) -> str:
    return f"{case.category}/{case.name}"


WRITTEN = [c for c in corpus.CORPUS if isinstance(c.outcome, corpus.Written)]
DEAD = [c for c in corpus.CORPUS if isinstance(c.outcome, corpus.Dead)]
NOT_RETRYABLE = [c for c in DEAD if not c.outcome.retryable]


def test_the_corpus_is_large_varied_and_well_formed():
    by_category = corpus.by_category()
    assert len(corpus.CORPUS) >= 150
    assert set(by_category) >= {
        "encodings",
        "nesting",
        "types",
        "numbers",
        "timestamps",
        "injection",
        "sizes",
        "line-endings",
        "blank",
        "not-an-object",
        "replays",
    }
    assert corpus.conflicts() == []
    ends = {"\n", "\r\n", "\r", ""}
    for i, case in enumerate(corpus.CORPUS):
        data = case.line if isinstance(case.line, bytes) else case.line.encode("utf-8")
        # A line holds no line break of its own: its ending is `end`.
        assert b"\n" not in data and b"\r" not in data, case.name
        assert case.end in ends, case.name
        assert case.end or i == len(corpus.CORPUS) - 1, case.name
        # A CR then a line starting with LF would read as one CRLF: the corpus never does that.
        if i and corpus.CORPUS[i - 1].end == "\r":
            assert not (data + case.end.encode()).startswith(b"\n"), case.name
    assert len({c.name for c in corpus.CORPUS}) == len(corpus.CORPUS)


def test_corpus_run_accounts_for_every_event(corpus_run):
    summary = corpus_run.summary
    expected = corpus.counts()
    assert_balanced(summary)
    got = {k: summary[k] for k in expected}
    assert got == expected
    assert summary["retryable_dead_letters"] == 0
    assert len(corpus_run.dead) == summary["events_dead_lettered"]


def test_corpus_records_are_exactly_the_documented_ones(corpus_run):
    expected = corpus.expected_records()
    actual = {("Lead", k): v for k, v in corpus_run.leads.items()}
    actual |= {("Account", k): v for k, v in corpus_run.accounts.items()}
    # (what the org holds, what the corpus documents) for every record that differs, missing or extra.
    wrong = {
        k: (actual.get(k), expected.get(k))
        for k in actual.keys() | expected.keys()
        if actual.get(k) != expected.get(k)
    }
    assert wrong == {}


@pytest.mark.parametrize("case", WRITTEN, ids=_case_id)
def test_written_case_field_by_field(corpus_run, case):
    o = case.outcome
    held = corpus_run.leads if o.sobject == "Lead" else corpus_run.accounts
    _, key = corpus.record_key(o.sobject, o.key)
    assert key in held, f"no {o.sobject} {o.key!r}"
    record = held[key]
    assert {name: record.get(name) for name in o.fields} == o.fields


def test_corpus_dead_letters_are_exact(corpus_run):
    expected = Counter(
        (c.outcome.stage, c.outcome.reason, c.outcome.retryable, canonical(c.outcome.event)) for c in DEAD
    )
    actual = Counter(dead_key(d) for d in corpus_run.dead)
    missing = expected - actual
    unexpected = actual - expected
    assert (sorted(missing.elements()), sorted(unexpected.elements())) == ([], [])
    assert Counter(r for _, r, _, _ in actual.elements()) == Counter(r for _, r, _, _ in expected.elements())


@pytest.mark.parametrize("case", DEAD, ids=_case_id)
def test_dead_letter_case(corpus_run, case):
    o = case.outcome
    mine = [d for d in corpus_run.dead if canonical(d["event"]) == canonical(o.event)]
    assert [(d["stage"], d["reason"], d["retryable"]) for d in mine][:1] == [(o.stage, o.reason, o.retryable)]
    for d in mine:
        assert d["message"]
        assert d["source"] == corpus_run.source
        assert d["time"].endswith("Z")


def test_dead_letter_files_are_utf8_json_lines_without_non_finite_numbers(corpus_run):
    # read_dead_letters decodes strictly and refuses NaN and Infinity; here, every line is a dead letter.
    assert corpus_run.dead_files
    for f in corpus_run.dead_files:
        for line in f.read_bytes().decode("utf-8").splitlines():
            letter = json.loads(line, parse_constant=_refuse_constant)
            assert {"stage", "reason", "message", "retryable", "event", "time"} <= letter.keys()


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)


def test_dead_letters_hold_no_lone_surrogates(corpus_run):
    # parsing.py: lone surrogates, "which UTF-8 and so Salesforce and every output cannot hold, become
    # U+FFFD in every string, keys included" -- whichever stage dead-lettered the event.
    held = [
        (d["stage"], d["reason"], d["event"].get("messageId") if isinstance(d["event"], dict) else None)
        for d in corpus_run.dead
        if any(corpus.SURROGATE.search(s) for s in _strings(d["event"]))
    ]
    assert held == []


def test_replaying_the_dead_letters_gives_the_same_dead_letters(corpus_run, replay_run):
    first = Counter(dead_key(d) for d in corpus_run.dead if not d["retryable"])
    again = Counter(dead_key(d) for d in replay_run.dead if not d["retryable"])
    missing = first - again
    unexpected = again - first
    assert (sorted(missing.elements()), sorted(unexpected.elements())) == ([], [])
    assert_balanced(replay_run.summary)
    assert replay_run.summary["written"] == {}
    assert replay_run.summary["dead_lettered"] == corpus_run.summary["dead_lettered"]
    # Nothing changed in the org.
    assert (replay_run.leads, replay_run.accounts) == (corpus_run.leads, corpus_run.accounts)


@pytest.mark.parametrize("case", NOT_RETRYABLE, ids=_case_id)
def test_each_dead_letter_replays_as_itself(corpus_run, replay_run, case):
    o = case.outcome
    again = [dead_key(d)[:3] for d in replay_run.dead if canonical(d["event"]) == canonical(o.event)]
    assert again[:1] == [(o.stage, o.reason, o.retryable)]


# --- 4. 1e400 in a trait, a numeric groupId 10.0 ------------------------------------------------------


def _case(name: str) -> corpus.Case:
    (case,) = [c for c in corpus.CORPUS if c.name == name]
    return case


def test_1e400_in_a_trait_replays_as_the_same_dead_letter(corpus_run, replay_run):
    line = _case("1e400-in-trait").line
    for result in (corpus_run, replay_run):
        held = [d for d in result.dead if d["event"] == line]
        assert [(d["stage"], d["reason"]) for d in held] == [("parse", "invalid_number")]
        assert all(d["reason"] != "invalid_json" for d in result.dead if "1e400" in json.dumps(d["event"]))


def test_numeric_group_id_10_0_is_account_number_10(corpus_run):
    assert corpus_run.accounts["10"] == {"AccountNumber": "10", "Name": "Numeric 10.0"}
    for text, number in [("1e21", "1e+21"), ("-0.0", "0")]:
        assert corpus_run.accounts[number]["AccountNumber"] == number, text


# --- 2. two jobs at once ------------------------------------------------------------------------------

RACE_EMAILS = [f"race-{i:03d}@example.com" for i in range(100)]
T_A = "2026-03-01T10:00:00.000Z"
T_B = "2026-03-01T11:00:00.000Z"


def _race_events(job: str) -> list[dict]:
    events = []
    for i, email in enumerate(RACE_EMAILS):
        if job == "a":
            traits = {"email": email, "title": "From A", "lastName": f"Alpha {i}"}
            ts = T_A
        else:
            traits = {"email": email, "title": "From B", "phone": f"555-{i:04d}"}
            ts = T_B
        events.append(corpus.identify(f"race-{job}-{i}", traits, ts=ts))
    return events


@dataclass
class Race:
    codes: list[int]
    summaries: list[dict]
    outputs: list[str]
    leads: list[dict]
    reached: bool


def _race(emu, base: Path, *flags: str) -> Race:
    """Two `python -m pipeline` processes over the same 100 new emails, their lookups answered before
    either creates: every API call is held until both jobs have one in flight, then all take 300 ms."""
    reset(emu)
    env = dict(os.environ) | environ(emu)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    emu.admin("POST", "/_emulator/faults", json={"latency_ms": 300, "hold": True})
    procs = []
    for job in ("a", "b"):
        events = base / f"{job}.jsonl"
        events.write_text("".join(corpus.js(e) + "\n" for e in _race_events(job)), encoding="utf-8")
        argv = [
            sys.executable,
            "-m",
            "pipeline",
            "--input",
            str(events),
            "--dead_letter_output",
            str(base / f"dead-{job}" / "letters"),
            "--summary_output",
            str(base / f"summary-{job}.json"),
            "--progress_seconds",
            "600",
            *flags,
            *connection_flags(emu),
        ]
        procs.append(
            subprocess.Popen(
                argv, cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    try:
        reached = emu.admin("POST", "/_emulator/in_flight/wait", json={"count": 2})["reached"]
    finally:
        emu.admin("POST", "/_emulator/faults", json={"latency_ms": 300})
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    emu.admin("POST", "/_emulator/faults", json={})
    summaries = []
    for job in ("a", "b"):
        path = base / f"summary-{job}.json"
        summaries.append(json.loads(path.read_text()) if path.exists() else {})
    return Race([p.returncode for p in procs], summaries, outputs, records(emu, "Lead"), reached)


@pytest.fixture(scope="module")
def race_with_setup(setup_org, tmp_path_factory) -> Race:
    return _race(setup_org, tmp_path_factory.mktemp("race-setup"))


@pytest.fixture(scope="module")
def race_streaming_with_setup(setup_org, race_with_setup, tmp_path_factory) -> Race:
    # The streaming path (stateful dedup, buffers, the same writer) as two separate workers.
    return _race(
        setup_org, tmp_path_factory.mktemp("race-stream"), "--streaming", "--max_buffering_seconds", "1"
    )


@pytest.fixture(scope="module")
def race_without_setup(plain_org, corpus_run, replay_run, tmp_path_factory) -> Race:
    # After the corpus runs: it resets the org they read.
    return _race(plain_org, tmp_path_factory.mktemp("race-plain"))


def test_two_jobs_at_once_create_each_lead_once(race_with_setup):
    race = race_with_setup
    assert race.reached, "both jobs should have had a call in flight at once"
    assert race.codes == [0, 0], race.outputs
    for summary in race.summaries:
        assert_balanced(summary)
        assert summary["events_read"] == 100
        assert summary["dead_lettered"] == {}
        assert sum(summary["written"]["Lead"].values()) == 100
    # Salesforce refused the second create of each key; the loser updated the winner's record.
    creates = sum(s["records_written"]["Lead"].get("create", 0) for s in race.summaries)
    assert creates == 100
    assert sorted(r["Email"] for r in race.leads) == RACE_EMAILS
    by_email = {r["Email"]: r for r in race.leads}
    for i, email in enumerate(RACE_EMAILS):
        record = dict(by_email[email])
        times = json.loads(record.pop(TIMES))
        # B's events are newer: its values win whoever created; A's LastName is a value B never had.
        assert record == {
            "Email": email,
            "LastName": f"Alpha {i}",
            "Company": "n/a",
            "Title": "From B",
            "Phone": f"555-{i:04d}",
            KEY: email,
        }
        assert {k: times.get(k) for k in ("Title", "Phone", "LastName")} == {
            "Title": T_B,
            "Phone": T_B,
            "LastName": T_A,
        }


def test_without_the_org_setup_two_jobs_at_once_duplicate(race_without_setup):
    # docs/org-setup.md: "Two runs over the same 100 new emails at once create 200 Leads."
    race = race_without_setup
    assert race.reached
    assert race.codes == [0, 0], race.outputs
    for summary in race.summaries:
        assert_balanced(summary)
        assert summary["records_written"] == {"Lead": {"create": 100}}
    assert len(race.leads) == 200
    assert Counter(r["Email"] for r in race.leads) == Counter({e: 2 for e in RACE_EMAILS})


# --- 3. replays never revert newer values ---------------------------------------------------------------

T_OLD = "2026-01-01T00:00:00.000Z"
T_NEW = "2026-02-01T00:00:00.000Z"
OLD_EVENTS = [
    corpus.identify(
        "old-keep",
        {"email": "keep@example.com", "title": "Old title", "lastName": "Old", "phone": "111", "note": "old"},
        ts=T_OLD,
    ),
    corpus.identify(
        "old-mixed", {"email": "Mixed@Example.com", "title": "Old", "company": "Old Co"}, ts=T_OLD
    ),
    corpus.identify("old-only", {"email": "only-old@example.com", "title": "Only old"}, ts=T_OLD),
    corpus.group("old-group", "R-1", {"name": "Old Co", "phone": "1", "description": "old desc"}, ts=T_OLD),
]
NEW_EVENTS = [
    corpus.identify(
        "new-keep", {"email": "keep@example.com", "title": "New title", "lastName": "New"}, ts=T_NEW
    ),
    corpus.identify("new-mixed", {"email": "mixed@example.com", "title": "New"}, ts=T_NEW),
    corpus.group("new-group", "R-1", {"name": "New Co"}, ts=T_NEW),
]


@dataclass
class Replay:
    codes: list[int]
    summaries: list[dict]
    dead: list[list[dict]]
    leads: dict[str, dict]
    accounts: dict[str, dict]


def _main(emu, base: Path, name: str, input_glob: str) -> tuple[int, dict, list[dict]]:
    prefix = str(base / f"dead-{name}" / "letters")
    summary_file = base / f"summary-{name}.json"
    argv = [
        "--input",
        input_glob,
        "--dead_letter_output",
        prefix,
        "--summary_output",
        str(summary_file),
        *connection_flags(emu),
    ]
    with credentials_in_environ(emu):
        code = main(argv)
    dead, _ = read_dead_letters(prefix)
    return code, json.loads(summary_file.read_text()), dead


@pytest.fixture(scope="module")
def replay_after_newer(setup_org, race_with_setup, tmp_path_factory) -> Replay:
    # After the race: both use the set-up org and each starts by emptying it.
    reset(setup_org)
    base = tmp_path_factory.mktemp("replay")
    (base / "old.jsonl").write_text("".join(corpus.js(e) + "\n" for e in OLD_EVENTS), encoding="utf-8")
    (base / "new.jsonl").write_text("".join(corpus.js(e) + "\n" for e in NEW_EVENTS), encoding="utf-8")
    setup_org.admin("POST", "/_emulator/limits", json={"remaining": 0})
    a = _main(setup_org, base, "old", str(base / "old.jsonl"))
    setup_org.admin("POST", "/_emulator/limits", json={"remaining": 100_000})
    b = _main(setup_org, base, "new", str(base / "new.jsonl"))
    c = _main(setup_org, base, "replay", str(base / "dead-old" / "letters*.jsonl"))
    return Replay(
        [a[0], b[0], c[0]],
        [a[1], b[1], c[1]],
        [a[2], b[2], c[2]],
        by_key(setup_org, "Lead", "Email"),
        by_key(setup_org, "Account", "AccountNumber"),
    )


def test_a_run_while_the_api_limit_is_exhausted_exits_3_with_retryable_dead_letters(replay_after_newer):
    code, summary, dead = (
        replay_after_newer.codes[0],
        replay_after_newer.summaries[0],
        replay_after_newer.dead[0],
    )
    assert code == EXIT_RETRYABLE
    assert_balanced(summary)
    assert summary["retryable_dead_letters"] == len(OLD_EVENTS)
    assert sorted(canonical(d["event"]) for d in dead) == sorted(canonical(e) for e in OLD_EVENTS)
    assert {(d["stage"], d["reason"], d["retryable"]) for d in dead} == {
        ("write", "REQUEST_LIMIT_EXCEEDED", True)
    }


def test_the_newer_run_and_the_replay_exit_0(replay_after_newer):
    assert replay_after_newer.codes[1:] == [0, 0]
    for summary in replay_after_newer.summaries[1:]:
        assert_balanced(summary)
        assert summary["dead_lettered"] == {}
    assert replay_after_newer.summaries[2]["stale_fields_skipped"] > 0


def _without_times(record: dict) -> tuple[dict, dict]:
    record = dict(record)
    return record, json.loads(record.pop(TIMES))


def test_the_replay_keeps_the_newest_value_of_every_field(replay_after_newer):
    leads = {k: _without_times(v) for k, v in replay_after_newer.leads.items()}
    accounts = {k: _without_times(v) for k, v in replay_after_newer.accounts.items()}
    assert {k: r for k, (r, _) in leads.items()} == {
        "keep@example.com": {
            "Email": "keep@example.com",
            "Title": "New title",
            "LastName": "New",
            "Company": "n/a",
            "Phone": "111",
            "note__c": "old",
            KEY: "keep@example.com",
        },
        "mixed@example.com": {
            "Email": "mixed@example.com",
            "Title": "New",
            "LastName": "n/a",
            "Company": "Old Co",
            KEY: "mixed@example.com",
        },
        "only-old@example.com": {
            "Email": "only-old@example.com",
            "Title": "Only old",
            "LastName": "n/a",
            "Company": "n/a",
            KEY: "only-old@example.com",
        },
    }
    assert {k: r for k, (r, _) in accounts.items()} == {
        "r-1": {"AccountNumber": "R-1", "Name": "New Co", "Phone": "1", "Description": "old desc", KEY: "r-1"}
    }
    # The times field says which event set each field.
    keep_times = leads["keep@example.com"][1]
    assert {k: keep_times.get(k) for k in ("Email", "Title", "LastName", "Phone", "note__c")} == {
        "Email": T_NEW,
        "Title": T_NEW,
        "LastName": T_NEW,
        "Phone": T_OLD,
        "note__c": T_OLD,
    }
    r1_times = accounts["r-1"][1]
    assert {k: r1_times.get(k) for k in ("Name", "Phone", "Description")} == {
        "Name": T_NEW,
        "Phone": T_OLD,
        "Description": T_OLD,
    }


# --- timestamps outside years 1 to 9999 ------------------------------------------------------------------


def test_times_outside_years_1_to_9999_do_not_fail_the_run(plain_org, corpus_run, replay_run, tmp_path):
    # Valid ISO 8601 times; "bad input gets a clear answer", never a failed run. (Runs after the corpus
    # fixtures, which read the org this test empties.)
    reset(plain_org)
    source = tmp_path / "times.jsonl"
    source.write_bytes(corpus.file_bytes(corpus.OUT_OF_RANGE_TIMES))
    prefix = str(tmp_path / "dead" / "letters")
    summary = _run_files(plain_org, str(source), prefix, tmp_path / "summary.json")
    assert_balanced(summary)
    assert read_dead_letters(prefix)[0] == []
    leads = by_key(plain_org, "Lead", "Email")
    assert {("Lead", k): v for k, v in leads.items()} == corpus.expected_records(corpus.OUT_OF_RANGE_TIMES)


def test_two_streaming_jobs_at_once_create_each_lead_once(race_streaming_with_setup):
    race = race_streaming_with_setup
    assert race.reached, "both jobs should have had a call in flight at once"
    assert race.codes == [0, 0], race.outputs
    for summary in race.summaries:
        assert_balanced(summary)
        assert summary["events_read"] == 100
        assert summary["dead_lettered"] == {}
    assert sum(s["records_written"]["Lead"].get("create", 0) for s in race.summaries) == 100
    assert sorted(r["Email"] for r in race.leads) == RACE_EMAILS
