"""The options of custom actions, converted Leads, duplicate rules and dry runs, and the plan they make:
the actions file checked against the org, and what the writers are told to do."""

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from apache_beam.options.pipeline_options import PipelineOptions

from actions.check import check_against_org
from actions.config import Action, ActionsConfig, default_actions, load_actions
from pipeline.options import check_filesystem, local_prefix_writable
from salesforce.actions_write import TEXT, ActionSpec, match_kind
from salesforce.connection import DUPLICATE_RULE_MODES
from salesforce.errors import ApiLimitExceeded, ConfigurationError, TransientError
from schemas.fields import ObjectMeta
from transforms.batch_writer import CONVERTED_LEADS, WritePolicy

# Beam's own --dry_run (TestOptions: its runners' tests, taking a value) holds that name: ours is
# --salesforce_dry_run, and a bare --dry_run on our command line is read as it (dry_run_flag).
DRY_RUN_FLAG = "--salesforce_dry_run"


def dry_run_flag(argv: list[str]) -> list[str]:
    """`argv` with a bare --dry_run read as --salesforce_dry_run. --dry_run=VALUE is refused: Beam would
    take it for its own test option, and the run would write for real."""
    for a in argv:
        if a.startswith("--dry_run="):
            raise ConfigurationError(
                f"{a} takes no value: give --dry_run alone for a dry run, or leave it out for a real one"
            )
    return [DRY_RUN_FLAG if a == "--dry_run" else a for a in argv]


_log = logging.getLogger(__name__)


class ActionOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument(
            "--actions_config",
            metavar="FILE",
            default=None,
            help="What to write for which events: a YAML file of actions (trigger, object, operation, "
            "match rules, field mappings; schemas/actions.schema.json, examples in examples/). It "
            "replaces the built-in actions (identify -> Lead, group -> Account), and is checked against "
            "the org before any event is read; a local path, or gs://... with the gcp extra. Default: "
            "the built-in actions (--print_default_actions).",
        )
        parser.add_argument(
            "--print_default_actions",
            action="store_true",
            default=False,
            help="Print the built-in actions as an actions file (to copy, change and pass as "
            "--actions_config) and exit.",
        )
        parser.add_argument(
            "--read_output",
            metavar="PREFIX",
            default=None,
            help="Where 'read' actions write the records they look up, as JSON lines "
            "(PREFIX-*.jsonl; one line per record found, with the action, the event's messageId and the "
            "fields the action reads). Needed when the actions file has a read action.",
        )
        parser.add_argument(
            "--converted_leads",
            choices=CONVERTED_LEADS,
            default="contact",
            help="An identify whose Lead sales converted: 'contact' updates the Contact the Lead became "
            "(ConvertedContactId), mapped with the Contact's fields, counted as update_converted_lead; "
            "'dead_letter' makes it a dead letter (Salesforce refuses updates to converted Leads). "
            "Default contact.",
        )
        parser.add_argument(
            "--duplicate_rules",
            choices=DUPLICATE_RULE_MODES,
            default="enforce",
            help="The org's duplicate rules on the records the pipeline creates: 'enforce' lets every "
            "matching rule, block or alert, refuse a duplicate (a dead letter naming the rule and the "
            "existing record, not retried); 'allow_save' sends Sforce-Duplicate-Rule-Header "
            "allowSave=true, so that records an alert rule reports are saved (block rules still refuse). "
            "Default enforce.",
        )
        parser.add_argument(
            DRY_RUN_FLAG,
            action="store_true",
            default=False,
            help="(Also spelled --dry_run.) Read the events and look the records up, but write nothing: "
            "the summary says what a run would create and update per object, the fields it would trim or "
            "drop, the dead letters by reason and the API calls it would spend. Files and backfills only "
            "(bounded input); writes through REST.",
        )
        parser.add_argument(
            "--dry_run_output",
            metavar="FILE",
            default=None,
            help="With --dry_run: write the planned writes to FILE as JSON lines (operation, object, "
            "id for updates and deletes, fields).",
        )


@dataclass(frozen=True)
class ActionPlan:
    """What the run does with its events: the actions, the writers' policy, and where outputs go."""

    config: ActionsConfig
    policy: WritePolicy
    read_output: str | None = None
    dry_run: bool = False
    dry_run_output: str | None = None


def is_classic(action: Action, meta: ObjectMeta | None = None) -> bool:
    """Whether the writers' classic upsert does the action (one text match field, newest match updated,
    as identify -> Lead): its lookups, key field and late-data rules are the core's own. `meta`, the
    object's describe when known, tells a text field from a number or date, which the classic lookup
    (quoted values, compared as text) cannot match on."""
    return (
        action.operation == "upsert"
        and len(action.match) == 1
        and action.on_multiple == "update_latest"
        and action.idempotency_field is None
        and (meta is None or match_kind(meta, action.match[0][0]) == TEXT)
    )


def write_policy(
    config: ActionsConfig, converted_leads: str = "contact", describes: Mapping[str, ObjectMeta] | None = None
) -> WritePolicy:
    """The writers' policy: a spec for every action the classic upsert does not do. `describes` (object
    name lower-cased -> describe) are the org's, when the file was checked against it."""
    describes = describes or {}
    specs = tuple(
        ActionSpec(
            name=a.name,
            sobject=a.object,
            operation=a.operation,
            match_fields=tuple(name for name, _ in a.match),
            on_multiple=a.on_multiple,
            idempotency_field=a.idempotency_field,
            read_fields=a.read_fields,
        )
        for a in config.actions
        if not is_classic(a, describes.get(a.object.lower()))
    )
    return WritePolicy(actions=specs, converted_leads=converted_leads)


def load_config(options: PipelineOptions) -> ActionsConfig:
    """The --actions_config file parsed and checked on its own (ActionsConfigError), else the defaults."""
    path = options.view_as(ActionOptions).actions_config
    if path is not None and not path.strip():
        raise ConfigurationError(
            f"--actions_config {path!r} names no file: give the path of an actions file (YAML), or leave the "
            "option out for the built-in actions"
        )
    return load_actions(path) if path else default_actions()


def action_plan(
    options: PipelineOptions, describe: Callable[[str], ObjectMeta], streaming: bool
) -> ActionPlan:
    """Checks the action options together and the actions against the org (`describe`): ConfigurationError
    (ActionsConfigError for the file) says what to fix, before any event is read."""
    o = options.view_as(ActionOptions)
    if o.salesforce_dry_run and streaming:
        raise ConfigurationError(
            "--dry_run reads a bounded input (files, --archive, --kafka_bounded) and this run is a "
            "streaming one: dry-run a sample of the events as files, or leave --dry_run out"
        )
    if o.dry_run_output and not o.salesforce_dry_run:
        raise ConfigurationError(
            "--dry_run_output writes a dry run's plan, and --dry_run is not given: add --dry_run, or leave "
            "--dry_run_output out"
        )
    for flag, value in (("--dry_run_output", o.dry_run_output), ("--read_output", o.read_output)):
        if value is None:
            continue
        # Beam's file sink would delete a directory of that name to write its file there.
        if not value or value.endswith(("/", os.sep)) or ("://" not in value and os.path.isdir(value)):
            raise ConfigurationError(f"{flag} {value!r} is a directory: give a file name in it, e.g. out/x")
        check_filesystem(flag, value)
        if not local_prefix_writable(value):
            raise ConfigurationError(
                f"{flag} {value!r} cannot be written: its directory is not one that can be created or "
                "written; give a path such as out/x"
            )
    config = load_config(options)
    described: dict[str, ObjectMeta] = {}

    def describing(sobject: str) -> ObjectMeta:
        described[sobject.lower()] = meta = describe(sobject)
        return meta

    if not config.is_default:
        # The built-in actions need no check (the writers report a missing field as they go); a file's
        # are checked before any event is read.
        try:
            check_against_org(config, describing)
        except (ApiLimitExceeded, TransientError) as e:
            _log.warning(
                "could not check %s against the org (%s); its objects and fields are checked as they are "
                "written",
                config.path,
                e,
            )
    if described:
        # Objects as the org spells them: the writers' per-object rules (converted Leads, org set-up
        # fields) name them so, and the file may not (Salesforce's names are case-insensitive).
        config = replace(
            config,
            actions=tuple(
                replace(a, object=described[a.object.lower()].name) if a.object.lower() in described else a
                for a in config.actions
            ),
        )
    for a in config.actions:
        if a.operation == "create" and a.idempotency_field is None:
            _log.warning(
                "action %r of %s creates without an idempotency_field: an event sent again (a replayed "
                "dead letter, a file read again, a stream delivered twice after a restart) creates another "
                "%s; give an External ID field (Unique) of %s as idempotency_field",
                a.name,
                config.path,
                a.object,
                a.object,
            )
    readers = [a.name for a in config.actions if a.operation == "read"]
    if o.read_output and not readers:
        _log.warning(
            "--read_output has no effect: no action of %s reads records (operation: read)", config.path
        )
    if readers and not o.read_output:
        raise ConfigurationError(
            f"{config.path}: action '{readers[0]}' reads records, and --read_output is not given: add "
            "--read_output PREFIX (the records are written to PREFIX-*.jsonl)"
        )
    return ActionPlan(
        config=config,
        # The writers start with the describes read here: checking the file costs no call of its own.
        policy=replace(
            write_policy(config, o.converted_leads, described), describes=tuple(described.values())
        ),
        read_output=o.read_output if readers else None,
        dry_run=o.salesforce_dry_run,
        dry_run_output=o.dry_run_output,
    )
