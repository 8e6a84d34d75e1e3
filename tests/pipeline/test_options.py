"""Options: every bad option or environment stops the run with a message naming the fix."""

import importlib.util
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.main import help_parser, main
from pipeline.options import BeamforceOptions, check_not_repeated, unknown_flags, validate
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import ConfigurationError

ENV = {
    "SALESFORCE_USERNAME": "api@example.com",
    "SALESFORCE_PASSWORD": "pw",
    "SALESFORCE_SECURITY_TOKEN": "tok",
}


@pytest.fixture
def events(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("{}\n")
    return str(path)


NO_SOURCE = (
    "--input is required: give the event files to read, e.g. --input 'events/*.jsonl' (or read an archive "
    "with --archive, or a stream with --input_subscription, --input_topic or --kafka_topic)"
)


def _validate(argv, environ=ENV):
    return validate(PipelineOptions(argv), environ)


def test_defaults(events):
    credentials, settings = _validate(["--input", events])
    assert credentials == Credentials("api@example.com", "pw", "tok")
    # The password (SOAP) login tops out at 64.0; the OAuth flows default to newer versions.
    assert settings == ConnectionSettings(login_url="https://login.salesforce.com", api_version="64.0")
    options = PipelineOptions(["--input", events])
    o = options.view_as(BeamforceOptions)
    # Defaults that depend on --streaming are left open at parse time and resolved by validate().
    assert (o.address_mapping, o.always_enabled, o.batch_size, o.shards) == ("billing", False, None, None)
    assert (o.on_api_limit, o.dead_letter_output, o.summary_output) == (None, None, None)
    assert (o.salesforce_credentials_file, o.dedup_ttl_seconds) == (None, 86400.0)
    assert (o.max_buffering_seconds, o.progress_seconds) == (5.0, 60.0)
    validate(options, ENV)
    assert (o.batch_size, o.on_api_limit) == (1000, "dead_letter")


def test_streaming_defaults(events):
    options = PipelineOptions(["--input", events, "--streaming"])
    validate(options, ENV)
    o = options.view_as(BeamforceOptions)
    assert (o.batch_size, o.on_api_limit) == (200, "wait")


def test_given_batch_size_and_on_api_limit_are_kept(events):
    options = PipelineOptions(
        ["--input", events, "--streaming", "--batch_size", "7", "--on_api_limit", "dead_letter"]
    )
    validate(options, ENV)
    o = options.view_as(BeamforceOptions)
    assert (o.batch_size, o.on_api_limit) == (7, "dead_letter")


@pytest.mark.parametrize(
    "extra, login_url, sandbox",
    [
        (["--sandbox", "uat"], "https://test.salesforce.com", "uat"),
        (
            ["--sandbox", "uat", "--salesforce_login_url", "https://acme--uat.sandbox.my.salesforce.com/"],
            "https://acme--uat.sandbox.my.salesforce.com",
            "uat",
        ),
        (["--salesforce_login_url", "https://127.0.0.1:8443"], "https://127.0.0.1:8443", None),
    ],
)
def test_login_url_and_sandbox(events, extra, login_url, sandbox):
    _, settings = _validate(["--input", events, *extra])
    assert (settings.login_url, settings.sandbox) == (login_url, sandbox)


def test_ca_bundle_and_api_version(events, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    _, settings = _validate(
        ["--input", events, "--salesforce_ca_bundle", str(ca), "--salesforce_api_version", "62.0"]
    )
    assert (settings.ca_bundle, settings.api_version) == (str(ca), "62.0")


@pytest.mark.parametrize(
    "argv, environ, message",
    [
        ([], ENV, NO_SOURCE),
        (
            ["--input", "{tmp}/nothing/*.jsonl"],
            ENV,
            "--input '{tmp}/nothing/*.jsonl' matches no file: check the path, and quote the glob so that "
            "the shell does not expand it",
        ),
        (
            ["--input", "{events}", "--salesforce_api_version", "v59.0"],
            ENV,
            "--salesforce_api_version 'v59.0' is not supported: give a version from 31.0 to 64.0 without a "
            "leading 'v', e.g. 59.0",
        ),
        (
            ["--input", "{events}", "--salesforce_api_version", "65.0"],
            ENV,
            "--salesforce_api_version '65.0' is not supported (the password login goes up to 64.0; --auth "
            "jwt, client_credentials or refresh_token up to 66.0): give a version from 31.0 to 64.0 without "
            "a leading 'v', e.g. 59.0",
        ),
        (
            ["--input", "{events}", "--sandbox", "user@example.com.uat"],
            ENV,
            "--sandbox 'user@example.com.uat' is not a sandbox name: give the name only (letters and "
            "digits, starting with a letter), e.g. --sandbox uat",
        ),
        (
            ["--input", "{events}", "--salesforce_login_url", "http://login.salesforce.com"],
            ENV,
            "--salesforce_login_url 'http://login.salesforce.com' is not an https:// URL: Salesforce (and "
            "simple-salesforce) only speak HTTPS, e.g. https://login.salesforce.com",
        ),
        (
            ["--input", "{events}", "--salesforce_ca_bundle", "{tmp}/missing.pem"],
            ENV,
            "--salesforce_ca_bundle '{tmp}/missing.pem' is not a file: give the path of a PEM file of CA "
            "certificates",
        ),
        (
            ["--input", "{events}", "--summary_output", "{tmp}/no/such/dir/summary.json"],
            ENV,
            "--summary_output '{tmp}/no/such/dir/summary.json' cannot be written: give a file in an "
            "existing directory",
        ),
        (
            # Under a file (read-only to root too): found before Salesforce is written, not after.
            ["--input", "{events}", "--summary_output", "{events}/summary.json"],
            ENV,
            "--summary_output '{events}/summary.json' cannot be written: give a file in an existing "
            "directory",
        ),
        (
            ["--input", "{events}", "--summary_output", "{tmp}"],
            ENV,
            "--summary_output '{tmp}' is a directory: give a file name, e.g. '{tmp}/summary.json'",
        ),
        (
            # Beam matches the directory itself and then reads nothing from it: a run "done" with 0 events.
            ["--input", "{tmp}/events_dir"],
            ENV,
            "--input '{tmp}/events_dir' is a directory: give a glob of the event files in it, e.g. --input "
            "'{tmp}/events_dir/*.jsonl'",
        ),
        (
            ["--input", "{tmp}/events_dir/"],
            ENV,
            "--input '{tmp}/events_dir/' is a directory: give a glob of the event files in it, e.g. --input "
            "'{tmp}/events_dir/*.jsonl'",
        ),
        (
            ["--input", "{tmp}/events_dir/*"],
            ENV,
            "--input '{tmp}/events_dir/*' matches only directories: give a glob of the event files in "
            "them, e.g. --input '{tmp}/events_dir/*/*.jsonl'",
        ),
        (
            # Beam would write "-00000-of-00001.jsonl" into the directory.
            ["--input", "{events}", "--dead_letter_output", "{tmp}/out/"],
            ENV,
            "--dead_letter_output '{tmp}/out/' names a directory, not a file name prefix: give a prefix "
            "such as '{tmp}/out/dead_letters' (files dead_letters-SSSSS-of-NNNNN.jsonl in that directory)",
        ),
        (
            ["--input", "{events}", "--dead_letter_output", "{tmp}/events_dir"],
            ENV,
            "--dead_letter_output '{tmp}/events_dir' names a directory, not a file name prefix: give a "
            "prefix such as '{tmp}/events_dir/dead_letters' (files dead_letters-SSSSS-of-NNNNN.jsonl in "
            "that directory)",
        ),
        (
            ["--input", "{events}", "--dead_letter_output", "gs://bucket/dead/"],
            ENV,
            "--dead_letter_output 'gs://bucket/dead/' names a directory, not a file name prefix: give a "
            "prefix such as 'gs://bucket/dead/dead_letters' (files dead_letters-SSSSS-of-NNNNN.jsonl in "
            "that directory)",
        ),
        (
            # Under a file: no directory can be made there, and the dead letters would be lost.
            ["--input", "{events}", "--dead_letter_output", "{events}/dead/letters"],
            ENV,
            "--dead_letter_output '{events}/dead/letters' cannot be written: its directory is not a "
            "directory that can be created or written; give a prefix such as out/dead_letters",
        ),
        (
            [
                "--input",
                "{events}",
            ],
            {k: v for k, v in ENV.items() if k != "SALESFORCE_USERNAME"},
            "SALESFORCE_USERNAME is not set: export the Salesforce API user's username",
        ),
        (
            [
                "--input",
                "{events}",
            ],
            {**ENV, "SALESFORCE_PASSWORD": ""},
            "SALESFORCE_PASSWORD is not set: export the Salesforce API user's password",
        ),
        (
            [
                "--input",
                "{events}",
            ],
            {k: v for k, v in ENV.items() if k != "SALESFORCE_SECURITY_TOKEN"},
            "SALESFORCE_SECURITY_TOKEN is not set: export the user's security token (set it to an empty "
            "string if the org's trusted IP ranges make it unnecessary)",
        ),
        (
            ["--input", "{events}", "--sandbox", "uat"],
            {**ENV, "SALESFORCE_USERNAME": "api@example.com.uat"},
            "SALESFORCE_USERNAME already ends with '.uat': set it to the production username, --sandbox "
            "appends the sandbox name",
        ),
        # Found by a hostile review: each of these ran, wrote records, then failed or lost something.
        (
            ["--input", "{events}", "--salesforce_login_url", "https://127.0.0.1:99999"],
            ENV,
            "--salesforce_login_url 'https://127.0.0.1:99999' has no valid port: give a number from 1 to "
            "65535 after the host, or none, e.g. https://login.salesforce.com",
        ),
        (
            ["--input", "{events}", "--dead_letter_output", "{tmp}/out/d?l[1]"],
            ENV,
            "--dead_letter_output '{tmp}/out/d?l[1]' holds a glob character (* ? [): give a plain prefix "
            "such as out/dead_letters",
        ),
        (
            ["--input", "{events}", "--dead_letter_output", ""],
            ENV,
            "--dead_letter_output '' names nothing: give a path, or leave the option out",
        ),
        (
            ["--input", "{events}", "--salesforce_login_url", ""],
            ENV,
            "--salesforce_login_url '' names nothing: give the org's login URL, e.g. "
            "https://login.salesforce.com or the org's My Domain URL, or leave the option out",
        ),
        (
            ["--input", "{events}", "--summary_output", " "],
            ENV,
            "--summary_output ' ' names nothing: give a path, or leave the option out",
        ),
        (
            ["--input", "{events}", "--summary_output", "{events}"],
            ENV,
            "--summary_output '{events}' is one of the --input files: the run would overwrite it; give "
            "another file name",
        ),
        (
            [
                "--input",
                "{events}",
                "--dead_letter_output",
                "{tmp}/dl",
                "--summary_output",
                "{tmp}/dl-00000-of-00001.jsonl",
            ],
            ENV,
            "--summary_output '{tmp}/dl-00000-of-00001.jsonl' takes the name of a dead-letter file of "
            "--dead_letter_output '{tmp}/dl': give another file name",
        ),
        # Found by a hostile review: each of these overwrote a file the run read, or another output.
        (
            ["--input", "{events}", "--dry_run", "--dry_run_output", "{events}"],
            ENV,
            "--dry_run_output '{events}' is one of the --input files: the run would overwrite it; give "
            "another file name",
        ),
        (
            ["--input", "{events}", "--actions_config", "{tmp}/a.yaml", "--summary_output", "{tmp}/a.yaml"],
            ENV,
            "--summary_output '{tmp}/a.yaml' is the --actions_config file: the run would overwrite it; give "
            "another file name",
        ),
        (
            [
                "--input",
                "{events}",
                "--salesforce_credentials_file",
                "{tmp}/c.env",
                "--dry_run",
                "--dry_run_output",
                "{tmp}/c.env",
            ],
            ENV,
            "--dry_run_output '{tmp}/c.env' is the --salesforce_credentials_file file: the run would "
            "overwrite it; give another file name",
        ),
        (
            [
                "--input",
                "{events}",
                "--summary_output",
                "{tmp}/x.json",
                "--dry_run",
                "--dry_run_output",
                "{tmp}/x.json",
            ],
            ENV,
            "--summary_output and --dry_run_output name the same file '{tmp}/x.json': one would overwrite "
            "the other; give each its own",
        ),
        (
            ["--input", "{events}", "--dead_letter_output", "{tmp}/out", "--read_output", "{tmp}/out"],
            ENV,
            "--dead_letter_output '{tmp}/out' and --read_output '{tmp}/out' would write files of the same "
            "names ({tmp}/out-*.jsonl), and each run's files replace the other's: give each its own prefix",
        ),
        (
            ["--input", "{events}", "--dead_letter_output", "{tmp}/out", "--read_output", "{tmp}/out-read"],
            ENV,
            "--dead_letter_output '{tmp}/out' and --read_output '{tmp}/out-read' would write files of the "
            "same names ({tmp}/out-*.jsonl), and each run's files replace the other's: give each its own "
            "prefix",
        ),
        (
            [
                "--input",
                "{events}",
                "--dead_letter_output",
                "{tmp}/dl",
                "--dry_run",
                "--dry_run_output",
                "{tmp}/dl-00000-of-00001.jsonl",
            ],
            ENV,
            "--dry_run_output '{tmp}/dl-00000-of-00001.jsonl' takes the name of a dead-letter file of "
            "--dead_letter_output '{tmp}/dl': give another file name",
        ),
        (
            ["--input", "{tmp}/in-00000-of-00001.jsonl", "--read_output", "{tmp}/in"],
            ENV,
            "--read_output '{tmp}/in' writes files named {tmp}/in-*.jsonl, and --input "
            "'{tmp}/in-00000-of-00001.jsonl' is one: the run would overwrite it; give another prefix",
        ),
        (
            ["--archive", "{tmp}/no/such/archive"],
            ENV,
            "--archive '{tmp}/no/such/archive' does not exist: give the folder that holds segment-logs/ (or "
            "that folder, or one source's folder), or a glob of archive files",
        ),
        (
            # Beam's in-process runner would end in an assertion after the pipeline started.
            ["--input", "{events}", "--streaming", "--runner", "FnApiRunner"],
            ENV,
            "--runner FnApiRunner runs bounded input only, and this run is a streaming one (an unbounded "
            "source, or --streaming): leave --runner out (BundleBasedDirectRunner runs streams locally), or "
            "give a streaming runner such as DataflowRunner or FlinkRunner",
        ),
        (
            ["--input", "{events}", "--runner", "PortableRunner"],
            ENV,
            "--runner PortableRunner needs --job_endpoint HOST:PORT, the job service of the runner to submit "
            "to (e.g. a Flink job server); or give the runner by name, e.g. --runner FlinkRunner",
        ),
    ],
)
def test_bad_configuration(tmp_path, events, argv, environ, message):
    (tmp_path / "events_dir" / "2026-12-01").mkdir(parents=True)  # a directory of directories
    (tmp_path / "in-00000-of-00001.jsonl").write_text("{}\n")  # named as a --read_output file would be
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{events}", events) for a in argv]
    with pytest.raises(ConfigurationError) as raised:
        _validate(argv, environ)
    assert str(raised.value) == message.replace("{tmp}", str(tmp_path)).replace("{events}", events)


@pytest.mark.skipif(importlib.util.find_spec("boto3") is not None, reason="boto3 is installed here")
@pytest.mark.parametrize(
    "argv, flag, path, verb",
    [
        (["--input", "s3://bucket/events/*.jsonl"], "--input", "s3://bucket/events/*.jsonl", "read"),
        (["--archive", "s3://bucket/segment-logs"], "--archive", "s3://bucket/segment-logs", "read"),
        (["--dead_letter_output", "s3://bucket/dead"], "--dead_letter_output", "s3://bucket/dead", "written"),
        (
            ["--summary_output", "s3://bucket/summary.json"],
            "--summary_output",
            "s3://bucket/summary.json",
            "written",
        ),
    ],
)
def test_an_s3_path_without_its_client_library_is_refused_at_start(events, argv, flag, path, verb):
    """Beam's S3 filesystem loads without boto3 and fails when first used: for the summary and dead
    letters, after Salesforce was written."""
    if flag not in ("--input", "--archive"):
        argv = ["--input", events, *argv]
    with pytest.raises(ConfigurationError) as raised:
        _validate(argv)
    assert str(raised.value) == (
        f"{flag} {path!r} cannot be {verb}: s3:// needs boto3, which is not installed: pip install "
        "'beamforce[aws]'"
    )


STARTED = datetime(2026, 12, 1, 10, 45, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "started, existing, prefix",
    [
        (STARTED, [], "dead_letters/20261201T104501Z/dead_letters"),
        # The folder is named in UTC whatever the clock's zone.
        (STARTED.astimezone(timezone(timedelta(hours=-5))), [], "dead_letters/20261201T104501Z/dead_letters"),
        # A run started in the same second does not write over the first one's files.
        (STARTED, ["20261201T104501Z"], "dead_letters/20261201T104501Z-2/dead_letters"),
        (STARTED, ["20261201T104501Z", "20261201T104501Z-2"], "dead_letters/20261201T104501Z-3/dead_letters"),
    ],
)
def test_dead_letters_default_to_a_new_folder_per_run(
    tmp_path, monkeypatch, events, started, existing, prefix
):
    monkeypatch.chdir(tmp_path)
    for name in existing:
        (tmp_path / "dead_letters" / name).mkdir(parents=True)
    before = sorted(tmp_path.rglob("*"))
    options = PipelineOptions(["--input", events])
    validate(options, ENV, started=started)
    # Resolved in the options themselves: the run writes where its summary says.
    assert options.view_as(BeamforceOptions).dead_letter_output == prefix
    assert sorted(tmp_path.rglob("*")) == before  # Beam makes the folder when it writes


def test_a_given_dead_letter_output_is_kept(tmp_path, events):
    options = PipelineOptions(["--input", events, "--dead_letter_output", f"{tmp_path}/out/dead"])
    validate(options, ENV, started=STARTED)
    assert options.view_as(BeamforceOptions).dead_letter_output == f"{tmp_path}/out/dead"


def test_help_names_the_default_dead_letter_location(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "Default: dead_letters/<UTC start time, e.g. 20261201T104501Z>/dead_letters under the current" in text
    )


@pytest.mark.parametrize("existing", [None, '{"old": true}\n'])
def test_a_writable_summary_output_is_checked_without_a_trace(tmp_path, events, existing):
    out = tmp_path / "out"
    out.mkdir()
    if existing is not None:
        (out / "summary.json").write_text(existing)
    _validate(["--input", events, "--summary_output", str(out / "summary.json")])
    if existing is None:
        assert list(out.iterdir()) == []
    else:
        assert (out / "summary.json").read_text() == existing


AS_ROOT = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root writes read-only files and directories anyway (CAP_DAC_OVERRIDE): nothing to refuse",
)


@AS_ROOT
@pytest.mark.parametrize("case", ["read_only_file", "file_in_read_only_directory"])
def test_a_read_only_summary_output_is_refused(tmp_path, events, case):
    locked = tmp_path / "locked"
    locked.mkdir()
    target = locked / "summary.json"
    if case == "read_only_file":
        target.write_text("{}")
        target.chmod(0o444)
    else:
        locked.chmod(0o555)
    try:
        with pytest.raises(ConfigurationError) as raised:
            _validate(["--input", events, "--summary_output", str(target)])
    finally:
        locked.chmod(0o755)
    assert str(raised.value) == (
        f"--summary_output '{target}' cannot be written (Permission denied): give a file you may write, or "
        "a new file in a directory you may write"
    )


# sysfs refuses new files, and writes to most of its files, even to root: read-only cases for any user.
SYSFS = pytest.mark.skipif(not os.path.isfile("/sys/kernel/notes"), reason="needs Linux's /sys")


@SYSFS
@pytest.mark.parametrize("path", ["/sys/kernel/beamforce-summary.json", "/sys/kernel/notes"])
def test_a_summary_output_that_even_root_cannot_write_is_refused(events, path):
    with pytest.raises(ConfigurationError) as raised:
        _validate(["--input", events, "--summary_output", path])
    message = str(raised.value)
    assert message.startswith(f"--summary_output '{path}' cannot be written (")  # Permission denied, or EROFS
    assert message.endswith("): give a file you may write, or a new file in a directory you may write")
    assert not os.path.exists("/sys/kernel/beamforce-summary.json")


@pytest.mark.parametrize(
    "argv, error",
    [
        (["--address_mapping", "home"], "argument --address_mapping: invalid choice: 'home'"),
        (["--batch_size", "0"], "argument --batch_size: must be at least 1, not 0"),
        (["--shards", "many"], "argument --shards: expected a whole number, not 'many'"),
    ],
)
def test_bad_values_exit_2_with_argparse_message(events, capsys, argv, error):
    assert main(["--input", events, *argv]) == 2
    # One line, as every configuration error: not the usage of every option first.
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"beamforce: configuration error: {error}")
    assert line.endswith(" --help)")


def test_unknown_flags_are_refused(events, capsys, monkeypatch):
    assert unknown_flags(["--input", events, "--adress_mapping=shipping", "--runner", "FnApiRunner"]) == [
        "--adress_mapping"
    ]
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["--input", events, "--adress_mapping", "shipping"]) == 2
    assert capsys.readouterr().err == (
        "beamforce: configuration error: unknown option --adress_mapping: see python -m pipeline --help "
        "for the options\n"
    )


def test_configuration_error_exits_2_without_traceback(capsys, monkeypatch):
    monkeypatch.delenv("SALESFORCE_USERNAME", raising=False)
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"beamforce: configuration error: {NO_SOURCE}\n")
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(
    ("extra", "first", "count"),
    [
        (["b.jsonl"], "b.jsonl", 1),
        (["b.jsonl", "c.jsonl"], "b.jsonl", 2),
        (["extra_positional"], "extra_positional", 1),
    ],
)
def test_stray_arguments_exit_2_before_anything_is_read(tmp_path, capsys, extra, first, count):
    # An unquoted glob: the shell expands it, and all but the first file would go unread.
    events = tmp_path / "a.jsonl"
    events.write_text("{}\n")
    assert main(["--input", str(events), *extra]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"beamforce: configuration error: unexpected argument {first!r} ({count} in all): every value "
        "belongs to an option. An unquoted glob is expanded by the shell and only its first file would be "
        "read: quote it, e.g. --input 'events/*.jsonl'\n"
    )


def test_help_lists_every_option_with_help(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in (
        "--input",
        "--salesforce_login_url",
        "--sandbox",
        "--salesforce_ca_bundle",
        "--salesforce_api_version",
        "--dead_letter_output",
        "--summary_output",
        "--address_mapping",
        "--always_enabled",
        "--batch_size",
        "--shards",
        "--api_usage_limit_percent",
        "--max_calls_per_second",
        "--salesforce_credentials_file",
        "--dedup_ttl_seconds",
        "--max_buffering_seconds",
        "--on_api_limit",
        "--progress_seconds",
    ):
        assert flag in text
    for action in help_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"


def test_api_budget_options_reach_the_connection_settings(events):
    _, settings = _validate(
        ["--input", events, "--api_usage_limit_percent", "90", "--max_calls_per_second", "2.5"]
    )
    # R is for the whole job: each of the 8 default shards' writers (files) gets R / 8.
    assert (settings.api_usage_limit_percent, settings.max_calls_per_second) == (90.0, 2.5 / 8)
    # Streaming has 2 shards by default: each gets R / 2.
    _, settings = _validate(["--input", events, "--streaming", "--max_calls_per_second", "2.5"])
    assert settings.max_calls_per_second == 2.5 / 2
    _, settings = _validate(["--input", events, "--max_calls_per_second", "10", "--shards", "4"])
    assert settings.max_calls_per_second == 2.5
    _, settings = _validate(["--input", events])
    assert (settings.api_usage_limit_percent, settings.max_calls_per_second) == (100.0, None)


PERCENT_FIX = (
    "is out of range: give a share of the org's daily API allocation more than 0 and at most 100, "
    "e.g. --api_usage_limit_percent 80 (100, the default, turns the limit off)"
)
RATE_FIX = (
    "is not a rate: give a number of calls a second of at least 0.001 (one call in 1000 s), e.g. "
    "--max_calls_per_second 5, or leave the option out for no limit"
)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--api_usage_limit_percent", "0"], f"--api_usage_limit_percent 0 {PERCENT_FIX}"),
        (["--api_usage_limit_percent", "-5"], f"--api_usage_limit_percent -5 {PERCENT_FIX}"),
        (["--api_usage_limit_percent", "100.5"], f"--api_usage_limit_percent 100.5 {PERCENT_FIX}"),
        (["--api_usage_limit_percent", "nan"], f"--api_usage_limit_percent nan {PERCENT_FIX}"),
        (["--max_calls_per_second", "0"], f"--max_calls_per_second 0 {RATE_FIX}"),
        (["--max_calls_per_second", "-1"], f"--max_calls_per_second -1 {RATE_FIX}"),
        (["--max_calls_per_second", "inf"], f"--max_calls_per_second inf {RATE_FIX}"),
        (["--max_calls_per_second", "nan"], f"--max_calls_per_second nan {RATE_FIX}"),
        (["--max_calls_per_second", "1e-300"], f"--max_calls_per_second 1e-300 {RATE_FIX}"),
    ],
)
def test_api_budget_options_out_of_range(events, argv, message):
    with pytest.raises(ConfigurationError) as raised:
        _validate(["--input", events, *argv])
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "argv, error",
    [
        (
            ["--api_usage_limit_percent", "most"],
            "argument --api_usage_limit_percent: invalid float value: 'most'",
        ),
        (["--max_calls_per_second", "fast"], "argument --max_calls_per_second: invalid float value: 'fast'"),
    ],
)
def test_api_budget_options_that_are_not_numbers_exit_2(events, capsys, argv, error):
    assert main(["--input", events, *argv]) == 2
    assert error in capsys.readouterr().err


def test_help_explains_the_api_budget_options(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--api_usage_limit_percent P" in text
    assert "reaches P% of its daily allocation" in text
    assert "--max_calls_per_second R" in text
    assert (
        "for the whole job: each of the --shards writers may make R / shards a second, so the org never "
        "sees more than R however many workers run" in text
    )


def test_write_method_defaults_to_auto_with_the_bulk_threshold(events):
    options = PipelineOptions(["--input", events])
    validate(options, ENV)
    o = options.view_as(BeamforceOptions)
    assert (o.write_method, o.bulk_threshold) == ("auto", 10_000)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--write_method", "bulk"], ("bulk", 10_000)),
        (["--write_method", "rest", "--bulk_threshold", "0"], ("rest", 0)),
        (["--streaming", "--write_method", "auto"], ("auto", 10_000)),
        (["--streaming", "--write_method", "rest"], ("rest", 10_000)),
    ],
)
def test_write_methods_that_fit_the_run_are_kept(events, argv, expected):
    options = PipelineOptions(["--input", events, *argv])
    validate(options, ENV)
    o = options.view_as(BeamforceOptions)
    assert (o.write_method, o.bulk_threshold) == expected


BULK_STREAMING = (
    "--write_method bulk writes bounded input only, and this run is a streaming one (an unbounded source, "
    "or --streaming): leave --write_method out (auto writes streams through REST), or read the events as "
    "a backfill (files, --archive, --kafka_bounded)"
)


def test_bulk_on_a_stream_is_a_configuration_error(events, capsys):
    with pytest.raises(ConfigurationError) as raised:
        _validate(["--input", events, "--streaming", "--write_method", "bulk"])
    assert str(raised.value) == BULK_STREAMING
    # From the command line: exit status 2 before anything is read or written.
    assert main(["--input", events, "--streaming", "--write_method", "bulk"]) == 2
    assert capsys.readouterr().err == f"beamforce: configuration error: {BULK_STREAMING}\n"


@pytest.mark.parametrize(
    "argv, error",
    [
        (["--write_method", "fast"], "argument --write_method: invalid choice: 'fast'"),
        (["--bulk_threshold", "-1"], "argument --bulk_threshold: must be 0 or more, not -1"),
        (["--bulk_threshold", "many"], "argument --bulk_threshold: expected a whole number, not 'many'"),
    ],
)
def test_bad_write_method_values_exit_2(events, capsys, argv, error):
    assert main(["--input", events, *argv]) == 2
    assert error in capsys.readouterr().err


def test_help_explains_the_write_methods_and_their_costs(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--write_method {auto,rest,bulk}" in text
    assert "rest: sObject Collections, about 2 API calls per 200 records" in text
    assert "bulk: Bulk API 2.0 jobs, 10 to 20 calls per object and 50,000 records" in text
    assert "--bulk_threshold N" in text
    assert "The two cost the same API calls at about 2,000 records" in text


@pytest.mark.parametrize(
    "argv, streaming, messages",
    [
        (["--input", "e.jsonl"], False, []),
        (
            ["--input", "e.jsonl", "--dedup_ttl_seconds", "60", "--max_buffering_seconds=2"],
            False,
            [
                "--dedup_ttl_seconds has no effect on this bounded run: a bounded run merges every copy of "
                "an event over the whole input",
                "--max_buffering_seconds has no effect on this bounded run: a bounded run writes once its "
                "whole input is merged",
            ],
        ),
        (["--input", "e.jsonl", "--bulk_threshold", "5000"], False, []),
        (
            ["--input_subscription", "projects/p/subscriptions/s", "--bulk_threshold", "5000"],
            True,
            [
                "--bulk_threshold has no effect on this streaming run: a streaming run writes through REST "
                "only"
            ],
        ),
        (["--input_subscription", "projects/p/subscriptions/s", "--dedup_ttl_seconds", "60"], True, []),
    ],
)
def test_options_of_the_other_mode_are_named(argv, streaming, messages):
    from pipeline.options import options_without_effect

    assert options_without_effect(argv, streaming) == messages


def test_a_run_warns_of_options_without_effect_before_its_checks(events, caplog, capsys, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    # Without credentials the checks stop the run: the warning came first.
    assert main(["--input", events, "--dedup_ttl_seconds", "60"]) == 2
    assert [r.getMessage() for r in caplog.records if r.name == "pipeline.main"] == [
        "--dedup_ttl_seconds has no effect on this bounded run: a bounded run merges every copy of an event "
        "over the whole input"
    ]
    assert capsys.readouterr().err.startswith("beamforce: configuration error: ")


DEAD_LETTER = '{"stage": "write", "reason": "API_LIMIT", "message": "m", "retryable": true, "event": {}}\n'


@pytest.mark.parametrize(
    "files, input_glob, refused",
    [
        ({}, None, None),
        ({"dl-00000-of-00001.jsonl": ""}, None, None),  # a run without dead letters: nothing to lose
        ({"dl-00000-of-00001.jsonl": DEAD_LETTER}, None, "dl-00000-of-00001.jsonl"),
        (
            {"dl-00000-of-00002.jsonl": DEAD_LETTER, "dl-00001-of-00002.jsonl": DEAD_LETTER},
            None,
            "dl-00000-of-00002.jsonl and 1 more",
        ),
        ({"dl-00000-of-00001.jsonl": DEAD_LETTER}, "dl-*.jsonl", None),  # replayed in place: read first
        ({"dl-00000-of-00001.jsonl": DEAD_LETTER}, "dl-00000-of-00001.jsonl", None),
        ({"dl-00000-of-00001.jsonl": DEAD_LETTER, "dl2-00000-of-00001.jsonl": DEAD_LETTER}, None, "dl-0"),
        ({"dl.jsonl": DEAD_LETTER, "dl-old.jsonl": DEAD_LETTER}, None, None),  # not the sink's names
    ],
)
def test_an_earlier_runs_dead_letters_are_not_replaced(tmp_path, events, files, input_glob, refused):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    prefix = str(tmp_path / "dl")
    source = str(tmp_path / input_glob) if input_glob else events
    argv = ["--input", source, "--dead_letter_output", prefix]
    if refused is None:
        _validate(argv)
        return
    with pytest.raises(ConfigurationError) as raised:
        _validate(argv)
    message = str(raised.value)
    assert message.startswith(
        f"--dead_letter_output '{prefix}' already holds dead letters of an earlier run ("
    )
    assert f"({tmp_path}/{refused}" in message
    assert message.endswith(
        f"which this run would replace: replay them first (--input '{prefix}-*.jsonl', with another "
        "--dead_letter_output), move them, or give another prefix"
    )


@pytest.mark.parametrize("input_glob", ["dl-*.jsonl", "dl-00000-of-00001.jsonl"])
def test_a_dry_run_may_not_replace_the_dead_letters_it_reads(tmp_path, input_glob):
    # It writes nothing to Salesforce: its dead letters (none for the events it would write) would empty
    # the file.
    (tmp_path / "dl-00000-of-00001.jsonl").write_text(DEAD_LETTER)
    prefix = str(tmp_path / "dl")
    argv = ["--input", str(tmp_path / input_glob), "--dead_letter_output", prefix, "--salesforce_dry_run"]
    with pytest.raises(ConfigurationError) as raised:
        _validate(argv)
    assert str(raised.value) == (
        f"--dead_letter_output '{prefix}' is where the dead letters this dry run reads are "
        f"({tmp_path}/dl-00000-of-00001.jsonl): a dry run writes nothing to Salesforce, so its own dead "
        "letters would replace them, and the events it would have written would be lost; give the dry run "
        "another --dead_letter_output"
    )
    _validate(argv[:3] + [str(tmp_path / "dry"), "--salesforce_dry_run"])


def test_a_streaming_run_is_not_checked_for_earlier_dead_letters(tmp_path, events):
    # Streaming writes one file per window, named by the window: nothing of an earlier run is replaced.
    (tmp_path / "dl-00000-of-00001.jsonl").write_text(DEAD_LETTER)
    _validate(["--input", events, "--dead_letter_output", str(tmp_path / "dl"), "--streaming"])


@pytest.fixture
def closed_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_job_endpoint_where_nothing_listens_is_refused_at_start(events, closed_port):
    # Beam's gRPC client would wait for it without end.
    with pytest.raises(ConfigurationError) as raised:
        _validate(
            ["--input", events, "--runner", "PortableRunner", "--job_endpoint", f"localhost:{closed_port}"]
        )
    assert str(raised.value) == (
        f"--job_endpoint localhost:{closed_port}: no job service answers there (Connection refused): start "
        "the runner's job service (e.g. a Flink job server) or give its address"
    )


@pytest.mark.parametrize("endpoint", ["localhost", "localhost:port", ":8099"])
def test_a_job_endpoint_that_is_no_address_is_refused(endpoint):
    from pipeline.options import check_job_endpoint

    with pytest.raises(ConfigurationError) as raised:
        check_job_endpoint(endpoint)
    assert str(raised.value) == (
        f"--job_endpoint {endpoint!r} is not HOST:PORT (e.g. localhost:8099), the address of the job service "
        "to submit to"
    )


def test_a_job_endpoint_that_accepts_connections_passes():
    import socket

    from pipeline.options import check_job_endpoint

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_job_endpoint(f"127.0.0.1:{listening.getsockname()[1]}")  # no error


def test_kafka_brokers_where_nothing_listens_are_refused_at_start(events, closed_port):
    """Found by a hostile review: the run failed after 30 s inside the pipeline, naming no option."""
    argv = ["--kafka_bootstrap_servers", f"127.0.0.1:{closed_port}", "--kafka_topic", "t", "--kafka_bounded"]
    with pytest.raises(ConfigurationError) as raised:
        _validate(argv)
    assert str(raised.value) == (
        f"--kafka_bootstrap_servers 127.0.0.1:{closed_port}: no broker accepts a connection (Connection "
        "refused): start the brokers, or give their address"
    )


@pytest.mark.parametrize("servers", ["not a server", "broker", "broker:port", "b1:9092,:9092", " , "])
def test_kafka_brokers_that_are_no_addresses_are_refused(servers):
    from pipeline.options import check_kafka_brokers

    with pytest.raises(ConfigurationError, match=r"is not HOST:PORT: give the brokers as HOST:PORT"):
        check_kafka_brokers(servers)


def test_kafka_brokers_of_which_one_listens_pass(closed_port):
    import socket

    from pipeline.options import check_kafka_brokers

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        # The first refuses; the second accepts: the client finds the cluster through it.
        check_kafka_brokers(f"127.0.0.1:{closed_port},PLAINTEXT://127.0.0.1:{listening.getsockname()[1]}")


# 2024-11-01 and 2024-11-02 as Segment names day folders (UTC midnight, in milliseconds).
DAY_1, DAY_2 = "1730419200000", "1730505600000"


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--archive", "{tmp}/arch"],
            None,  # an archive with files: accepted
        ),
        (
            ["--archive", "{tmp}/arch", "--since", "2024-11-02"],
            None,
        ),
        (
            ["--archive", "{tmp}/plain"],
            "--archive '{tmp}/plain' has no day folder of Segment's layout "
            "(segment-logs/<source>/<day, a Unix time in ms>/): give the folder that holds segment-logs/ (or "
            "that folder, or one source's folder), or a glob of archive files",
        ),
        (
            ["--archive", "{tmp}/arch/segment-logs/src1/" + DAY_1],  # a day folder given as the root
            "--archive '{tmp}/arch/segment-logs/src1/" + DAY_1 + "' has no day folder of Segment's layout "
            "(segment-logs/<source>/<day, a Unix time in ms>/): give the folder that holds segment-logs/ (or "
            "that folder, or one source's folder), or a glob of archive files",
        ),
        (
            ["--archive", "{tmp}/arch", "--since", "2099-01-01"],
            "--archive '{tmp}/arch' has no day folder of Segment's layout from 2099-01-01 to the last "
            "(segment-logs/<source>/<day, a Unix time in ms>/): give the folder that holds segment-logs/ (or "
            "that folder, or one source's folder), or a glob of archive files"
            ", or other --since/--until days",
        ),
        (
            ["--archive", "{tmp}/empty_days"],
            "--archive '{tmp}/empty_days': its 1 day folder(s) hold no file: check the archive's path",
        ),
        (
            ["--archive", "{tmp}/arch/nothing*/*.gz"],
            "--archive '{tmp}/arch/nothing*/*.gz' matches no file: check the path, and quote the glob so "
            "that the shell does not expand it",
        ),
    ],
)
def test_an_archive_that_would_read_nothing_is_refused(tmp_path, argv, message):
    """Found by a hostile review: each of these read no event and ended "done"."""
    for day in (DAY_1, DAY_2):
        folder = tmp_path / "arch" / "segment-logs" / "src1" / day
        folder.mkdir(parents=True)
        (folder / "a.jsonl").write_text("{}\n")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "events.jsonl").write_text("{}\n")
    (tmp_path / "empty_days" / "segment-logs" / "src1" / DAY_1).mkdir(parents=True)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if message is None:
        _validate(argv)
        return
    with pytest.raises(ConfigurationError) as raised:
        _validate(argv)
    assert str(raised.value) == message.replace("{tmp}", str(tmp_path))


@pytest.mark.parametrize("flag", ["--input", "--archive"])
def test_a_glob_without_a_folder_reads_the_current_one(tmp_path, monkeypatch, flag):
    """Found by a hostile review: Beam's local filesystem matches nothing for 'dead*': the run was refused."""
    from apache_beam.io.filesystems import FileSystems

    from pipeline.sources import SourceOptions

    (tmp_path / "dead-letters-00000-of-00001.jsonl").write_text("{}\n")
    (tmp_path / "other.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    options = PipelineOptions([flag, "dead*", "--dead_letter_output", str(tmp_path / "out" / "dl")])

    validate(options, ENV)

    given = options.view_as(BeamforceOptions).input or options.view_as(SourceOptions).archive
    assert given == "./dead*"
    assert [m.path for m in FileSystems.match([given])[0].metadata_list] == [
        "./dead-letters-00000-of-00001.jsonl"
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input", "a.jsonl", "--dead_letter_output", "x"], None),
        (["--input", "a.jsonl", "--kafka_topic", "t1", "--kafka_topic", "t2"], None),  # repeatable
        (
            ["--input=a.jsonl", "--input", "b.jsonl"],
            "--input is given 2 times, and a run takes one (only the last would count): give it once: one "
            "glob matches several files, e.g. --input 'events/*.jsonl'",
        ),
        (
            ["--input", "a", "--summary_output", "s1", "--summary_output=s2", "--summary_output", "s3"],
            "--summary_output is given 3 times, and a run takes one (only the last would count): give it "
            "once",
        ),
    ],
)
def test_options_that_name_a_path_are_given_once(argv, message):
    if message is None:
        check_not_repeated(argv)
        return
    with pytest.raises(ConfigurationError) as raised:
        check_not_repeated(argv)
    assert str(raised.value) == message


EXAMPLE_SECONDS = {"--dedup_ttl_seconds": "86400", "--max_buffering_seconds": "5", "--progress_seconds": "60"}


@pytest.mark.parametrize("flag", list(EXAMPLE_SECONDS))
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e300", "31536001"])
def test_a_duration_out_of_range_is_refused(events, flag, value):
    # 1e300 made the progress thread's wait overflow, after the run had started.
    with pytest.raises(ConfigurationError) as raised:
        _validate(["--input", events, "--streaming", flag, value])
    assert str(raised.value) == (
        f"{flag} {float(value):g} is not a duration: give seconds above 0 and at most 31536000 (a year), "
        f"e.g. {flag} {EXAMPLE_SECONDS[flag]}"
    )


@pytest.mark.parametrize("flag", list(EXAMPLE_SECONDS))
def test_a_year_is_the_longest_duration(events, flag):
    _validate(["--input", events, "--streaming", flag, "31536000"])
