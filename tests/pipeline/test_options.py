"""Options: every bad option or environment stops the run with a message naming the fix."""

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.main import help_parser, main
from pipeline.options import BeamforceOptions, unknown_flags, validate
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


def _validate(argv, environ=ENV):
    return validate(PipelineOptions(argv), environ)


def test_defaults(events):
    credentials, settings = _validate(["--input", events])
    assert credentials == Credentials("api@example.com", "pw", "tok")
    assert settings == ConnectionSettings(login_url="https://login.salesforce.com", api_version="59.0")
    o = PipelineOptions(["--input", events]).view_as(BeamforceOptions)
    assert (o.address_mapping, o.always_enabled, o.batch_size, o.shards) == ("billing", False, 1000, 8)
    assert (o.dead_letter_output, o.summary_output) == (None, None)


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
        ([], ENV, "--input is required: give the event files to read, e.g. --input 'events/*.jsonl'"),
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
            "--salesforce_api_version '65.0' is not supported: give a version from 31.0 to 64.0 without a "
            "leading 'v', e.g. 59.0",
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
    ],
)
def test_bad_configuration(tmp_path, events, argv, environ, message):
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{events}", events) for a in argv]
    with pytest.raises(ConfigurationError) as raised:
        _validate(argv, environ)
    assert str(raised.value) == message.replace("{tmp}", str(tmp_path)).replace("{events}", events)


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
    assert error in capsys.readouterr().err


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
    assert captured.err == (
        "beamforce: configuration error: --input is required: give the event files to read, "
        "e.g. --input 'events/*.jsonl'\n"
    )
    assert "Traceback" not in captured.out + captured.err


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
    ):
        assert flag in text
    for action in help_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"


def test_api_budget_options_reach_the_connection_settings(events):
    _, settings = _validate(
        ["--input", events, "--api_usage_limit_percent", "90", "--max_calls_per_second", "2.5"]
    )
    assert (settings.api_usage_limit_percent, settings.max_calls_per_second) == (90.0, 2.5)
    _, settings = _validate(["--input", events])
    assert (settings.api_usage_limit_percent, settings.max_calls_per_second) == (100.0, None)


PERCENT_FIX = (
    "is out of range: give a share of the org's daily API allocation more than 0 and at most 100, "
    "e.g. --api_usage_limit_percent 80 (100, the default, turns the limit off)"
)
RATE_FIX = (
    "is not a rate: give a number of calls a second above 0, e.g. --max_calls_per_second 5, or leave "
    "the option out for no limit"
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
    assert "per writer, i.e. per worker thread: the org sees at most R times the number of writers" in text
