"""The emulated org's configuration: users, connected apps, limits, faults, custom fields and duplicate rules
(YAML)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIELD_TYPES = (
    "string",
    "textarea",
    "email",
    "phone",
    "url",
    "number",
    "int",
    "double",
    "currency",
    "boolean",
    "date",
    "datetime",
    "picklist",
    "external_id",
)
ORG_NAME = "Emulated Org"  # the org's name in login's userInfo and in Organization.Name
DUPLICATE_ACTIONS = ("block", "alert")
DEFAULT_DUPLICATE_MESSAGE = "Use one of these records?"  # Salesforce's default alert text for a new rule


class ConfigError(ValueError):
    """The org config is invalid; the message names the field and the fix."""


@dataclass(frozen=True)
class User:
    username: str
    password: str
    security_token: str = ""
    sandbox: str | None = None  # sandbox name: logs in as `<username>.<sandbox>`
    user_id: str = "005000000000001AAA"

    @property
    def login_name(self) -> str:
        return f"{self.username}.{self.sandbox}" if self.sandbox else self.username


@dataclass(frozen=True)
class ConnectedApp:
    consumer_key: str
    consumer_secret: str
    certificate: str | None = None  # PEM (or path to a PEM file) that verifies JWT bearer assertions
    run_as: str | None = None  # username that client-credentials tokens act as (default: first user)


@dataclass(frozen=True)
class CustomField:
    name: str  # API name, must end in __c
    type: str  # one of FIELD_TYPES
    length: int | None = None  # string/textarea/external_id: default 255
    precision: int | None = None  # number: total digits (default 18)
    scale: int | None = None  # number: digits right of the point (default 0)
    values: tuple[str, ...] = ()  # picklist values
    restricted: bool = False  # picklist: reject values not in `values`
    required: bool = False
    unique: bool = False


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0  # fixed latency added to every API call
    jitter_ms: float = 0.0  # plus a uniform random 0..jitter_ms
    error_rate: float = 0.0  # share of API calls answered with a transient error
    error_kinds: tuple[str, ...] = ("SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW")
    seed: int | None = None  # random seed, for repeatable fault sequences
    hold: bool = False  # API calls wait, in flight, until hold is set back to false (tests fill the cap)


@dataclass(frozen=True)
class DuplicateRule:
    """A duplicate rule with an exact matching rule: a save is refused when another record of `object`
    has every one of `fields` set to the same value (trimmed, any case)."""

    name: str
    object: str
    fields: tuple[str, ...]
    action: str  # "block" refuses always; "alert" lets a request with allowSave=true save anyway
    error_message: str = DEFAULT_DUPLICATE_MESSAGE


@dataclass(frozen=True)
class OrgConfig:
    org_id: str = "00D000000000001AAA"
    instance_name: str = "EMU1"
    is_sandbox: bool = False  # Organization.IsSandbox (simple-salesforce's is_sandbox()); login's <sandbox>
    users: tuple[User, ...] = (User("admin@example.com", "emulator-password", "EMULATORTOKEN"),)
    connected_apps: tuple[ConnectedApp, ...] = (
        ConnectedApp("emulator-consumer-key", "emulator-consumer-secret"),
    )
    daily_api_requests: int = 100_000
    concurrent_requests: int = 25
    session_lifetime_seconds: int = 7200
    custom_fields: dict[str, tuple[CustomField, ...]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    duplicate_rules: tuple[DuplicateRule, ...] = ()


def _build(cls, data: Any, where: str, **converters):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    kwargs = {k: converters[k](v, f"{where}.{k}") if k in converters else v for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _custom_field(data: Any, where: str) -> CustomField:
    cf = _build(CustomField, data, where, values=lambda v, w: tuple(str(x) for x in v or ()))
    if not isinstance(cf.name, str) or not cf.name.endswith("__c"):
        raise ConfigError(f"{where}.name: custom field names end in '__c' (got {cf.name!r})")
    if cf.type not in FIELD_TYPES:
        raise ConfigError(f"{where}.type: {cf.type!r} is not one of {list(FIELD_TYPES)}")
    return cf


def _custom_fields(data: Any, where: str) -> dict[str, tuple[CustomField, ...]]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of object name to a list of fields")
    return {
        obj: tuple(_custom_field(f, f"{where}.{obj}[{i}]") for i, f in enumerate(fields or ()))
        for obj, fields in data.items()
    }


def _duplicate_rule(data: Any, where: str) -> DuplicateRule:
    rule = _build(DuplicateRule, data, where)
    for name in ("name", "object", "error_message"):
        value = getattr(rule, name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}.{name}: must be a non-empty string, got {value!r}")
    fields = rule.fields
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) and f for f in fields):
        raise ConfigError(f"{where}.fields: must be a non-empty list of field names, got {fields!r}")
    if rule.action not in DUPLICATE_ACTIONS:
        raise ConfigError(f"{where}.action: {rule.action!r} is not one of {list(DUPLICATE_ACTIONS)}")
    return DuplicateRule(rule.name, rule.object, tuple(fields), rule.action, rule.error_message)


def _duplicate_rules(data: Any, where: str) -> tuple[DuplicateRule, ...]:
    if not isinstance(data, list):
        raise ConfigError(f"{where}: expected a list of rules")
    rules = tuple(_duplicate_rule(r, f"{where}[{i}]") for i, r in enumerate(data))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name.lower() in seen:
            raise ConfigError(f"{where}[{i}].name: rule {rule.name!r} is named twice")
        seen.add(rule.name.lower())
    return rules


def parse_config(data: dict[str, Any] | None) -> OrgConfig:
    """Builds an OrgConfig from parsed YAML; missing keys keep the built-in default org."""
    data = {} if data is None else data
    config = _build(
        OrgConfig,
        data,
        "config",
        users=lambda v, w: tuple(_build(User, u, f"{w}[{i}]") for i, u in enumerate(v)),
        connected_apps=lambda v, w: tuple(_build(ConnectedApp, a, f"{w}[{i}]") for i, a in enumerate(v)),
        custom_fields=_custom_fields,
        faults=lambda v, w: _build(Faults, v, w, error_kinds=lambda x, _: tuple(x)),
        duplicate_rules=_duplicate_rules,
    )
    if not isinstance(config.is_sandbox, bool):
        raise ConfigError(f"config.is_sandbox: must be true or false, got {config.is_sandbox!r}")
    if config.duplicate_rules:
        # Imported here: both modules import this one. Rules name objects and fields, so they are
        # checked against the org's metadata, custom fields included.
        from emulator.duplicates import DuplicateRules
        from emulator.objects import build_objects

        try:
            objects = build_objects(config)
        except ValueError as exc:
            raise ConfigError(f"config.{exc}") from None
        DuplicateRules(config.duplicate_rules, objects)
    return config


def load_config(path: str | Path | None) -> OrgConfig:
    """Reads the YAML org config at `path`, or returns the built-in default org."""
    if path is None:
        return OrgConfig()
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read org config {path}: {exc}") from exc
    return parse_config(data)
