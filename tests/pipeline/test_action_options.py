"""The action options and the plan they make: which actions the classic upsert does, the writers' policy,
the options checked together, and the actions file checked against the org's describe (the local Salesforce's
own describe of its objects, read into ObjectMeta)."""

import dataclasses
import logging

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from actions.config import ActionsConfigError, default_actions, load_actions, parse_actions
from emulator.config import CustomField, OrgConfig
from emulator.objects import build_objects
from pipeline.action_options import (
    ActionOptions,
    ActionPlan,
    action_plan,
    dry_run_flag,
    is_classic,
    write_policy,
)
from salesforce.actions_write import ActionSpec
from salesforce.errors import (
    ApiLimitExceeded,
    ApiUsageReserved,
    ConfigurationError,
    SalesforceApiError,
    TransientError,
)
from schemas.fields import ObjectMeta
from transforms.batch_writer import WritePolicy

API_VERSION = "62.0"
OBJECTS = build_objects(
    OrgConfig(
        custom_fields={"Case": (CustomField("Beamforce_Message_Id__c", "external_id", unique=True),)},
    )
)


class OrgDescribe:
    """describe(name) as the client gives it, recording each call."""

    def __init__(self, error: Exception | None = None):
        self.calls: list[str] = []
        self.error = error

    def __call__(self, name: str) -> ObjectMeta:
        self.calls.append(name)
        if self.error is not None:
            raise self.error
        for canonical, sobject in OBJECTS.items():
            if canonical.lower() == name.lower():
                return ObjectMeta.from_describe(sobject.describe(API_VERSION))
        raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")


def never_described(name: str) -> ObjectMeta:
    raise AssertionError(f"describe({name!r}) was called")


def config_of(*bodies: str):
    text = "version: 1\nactions:\n" + "".join(
        "  - " + body.strip().replace("\n", "\n    ") + "\n" for body in bodies
    )
    return parse_actions(text, "actions.yaml")


def action_of(body: str):
    (only,) = config_of(body).actions
    return only


LEAD = "name: lead\ntrigger: identify\nobject: Lead\noperation: upsert\npreset: segment_lead\n"
LEAD += "match: {Email: traits.email}"
CASE = "name: {name}\ntrigger: {{track: Issue Submitted}}\nobject: Case\noperation: {operation}\n{extra}"


def case(operation: str, extra: str = "", name: str = "c") -> str:
    return CASE.format(name=name, operation=operation, extra=extra)


ONE = "match: {SuppliedEmail: properties.email}"
TWO = "match: {SuppliedEmail: properties.email, SuppliedName: properties.name}"


# --- is_classic ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "classic"),
    [
        (LEAD, True),
        (case("upsert", ONE), True),
        (case("upsert", ONE + "\non_multiple: update_latest"), True),
        (case("upsert", ONE + "\non_multiple: all"), False),
        (case("upsert", ONE + "\non_multiple: dead_letter"), False),
        (case("upsert", TWO), False),
        (case("upsert", TWO + "\non_multiple: update_latest"), False),
        (case("create", "fields: {Subject: properties.title}"), False),
        (case("create", "idempotency_field: Beamforce_Message_Id__c"), False),
        (case("read", ONE + "\nread_fields: [Id]"), False),
        (case("read", ONE + "\nread_fields: [Id]\non_multiple: all"), False),
        (case("update", ONE), False),
        (case("update", ONE + "\non_multiple: update_latest"), False),
        (case("update", TWO + "\non_multiple: dead_letter"), False),
        (case("delete", ONE), False),
        (case("delete", TWO + "\non_multiple: all"), False),
    ],
)
def test_is_classic(body, classic):
    assert is_classic(action_of(body)) is classic


def test_an_upsert_with_an_idempotency_field_is_not_classic():
    # The file's checks allow idempotency_field on create only; the rule holds for any Action.
    upsert = action_of(case("upsert", ONE))
    assert is_classic(upsert) is True
    assert is_classic(dataclasses.replace(upsert, idempotency_field="Beamforce_Message_Id__c")) is False


# --- write_policy ----------------------------------------------------------------------------------------

MIXED = (
    LEAD,
    case("create", "idempotency_field: Beamforce_Message_Id__c\nfields: {Subject: properties.title}", "open"),
    case("upsert", ONE, "classic_case"),
    case("upsert", TWO + "\non_multiple: all", "by_two"),
    case("read", ONE + "\nread_fields: [Id, Status]\non_multiple: dead_letter", "look"),
    case("update", ONE, "change"),
    case("delete", TWO, "drop"),
)
MIXED_SPECS = (
    ActionSpec("open", "Case", "create", (), "update_latest", "Beamforce_Message_Id__c", ()),
    ActionSpec("by_two", "Case", "upsert", ("SuppliedEmail", "SuppliedName"), "all", None, ()),
    ActionSpec("look", "Case", "read", ("SuppliedEmail",), "dead_letter", None, ("Id", "Status")),
    ActionSpec("change", "Case", "update", ("SuppliedEmail",), "update_latest", None, ()),
    ActionSpec("drop", "Case", "delete", ("SuppliedEmail", "SuppliedName"), "update_latest", None, ()),
)


def test_write_policy_has_specs_for_the_actions_the_classic_upsert_does_not_do():
    assert write_policy(config_of(*MIXED)) == WritePolicy(actions=MIXED_SPECS, converted_leads="contact")
    assert write_policy(config_of(*MIXED), "dead_letter") == WritePolicy(MIXED_SPECS, "dead_letter")


def test_write_policy_of_classic_actions_only():
    assert write_policy(default_actions()) == WritePolicy(actions=(), converted_leads="contact")
    assert write_policy(config_of(LEAD, case("upsert", ONE))) == WritePolicy()


# --- dry_run_flag ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], []),
        (["--dry_run"], ["--salesforce_dry_run"]),
        (
            ["--input", "x", "--dry_run", "--streaming"],
            ["--input", "x", "--salesforce_dry_run", "--streaming"],
        ),
        (["--dry_run_output", "p.jsonl"], ["--dry_run_output", "p.jsonl"]),
        (["--salesforce_dry_run"], ["--salesforce_dry_run"]),
        (["--input", "--dry_run"], ["--input", "--salesforce_dry_run"]),
    ],
)
def test_dry_run_flag(argv, expected):
    assert dry_run_flag(argv) == expected


@pytest.mark.parametrize("value", ["true", "yes", "false", ""])
def test_a_dry_run_with_a_value_is_refused(value):
    # Beam would take --dry_run=VALUE for its own test option: the run would write for real.
    with pytest.raises(ConfigurationError) as e:
        dry_run_flag(["--input", "x", f"--dry_run={value}"])
    assert str(e.value) == (
        f"--dry_run={value} takes no value: give --dry_run alone for a dry run, or leave it out for a real "
        "one"
    )


@pytest.mark.parametrize("flag", ["--dry_run_output", "--read_output"])
def test_an_output_that_is_an_existing_directory_is_refused(tmp_path, flag):
    # Beam's file sink would delete the directory, and all it holds, to write its file there.
    (tmp_path / "victim" / "sub").mkdir(parents=True)
    (tmp_path / "victim" / "keep.txt").write_text("keep")
    argv = ["--salesforce_dry_run", flag, str(tmp_path / "victim")]
    with pytest.raises(ConfigurationError) as e:
        action_plan(PipelineOptions(argv), lambda name: None, streaming=False)
    assert (
        str(e.value) == f"{flag} '{tmp_path / 'victim'}' is a directory: give a file name in it, e.g. out/x"
    )
    assert (tmp_path / "victim" / "keep.txt").read_text() == "keep"


def test_a_bare_dry_run_sets_the_option():
    options = PipelineOptions(dry_run_flag(["--dry_run", "--dry_run_output", "plan.jsonl"]))
    o = options.view_as(ActionOptions)
    assert (o.salesforce_dry_run, o.dry_run_output) == (True, "plan.jsonl")


# --- action_plan: the options together -------------------------------------------------------------------

DRY_RUN_STREAMING = (
    "--dry_run reads a bounded input (files, --archive, --kafka_bounded) and this run is a streaming one: "
    "dry-run a sample of the events as files, or leave --dry_run out"
)
OUTPUT_WITHOUT_DRY_RUN = (
    "--dry_run_output writes a dry run's plan, and --dry_run is not given: add --dry_run, or leave "
    "--dry_run_output out"
)


def directory(flag: str, value: str) -> str:
    return f"{flag} {value!r} is a directory: give a file name in it, e.g. out/x"


@pytest.mark.parametrize(
    ("argv", "streaming", "message"),
    [
        (["--salesforce_dry_run"], True, DRY_RUN_STREAMING),
        (["--salesforce_dry_run", "--dry_run_output", "out/"], True, DRY_RUN_STREAMING),
        (["--dry_run_output", "plan.jsonl"], False, OUTPUT_WITHOUT_DRY_RUN),
        (["--dry_run_output", "plan.jsonl"], True, OUTPUT_WITHOUT_DRY_RUN),
        (["--salesforce_dry_run", "--dry_run_output", "out/"], False, directory("--dry_run_output", "out/")),
        (["--salesforce_dry_run", "--dry_run_output", "/"], False, directory("--dry_run_output", "/")),
        (["--read_output", "out/reads/"], False, directory("--read_output", "out/reads/")),
        (["--read_output", "out/reads/"], True, directory("--read_output", "out/reads/")),
        (["--read_output", ""], False, directory("--read_output", "")),
    ],
)
def test_option_errors(argv, streaming, message):
    with pytest.raises(ConfigurationError) as info:
        action_plan(PipelineOptions(argv), never_described, streaming)
    assert str(info.value) == message
    assert type(info.value) is ConfigurationError


def test_the_defaults_make_the_plan_without_a_describe():
    plan = action_plan(PipelineOptions([]), never_described, streaming=False)
    assert plan == ActionPlan(
        config=default_actions(),
        policy=WritePolicy(actions=(), converted_leads="contact"),
        read_output=None,
        dry_run=False,
        dry_run_output=None,
    )
    assert plan.config.is_default is True


@pytest.mark.parametrize("streaming", [False, True])
def test_the_defaults_with_options(streaming):
    argv = ["--converted_leads", "dead_letter", "--read_output", "out/reads"]
    if not streaming:
        argv += ["--salesforce_dry_run", "--dry_run_output", "out/plan.jsonl"]
    plan = action_plan(PipelineOptions(argv), never_described, streaming)
    assert plan == ActionPlan(
        config=default_actions(),
        policy=WritePolicy(actions=(), converted_leads="dead_letter"),
        read_output=None,  # no action reads
        dry_run=not streaming,
        dry_run_output=None if streaming else "out/plan.jsonl",
    )


# --- action_plan: an actions file ------------------------------------------------------------------------

FILE = (
    LEAD,
    case("create", "idempotency_field: Beamforce_Message_Id__c\nfields: {Subject: properties.title}", "open"),
    case("update", ONE + "\nfields: {Status: {literal: Closed}}", "close"),
    "name: find_contact\ntrigger: identify\nobject: Contact\noperation: read\nmatch: {Email: traits.email}\n"
    "read_fields: [Id, AccountId]",
)
FILE_SPECS = (
    ActionSpec("open", "Case", "create", (), "update_latest", "Beamforce_Message_Id__c", ()),
    ActionSpec("close", "Case", "update", ("SuppliedEmail",), "update_latest", None, ()),
    ActionSpec("find_contact", "Contact", "read", ("Email",), "update_latest", None, ("Id", "AccountId")),
)


def write(tmp_path, *bodies: str) -> str:
    path = tmp_path / "actions.yaml"
    path.write_text(
        "version: 1\nactions:\n"
        + "".join("  - " + body.strip().replace("\n", "\n    ") + "\n" for body in bodies)
    )
    return str(path)


def test_a_file_is_checked_against_the_org_once_per_object(tmp_path):
    path = write(tmp_path, *FILE)
    describe = OrgDescribe()
    options = PipelineOptions(["--actions_config", path, "--read_output", "out/reads"])
    plan = action_plan(options, describe, streaming=True)
    assert describe.calls == ["Lead", "Case", "Contact"]
    assert plan == ActionPlan(
        config=load_actions(path),
        # The writers start with the describes the check read: checking the file costs no call of its own.
        policy=WritePolicy(
            actions=FILE_SPECS,
            converted_leads="contact",
            describes=tuple(describe(name) for name in ("Lead", "Case", "Contact")),
        ),
        read_output="out/reads",
        dry_run=False,
        dry_run_output=None,
    )
    assert [a.name for a in plan.config.actions] == ["lead", "open", "close", "find_contact"]
    assert (plan.config.path, plan.config.is_default) == (path, False)


def test_a_read_action_needs_read_output(tmp_path):
    path = write(tmp_path, *FILE)
    describe = OrgDescribe()
    with pytest.raises(ConfigurationError) as info:
        action_plan(PipelineOptions(["--actions_config", path]), describe, streaming=False)
    assert str(info.value) == (
        f"{path}: action 'find_contact' reads records, and --read_output is not given: add --read_output "
        "PREFIX (the records are written to PREFIX-*.jsonl)"
    )
    assert describe.calls == ["Lead", "Case", "Contact"]


def test_a_file_without_read_actions_ignores_read_output_and_says_so(tmp_path, caplog):
    path = write(tmp_path, *FILE[:3])
    options = PipelineOptions(
        ["--actions_config", path, "--read_output", "out/reads", "--salesforce_dry_run"]
    )
    describe = OrgDescribe()
    plan = action_plan(options, describe, streaming=False)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"--read_output has no effect: no action of {path} reads records (operation: read)"
    ]
    described = tuple(describe(name) for name in ("Lead", "Case"))
    assert (plan.read_output, plan.dry_run, plan.policy) == (
        None,
        True,
        WritePolicy(FILE_SPECS[:2], describes=described),
    )


def test_a_create_without_an_idempotency_field_is_warned_of(tmp_path, caplog):
    path = write(tmp_path, LEAD, case("create", "fields: {Subject: properties.title}", "open"))
    action_plan(PipelineOptions(["--actions_config", path]), OrgDescribe(), streaming=False)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"action 'open' of {path} creates without an idempotency_field: an event sent again (a replayed "
        "dead letter, a file read again, a stream delivered twice after a restart) creates another Case; "
        "give an External ID field (Unique) of Case as idempotency_field"
    ]


def test_a_file_the_org_cannot_take(tmp_path):
    path = write(tmp_path, LEAD, case("update", ONE + "\nfields: {Subjct: properties.title}"))
    describe = OrgDescribe()
    with pytest.raises(ActionsConfigError) as info:
        action_plan(PipelineOptions(["--actions_config", path]), describe, streaming=False)
    assert info.value.problems == (
        f"{path}:14: action 'c': field 'Subjct': Case has no field 'Subjct'; did you mean 'Subject'?",
    )
    assert describe.calls == ["Lead", "Case"]


def test_a_file_with_problems_of_its_own_is_never_described(tmp_path):
    path = write(tmp_path, case("update", "fields: {Subject: properties.title}"))
    with pytest.raises(ActionsConfigError) as info:
        action_plan(PipelineOptions(["--actions_config", path]), never_described, streaming=False)
    assert info.value.problems == (
        f"{path}:6: action 'c': operation update needs match; add match rules saying which records to "
        "update, e.g. match: {Email: traits.email}",
    )


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            ApiLimitExceeded("TotalRequests Limit exceeded."),
            "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.",
        ),
        (
            ApiUsageReserved("90% of the daily API requests used"),
            "API_USAGE_RESERVED: 90% of the daily API requests used",
        ),
        (
            TransientError("SERVER_UNAVAILABLE", "try later", 3),
            "SERVER_UNAVAILABLE: try later (after 3 attempt(s))",
        ),
    ],
)
def test_a_describe_that_cannot_be_made_is_a_warning(tmp_path, caplog, error, text):
    path = write(tmp_path, *FILE)
    describe = OrgDescribe(error)
    options = PipelineOptions(["--actions_config", path, "--read_output", "out/reads"])
    with caplog.at_level(logging.WARNING, logger="pipeline.action_options"):
        plan = action_plan(options, describe, streaming=False)
    assert describe.calls == ["Lead"]  # the first failure ends the check
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "pipeline.action_options",
            "WARNING",
            f"could not check {path} against the org ({text}); its objects and fields are checked as they "
            "are written",
        )
    ]
    assert plan.policy == WritePolicy(FILE_SPECS)
    assert plan.read_output == "out/reads"


def test_a_describe_that_cannot_be_made_still_needs_read_output(tmp_path, caplog):
    path = write(tmp_path, *FILE)
    with pytest.raises(ConfigurationError) as info:
        action_plan(
            PipelineOptions(["--actions_config", path]), OrgDescribe(ApiLimitExceeded("x")), streaming=False
        )
    assert str(info.value).startswith(f"{path}: action 'find_contact' reads records")
    assert len(caplog.records) == 1


def test_other_describe_errors_stop_the_run(tmp_path):
    path = write(tmp_path, *FILE)
    error = SalesforceApiError(403, "INSUFFICIENT_ACCESS", "no access to describe")
    with pytest.raises(SalesforceApiError) as info:
        action_plan(PipelineOptions(["--actions_config", path]), OrgDescribe(error), streaming=False)
    assert info.value is error


# --- the org's describes ------------------------------------------------------------------------------


def _meta(sobject: str, **types: str) -> ObjectMeta:
    fields = [{"name": "Id", "type": "id"}] + [{"name": n, "type": t} for n, t in types.items()]
    return ObjectMeta.from_describe({"name": sobject, "fields": fields})


@pytest.mark.parametrize(
    ("field_type", "classic"),
    [
        ("string", True),
        ("email", True),
        ("double", False),
        ("int", False),
        ("date", False),
        ("datetime", False),
        ("boolean", False),
    ],
)
def test_an_upsert_on_a_number_date_or_checkbox_is_not_classic(field_type, classic):
    # The classic lookup quotes its values and compares them as text: those fields need actions_write's.
    body = case("upsert", "match: {Code__c: properties.code}")
    meta = _meta("Case", Code__c=field_type)
    assert is_classic(action_of(body), meta) is classic
    specs = write_policy(config_of(body), describes={"case": meta}).actions
    assert [s.name for s in specs] == ([] if classic else ["c"])


def test_an_object_takes_the_org_s_spelling(tmp_path):
    path = tmp_path / "actions.yaml"
    path.write_text(
        "version: 1\nactions:\n  - name: l\n    trigger: identify\n    object: lead\n    operation: update\n"
        "    match: {email: traits.email}\n    fields: {Title: traits.title}\n"
    )
    options = PipelineOptions(["--actions_config", str(path)])
    plan = action_plan(options, lambda name: _meta("Lead", Email="email", Title="string"), streaming=False)
    assert [a.object for a in plan.config.actions] == ["Lead"]
    assert [s.sobject for s in plan.policy.actions] == ["Lead"]


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_actions_config_names_no_file(value):
    with pytest.raises(ConfigurationError) as e:
        action_plan(PipelineOptions(["--actions_config", value]), lambda name: None, streaming=False)
    assert str(e.value) == (
        f"--actions_config {value!r} names no file: give the path of an actions file (YAML), or leave the "
        "option out for the built-in actions"
    )
