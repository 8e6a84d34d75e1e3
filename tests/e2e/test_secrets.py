"""No secret leaves the workers: for every --auth flow, canary secrets are looked for in the pickled job
graph, its display data, the logs, the dead letters and the summary of a real run."""

import base64
import bz2
import glob
import json
import logging
import re
import zlib

import apache_beam as beam
import pytest
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.transforms.display import DisplayData, HasDisplayData

import pipeline.main as pipeline_main
from salesforce.credentials import CREDENTIAL_VARS
from tests.e2e.conftest import records, write_lines
from tests.e2e.streaming_helpers import identify
from tests.emulator.oauth_org import (
    CONSUMER_SECRET,
    FLOWS,
    PASSWORD,
    SECURITY_TOKEN,
    flow_environ,
    issue_refresh_token,
    oauth_emulator,
)

pytestmark = pytest.mark.e2e

# Sessions (access tokens) are secrets too: the emulator's start with the org id, as Salesforce's do.
SESSION_ID = re.compile(rb"00D000000000001!\S{20}")
TOO_LONG = "x" * 70 + "@example.com"  # longer than Lead.Email: a dead letter from the writer


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with oauth_emulator(tmp_path_factory.mktemp("secrets")) as emu:
        yield emu


def _unpickled(payload: bytes) -> bytes:
    """A DoFn as Beam puts it in the graph (base64 of a bz2 or zlib pickle), back to the pickle's bytes."""
    data = base64.b64decode(payload)
    for decompress in (bz2.decompress, zlib.decompress):
        try:
            return decompress(data)
        except (OSError, ValueError, zlib.error):
            continue
    return data


def _graph_and_display_data(p: beam.Pipeline) -> tuple[bytes, str]:
    """The job's graph as a runner gets it (with every DoFn's pickle opened), and its display data."""
    proto = p.to_runner_api()
    parts = [proto.SerializeToString()]
    for transform in proto.components.transforms.values():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            do_fn = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn
            parts.append(_unpickled(do_fn.payload))
    shown: list[str] = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node) -> None:
            for item in (node.transform, getattr(node.transform, "fn", None)):
                if isinstance(item, HasDisplayData):
                    shown.extend(f"{i.key}={i.value}" for i in DisplayData.create_from(item).items)

        enter_composite_transform = visit_transform

    p.visit(Visitor())
    return b"".join(parts), "\n".join(shown)


@pytest.mark.parametrize("auth", FLOWS)
def test_no_secret_in_the_graph_display_data_logs_dead_letters_or_summary(
    emu, tmp_path, monkeypatch, caplog, capsys, auth
):
    emu.admin("POST", "reset")
    refresh_token = issue_refresh_token(emu)
    private_key = emu.key_path.read_text()
    key_lines = [line for line in private_key.splitlines() if line and not line.startswith("-----")]
    canaries = [PASSWORD, SECURITY_TOKEN, CONSUMER_SECRET, refresh_token, private_key, *key_lines]
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in flow_environ(emu, auth, refresh_token).items():
        monkeypatch.setenv(name, value)
    built: list[beam.Pipeline] = []
    real_build = pipeline_main.build

    def recording_build(p, *args, **kwargs):
        built.append(p)
        return real_build(p, *args, **kwargs)

    monkeypatch.setattr(pipeline_main, "build", recording_build)
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            identify("ok", 1, email="ann@example.com", title="CTO"),
            identify("long", 2, email=TOO_LONG),
            "{not json",
        ],
    )
    dead_prefix = tmp_path / "dead" / "dead_letters"
    summary_file = tmp_path / "summary.json"
    caplog.set_level(logging.DEBUG)

    status = pipeline_main.main(
        [
            "--input",
            str(events),
            "--auth",
            auth,
            "--salesforce_login_url",
            emu.info["login_url"],
            "--salesforce_ca_bundle",
            emu.info["ca_bundle"],
            "--dead_letter_output",
            str(dead_prefix),
            "--summary_output",
            str(summary_file),
            "--progress_seconds",
            "0.1",
        ]
    )

    # The run did its work: one record written, two dead letters (a bad line, an email too long).
    assert status == 0
    assert [r["Email"] for r in records(emu, "Lead")] == ["ann@example.com"]
    dead = "".join(open(f, encoding="utf-8").read() for f in sorted(glob.glob(f"{dead_prefix}*")))
    assert sorted(json.loads(line)["reason"] for line in dead.splitlines()) == [
        "STRING_TOO_LONG",
        "invalid_json",
    ]
    summary = json.loads(summary_file.read_text())
    assert (summary["events_read"], summary["events_written"], summary["balanced"]) == (3, 1, True)
    graph, display_data = _graph_and_display_data(built[0])
    assert f"auth={auth}" in display_data  # display data tells how the job logs in, not with what
    output = capsys.readouterr()
    logs = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )  # fmt: skip
    places = {
        "pickled graph": graph,
        "display data": display_data.encode(),
        "logs": logs.encode(),
        "dead letters": dead.encode(),
        "summary": (output.out + output.err + summary_file.read_text()).encode(),
    }
    # Named by their first characters only, so that a failure does not print the secret.
    leaks = [(place, c[:6]) for place, text in places.items() for c in canaries if c.encode() in text]
    leaks += [(place, "session id") for place, text in places.items() if SESSION_ID.search(text)]
    assert leaks == []
    # The canaries are real: the run logged in with them, and the graph names where workers read them.
    assert b"CredentialsSource" in graph
