"""Table tests for the org config: the built-in default, the documented example, and bad configs."""

from pathlib import Path

import pytest

from emulator.config import ConfigError, CustomField, OrgConfig, User, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "emulator-org.example.yaml"


def test_no_config_is_the_default_org():
    assert load_config(None) == OrgConfig()
    assert parse_config(None) == OrgConfig()
    assert OrgConfig().users[0] == User("admin@example.com", "emulator-password", "EMULATORTOKEN")


def test_the_documented_example_loads():
    config = load_config(EXAMPLE)
    assert [u.login_name for u in config.users] == ["admin@example.com", "integration@example.com.uat"]
    assert config.custom_fields["Lead"][0] == CustomField("testProp__c", "string", length=100)
    assert config.custom_fields["Lead"][1].values == ("free", "team", "business")
    assert (config.daily_api_requests, config.session_lifetime_seconds) == (100000, 7200)
    assert config.faults.error_kinds == ("SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW")
    assert config.is_sandbox is False


@pytest.mark.parametrize(("data", "expected"), [(None, False), ({"is_sandbox": True}, True)])
def test_is_sandbox(data, expected):
    assert parse_config(data).is_sandbox is expected


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "config: expected a mapping, got list"),
        ({"daily_api_request": 5}, "config: unknown key(s) ['daily_api_request']; allowed: "),
        ({"users": [{"username": "a"}]}, "config.users[0]: User.__init__() missing 1 required positional"),
        (
            {"users": [{"username": "a", "password": "p", "role": "x"}]},
            "config.users[0]: unknown key(s) ['role']",
        ),
        (
            {"custom_fields": []},
            "config.custom_fields: expected a mapping of object name to a list of fields",
        ),
        (
            {"custom_fields": {"Lead": [{"name": "plan", "type": "string"}]}},
            "config.custom_fields.Lead[0].name: custom field names end in '__c' (got 'plan')",
        ),
        (
            {"custom_fields": {"Lead": [{"name": "plan__c", "type": "text"}]}},
            "config.custom_fields.Lead[0].type: 'text' is not one of ['string', ",
        ),
        ({"faults": {"latency": 5}}, "config.faults: unknown key(s) ['latency']"),
        ({"is_sandbox": "yes"}, "config.is_sandbox: must be true or false, got 'yes'"),
    ],
)
def test_bad_configs_name_the_field(data, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert str(exc.value).startswith(message)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "org.yaml"
    bad.write_text("users: [unclosed\n")
    with pytest.raises(ConfigError) as exc:
        load_config(bad)
    assert str(exc.value).startswith(f"cannot read org config {bad}: ")
