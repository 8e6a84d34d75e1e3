"""Tests of the actions file: the built-in defaults, parsing into Actions, and every problem's message."""

import json
import pickle
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from actions.config import (
    Action,
    ActionsConfig,
    ActionsConfigError,
    Source,
    default_actions,
    default_actions_text,
    load_actions,
    parse_actions,
)
from salesforce.errors import ConfigurationError

FULL = """\
version: 1
actions:
  - name: issue_submitted_case
    trigger: {track: Issue Submitted}
    object: Case
    operation: create
    idempotency_field: Beamforce_Message_Id__c
    fields:
      Subject: properties.title
      Description: [properties.description, properties.body]
      Origin: {literal: Web}
      IsEscalated: {literal: true}
    create_defaults: {Priority: High, Score__c: 2.5}
  - name: find_lead
    trigger: identify
    object: Lead
    operation: read
    match:
      Email: traits.email
      Company: {literal: Acme}
    read_fields: [Id, Status]
    on_multiple: dead_letter
  - name: lead_from_identify
    trigger: identify
    object: Lead
    operation: upsert
    preset: segment_lead
    match: {Email: [traits.email, context.traits.email]}
    fields: {LeadSource: {literal: Web}}
    create_defaults: {Company: n/a}
    on_multiple: all
  - name: close_case
    trigger: {track: Issue Closed}
    object: Case
    operation: update
    match: {SuppliedEmail: context.traits.email}
    fields: {Status: {literal: Closed}}
  - name: forget_account
    trigger: group
    object: Account
    operation: delete
    match: {AccountNumber: groupId}
  - name: also_issue
    trigger: {track: Issue Submitted}
    object: Contact
    operation: upsert
    match: {Email: properties.email}
"""

ISSUE = Action(
    name="issue_submitted_case",
    event_type="track",
    event="Issue Submitted",
    object="Case",
    operation="create",
    match=(),
    fields=(
        ("Subject", Source(("properties.title",))),
        ("Description", Source(("properties.description", "properties.body"))),
        ("Origin", Source(literal="Web")),
        ("IsEscalated", Source(literal=True)),
    ),
    create_defaults=(("Priority", "High"), ("Score__c", 2.5)),
    on_multiple="update_latest",
    idempotency_field="Beamforce_Message_Id__c",
    read_fields=(),
    preset=None,
    line=3,
    lines=(
        ("fields.Subject", 9),
        ("fields.Description", 10),
        ("fields.Origin", 11),
        ("fields.IsEscalated", 12),
        ("create_defaults.Priority", 13),
        ("create_defaults.Score__c", 13),
        ("idempotency_field", 7),
    ),
)
FIND = Action(
    name="find_lead",
    event_type="identify",
    event=None,
    object="Lead",
    operation="read",
    match=(("Email", Source(("traits.email",))), ("Company", Source(literal="Acme"))),
    fields=(),
    create_defaults=(),
    on_multiple="dead_letter",
    idempotency_field=None,
    read_fields=("Id", "Status"),
    preset=None,
    line=14,
    lines=(("match.Email", 19), ("match.Company", 20), ("read_fields.Id", 21), ("read_fields.Status", 21)),
)
LEAD = Action(
    name="lead_from_identify",
    event_type="identify",
    event=None,
    object="Lead",
    operation="upsert",
    match=(("Email", Source(("traits.email", "context.traits.email"))),),
    fields=(("LeadSource", Source(literal="Web")),),
    create_defaults=(("Company", "n/a"),),
    on_multiple="all",
    idempotency_field=None,
    read_fields=(),
    preset="segment_lead",
    line=23,
    lines=(("match.Email", 28), ("fields.LeadSource", 29), ("create_defaults.Company", 30)),
)
CLOSE = Action(
    name="close_case",
    event_type="track",
    event="Issue Closed",
    object="Case",
    operation="update",
    match=(("SuppliedEmail", Source(("context.traits.email",))),),
    fields=(("Status", Source(literal="Closed")),),
    create_defaults=(),
    on_multiple="update_latest",
    idempotency_field=None,
    read_fields=(),
    preset=None,
    line=32,
    lines=(("match.SuppliedEmail", 36), ("fields.Status", 37)),
)
FORGET = Action(
    name="forget_account",
    event_type="group",
    event=None,
    object="Account",
    operation="delete",
    match=(("AccountNumber", Source(("groupId",))),),
    fields=(),
    create_defaults=(),
    on_multiple="update_latest",
    idempotency_field=None,
    read_fields=(),
    preset=None,
    line=38,
    lines=(("match.AccountNumber", 42),),
)
ALSO = Action(
    name="also_issue",
    event_type="track",
    event="Issue Submitted",
    object="Contact",
    operation="upsert",
    match=(("Email", Source(("properties.email",))),),
    fields=(),
    create_defaults=(),
    on_multiple="update_latest",
    idempotency_field=None,
    read_fields=(),
    preset=None,
    line=43,
    lines=(("match.Email", 47),),
)


def problems(text: str) -> list[str]:
    with pytest.raises(ActionsConfigError) as info:
        parse_actions(text, "actions.yaml")
    assert str(info.value) == "\n".join(info.value.problems)
    return list(info.value.problems)


# --- the built-in defaults ---


def test_default_actions():
    config = default_actions()
    assert config.is_default
    assert config.path == "actions/defaults.yaml"
    assert config.actions == (
        Action(
            name="identify_lead",
            event_type="identify",
            event=None,
            object="Lead",
            operation="upsert",
            match=(("Email", Source(("traits.email",))),),
            fields=(),
            create_defaults=(),
            on_multiple="update_latest",
            idempotency_field=None,
            read_fields=(),
            preset="segment_lead",
            line=15,
            lines=(("match.Email", 23),),
        ),
        Action(
            name="group_account",
            event_type="group",
            event=None,
            object="Account",
            operation="upsert",
            match=(("AccountNumber", Source(("groupId",))),),
            fields=(),
            create_defaults=(),
            on_multiple="update_latest",
            idempotency_field=None,
            read_fields=(),
            preset="segment_account",
            line=33,
            lines=(("match.AccountNumber", 40),),
        ),
    )
    assert config.objects() == ("Account", "Lead")


def test_default_actions_text_is_the_packaged_file_and_parses_to_the_defaults():
    text = default_actions_text()
    assert text == resources.files("actions").joinpath("defaults.yaml").read_text(encoding="utf-8")
    assert text.startswith("# beamforce's built-in actions")
    copied = parse_actions(text, "actions/defaults.yaml")
    assert copied.actions == default_actions().actions
    assert not copied.is_default


def test_default_actions_commented_keys_are_valid_when_uncommented():
    # The defaults show the optional keys as comments for users to copy: they must stay valid.
    text = default_actions_text().replace("    # fields:", "    fields:").replace("    #   ", "      ")
    text = text.replace("    # create_defaults:", "    create_defaults:").replace(
        "    # on_multiple", "    on_multiple"
    )
    lead = parse_actions(text).actions[0]
    assert lead.fields == (
        ("LeadSource", Source(literal="Web")),
        ("Title", Source(("traits.title", "traits.jobTitle"))),
    )
    assert lead.create_defaults == (("Status", "Open - Not Contacted"),)
    assert lead.on_multiple == "update_latest"


# --- parsing ---


def test_full_config_parses_into_exact_actions():
    config = parse_actions(FULL, "actions.yaml")
    assert config == ActionsConfig((ISSUE, FIND, LEAD, CLOSE, FORGET, ALSO), "actions.yaml")
    assert not config.is_default
    assert config.objects() == ("Account", "Case", "Contact", "Lead")


@pytest.mark.parametrize(
    ("event_type", "event_name", "names"),
    [
        ("track", "Issue Submitted", ("issue_submitted_case", "also_issue")),
        ("track", "Issue Closed", ("close_case",)),
        ("track", "issue submitted", ()),
        ("track", None, ()),
        ("identify", None, ("find_lead", "lead_from_identify")),
        ("identify", "ignored for identify", ("find_lead", "lead_from_identify")),
        ("group", None, ("forget_account",)),
        ("page", None, ()),
    ],
)
def test_for_event(event_type, event_name, names):
    config = parse_actions(FULL)
    assert tuple(a.name for a in config.for_event(event_type, event_name)) == names


def test_action_trigger_line_of_and_source_describe():
    assert (ISSUE.trigger, FIND.trigger, FORGET.trigger) == ("track 'Issue Submitted'", "identify", "group")
    assert ISSUE.line_of("fields.Description") == 10
    assert ISSUE.line_of("idempotency_field") == 7
    assert ISSUE.line_of("fields.Unknown") == 3
    assert Source(("properties.description", "properties.body")).describe() == (
        "properties.description or properties.body"
    )
    assert Source(("traits.email",)).describe() == "traits.email"
    assert Source(literal="Web").describe() == "literal 'Web'"
    assert Source(literal=3).describe() == "literal 3"


def test_parse_keeps_the_default_path_name():
    assert parse_actions(FULL).path == "<string>"
    assert problems("version: 1\nactions: []\n") == [
        "actions.yaml:2: actions is empty; add at least one action (see --print_default_actions)"
    ]


def test_anchors_and_aliases_are_followed():
    text = FULL.replace("match: {Email: properties.email}", "match: &by_email {Email: properties.email}")
    text += "  - name: again\n    trigger: {track: Issue Again}\n    object: Contact\n    operation: upsert\n"
    text += "    match: *by_email\n"
    again = parse_actions(text).actions[-1]
    assert again.match == ALSO.match
    assert again.line_of("match.Email") == 52  # the alias's line: the action's own


def test_config_survives_pickling():
    config = pickle.loads(pickle.dumps(parse_actions(FULL)))
    assert config == parse_actions(FULL)
    assert config.for_event("track", "Issue Closed") == (CLOSE,)


def test_error_lists_every_problem_and_survives_pickling():
    error = ActionsConfigError(["a.yaml:1: one; fix", "a.yaml:2: two; fix"])
    assert isinstance(error, ConfigurationError)
    assert str(error) == "a.yaml:1: one; fix\na.yaml:2: two; fix"
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems and str(copy) == str(error)


# --- the file and the schema ---

# An action with nothing wrong, at lines 3-7; each case below adds or changes keys.
HEAD = "version: 1\nactions:\n"
OK = """\
  - name: ok
    trigger: {track: Issue Submitted}
    object: Case
    operation: create
    fields: {Subject: properties.title}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            ["actions.yaml:1: the file is empty; start from the output of --print_default_actions"],
        ),
        (
            "version: 1\nactions:\n  - name: x\n    trigger: [\n",
            [
                "actions.yaml:5: the file is not valid YAML (while parsing a flow node, expected the node "
                "content, but found '<stream end>'); fix the indentation, colons or quotes there"
            ],
        ),
        (
            "version: 1\nactions:\n\t- name: x\n",
            [
                "actions.yaml:3: the file is not valid YAML (while scanning for the next token, found "
                "character '\\t' that cannot start any token); fix the indentation, colons or quotes there"
            ],
        ),
        (
            "version: 1\n---\nversion: 1\n",
            [
                "actions.yaml:2: the file is not valid YAML (expected a single document in the stream, but "
                "found another document); fix the indentation, colons or quotes there"
            ],
        ),
        (
            "version: 1\nactions: !!python/object/apply:os.system [true]\n",
            [
                "actions.yaml:2: the file is not valid YAML (could not determine a constructor for the tag "
                "'tag:yaml.org,2002:python/object/apply:os.system'); write plain text, numbers, lists and "
                "mappings there (no tags, no lists as keys)"
            ],
        ),
        (
            "version: 1\nactions: &all [*all]\n",
            ["actions.yaml:2: an alias refers to a node that contains it; write the value out instead"],
        ),
        (
            "version: 1\nactions:\n  - &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"  - &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n"
                for i in range(1, 8)
            ),
            [
                "actions.yaml:3: the file holds more than 100000 values (an alias counts its values each "
                "time it is used); keep it to the actions the run needs, and do not nest aliases in aliases"
            ],
        ),
        (
            "- name: x\n",
            [
                "actions.yaml:1: the file holds a list, not a mapping with the keys version and actions; "
                "start from the output of --print_default_actions"
            ],
        ),
        (
            "version: 2\nactons: []\n",
            [
                "actions.yaml:1: missing key 'actions'; add actions: with a list of actions, one a '-' item",
                "actions.yaml:1: version must be 1, not 2; set version: 1",
                "actions.yaml:2: unknown key 'actons'; did you mean 'actions'?",
            ],
        ),
        (
            "actions:\n" + OK,
            ["actions.yaml:1: missing key 'version'; add version: 1 at the top"],
        ),
        (
            "version: 1\nactions: {name: x}\n",
            [
                "actions.yaml:2: actions must be a list of actions, not a mapping; write each action as a "
                "'-' item under actions:"
            ],
        ),
        (
            "version: 1\nactions:\n" + OK + "version: 1\n",
            ["actions.yaml:8: key 'version' appears twice (also on line 1); keep one"],
        ),
    ],
)
def test_file_problems(text, expected):
    assert problems(text) == expected


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            "  - hello\n",
            [
                "actions.yaml:3: action '#1': the action is text, not a mapping; write its keys: name, "
                "trigger, object, operation"
            ],
        ),
        (
            "  - object: Case\n",
            [
                "actions.yaml:3: action '#1': missing key 'name'; add name: <a unique name, e.g. "
                "issue_submitted_case>",
                "actions.yaml:3: action '#1': missing key 'trigger'; add trigger: identify, group or {track: "
                "<event name>}",
                "actions.yaml:3: action '#1': missing key 'operation'; add operation: create, read, update, "
                "upsert, delete",
            ],
        ),
        (
            OK + "    feilds: {}\n    colour: red\n",
            [
                "actions.yaml:8: action 'ok': unknown key 'feilds'; did you mean 'fields'?",
                "actions.yaml:9: action 'ok': unknown key 'colour'; use one of: name, trigger, object, "
                "operation, idempotency_field, match, fields, create_defaults, on_multiple, read_fields, "
                "preset",
            ],
        ),
        (
            OK.replace("name: ok", "name: 2nd action"),
            [
                "actions.yaml:3: action '2nd action': name '2nd action' is not a valid action name; use a "
                "letter, then letters, digits and _, e.g. issue_submitted_case"
            ],
        ),
        (
            OK.replace("{track: Issue Submitted}", "{trak: Issue Submitted}"),
            [
                "actions.yaml:4: action 'ok': trigger {'trak': 'Issue Submitted'} is not identify, group or "
                "{track: <event name>}; e.g. trigger: identify, or trigger: {track: Order Completed}"
            ],
        ),
        (
            OK.replace("{track: Issue Submitted}", "page"),
            [
                "actions.yaml:4: action 'ok': trigger 'page' is not identify, group or {track: <event "
                "name>}; e.g. trigger: identify, or trigger: {track: Order Completed}"
            ],
        ),
        (
            OK.replace("{track: Issue Submitted}", "{track: 66}"),
            [
                "actions.yaml:4: action 'ok': the track event name 66 is not text; quote it, e.g. trigger: "
                "{track: 'Order 66'}"
            ],
        ),
        (
            OK.replace("object: Case", "object: Support Case"),
            [
                "actions.yaml:5: action 'ok': object 'Support Case' is not an sObject API name; use the API "
                "name, e.g. Case or Invoice__c"
            ],
        ),
        (
            OK.replace("operation: create", "operation: insert"),
            [
                "actions.yaml:6: action 'ok': unknown operation 'insert'; use one of: create, read, update, "
                "upsert, delete"
            ],
        ),
        (
            OK + "    on_multiple: first\n",
            [
                "actions.yaml:8: action 'ok': unknown on_multiple 'first'; use one of: update_latest, all, "
                "dead_letter"
            ],
        ),
        (
            OK + "    preset: segment_contact\n",
            [
                "actions.yaml:8: action 'ok': unknown preset 'segment_contact'; use one of: segment_lead, "
                "segment_account"
            ],
        ),
        (
            OK + "    idempotency_field: Message Id\n",
            [
                "actions.yaml:8: action 'ok': idempotency_field 'Message Id' is not a field API name; name "
                "an External ID field, e.g. Beamforce_Message_Id__c"
            ],
        ),
        (
            OK.replace("fields: {Subject: properties.title}", "fields: [Subject]"),
            [
                "actions.yaml:7: action 'ok': fields must be a mapping of Salesforce field to source, not a "
                "list; e.g. fields: {Subject: properties.title}"
            ],
        ),
        (
            OK.replace("fields: {Subject: properties.title}", "fields: {Sub ject: properties.title}"),
            [
                "actions.yaml:7: action 'ok': field 'Sub ject': not a field API name; use the field's API "
                "name: a letter, then letters, digits and _ (custom fields end in __c)"
            ],
        ),
        (
            OK.replace(
                "fields: {Subject: properties.title}", "fields:\n      Subject: {path: properties.title}"
            ),
            [
                "actions.yaml:8: action 'ok': field 'Subject': source {'path': 'properties.title'} is not an "
                "event path, a list of paths or {literal: <value>}; e.g. properties.title, "
                "[properties.title, properties.name] or {literal: Web}"
            ],
        ),
        (
            OK.replace("fields: {Subject: properties.title}", "fields:\n      Subject: []"),
            [
                "actions.yaml:8: action 'ok': field 'Subject': source [] is not an event path, a list of "
                "paths or {literal: <value>}; e.g. properties.title, [properties.title, properties.name] or "
                "{literal: Web}"
            ],
        ),
        (
            OK.replace(
                "fields: {Subject: properties.title}", "fields:\n      Subject: {literal: 2024-05-01}"
            ),
            [
                "actions.yaml:8: action 'ok': field 'Subject': literal datetime.date(2024, 5, 1) is not "
                "text, a number or true/false; write text, a number or true/false (quote dates and other "
                "text YAML reads otherwise)"
            ],
        ),
        (
            OK.replace("operation: create", "operation: update") + "    match: {}\n",
            [
                "actions.yaml:8: action 'ok': match has no rules; add at least one, e.g. match: {Email: "
                "traits.email}"
            ],
        ),
        (
            OK + "    create_defaults:\n      Origin: null\n",
            [
                "actions.yaml:9: action 'ok': field 'Origin': create default None is not text, a number or "
                "true/false; write text, a number or true/false (quote dates and other text YAML reads "
                "otherwise)"
            ],
        ),
        (
            OK.replace("operation: create", "operation: read").replace(
                "fields: {Subject: properties.title}", "match: {Email: properties.email}"
            )
            + "    read_fields: []\n",
            [
                "actions.yaml:8: action 'ok': read_fields is empty; list the fields to read, e.g. "
                "read_fields: [Id, Status]"
            ],
        ),
        (
            OK.replace("operation: create", "operation: read").replace(
                "fields: {Subject: properties.title}", "match: {Email: properties.email}"
            )
            + "    read_fields: [Id, Last Name]\n",
            [
                "actions.yaml:8: action 'ok': field 'Last Name': not a field API name; use the field's API "
                "name: a letter, then letters, digits and _ (custom fields end in __c)"
            ],
        ),
    ],
)
def test_schema_problems(action, expected):
    assert problems(HEAD + action) == expected


def test_schema_problems_of_one_action_leave_the_others_checked():
    bad = OK.replace("name: ok", "name: bad").replace("operation: create", "operation: insert")
    other = OK.replace("name: ok", "name: other").replace("properties.title", "traits.title")
    assert problems(HEAD + bad + other) == [
        "actions.yaml:6: action 'bad': unknown operation 'insert'; use one of: create, read, update, upsert, "
        "delete",
        "actions.yaml:12: action 'other': field 'Subject': path 'traits.title' can never be set on a track "
        "event; use one of: anonymousId, channel, context, event, integrations, messageId, "
        "originalTimestamp, properties, receivedAt, sentAt, timestamp, type, userId, version",
    ]


# --- the rules beyond the schema ---

TRACK_ROOTS = (
    "anonymousId, channel, context, event, integrations, messageId, originalTimestamp, properties, "
    "receivedAt, sentAt, timestamp, type, userId, version"
)
IDENTIFY_ROOTS = (
    "anonymousId, channel, context, integrations, messageId, originalTimestamp, receivedAt, sentAt, "
    "timestamp, traits, type, userId, version"
)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            OK + OK,
            [
                "actions.yaml:8: action 'ok': the name is also used by the action on line 3; give each "
                "action its own name"
            ],
        ),
        (
            OK.replace("properties.title", "propertys.title"),
            [
                "actions.yaml:7: action 'ok': field 'Subject': path 'propertys.title' does not start with an "
                f"event key; use one of: {TRACK_ROOTS}"
            ],
        ),
        (
            OK.replace("properties.title", "[properties.title, 'properties..name', '']"),
            [
                "actions.yaml:7: action 'ok': field 'Subject': path 'properties..name' has an empty key (two "
                "dots in a row, or a dot at an end); write event keys joined by single dots, e.g. "
                "properties.title",
                "actions.yaml:7: action 'ok': field 'Subject': the path is empty; write event keys joined by "
                "single dots, e.g. properties.title",
            ],
        ),
        (
            OK.replace("properties.title", "'properties. title'"),
            [
                "actions.yaml:7: action 'ok': field 'Subject': path 'properties. title' has spaces around a "
                "dot or at an end; write event keys joined by single dots, e.g. properties.title"
            ],
        ),
        (
            OK.replace("{track: Issue Submitted}", "identify"),
            [
                "actions.yaml:7: action 'ok': field 'Subject': path 'properties.title' can never be set on "
                "an "
                f"identify event; use one of: {IDENTIFY_ROOTS}"
            ],
        ),
        (
            OK.replace("{track: Issue Submitted}", "group").replace(
                "properties.title", "[traits.name, event]"
            ),
            [
                "actions.yaml:7: action 'ok': field 'Subject': path 'event' can never be set on a group "
                "event; use one of: anonymousId, channel, context, groupId, integrations, messageId, "
                "originalTimestamp, receivedAt, sentAt, timestamp, traits, type, userId, version"
            ],
        ),
        (
            OK.replace("{track: Issue Submitted}", "{track: ' '}"),
            [
                "actions.yaml:4: action 'ok': the track event name is empty; write it as Segment sends it, "
                "e.g. {track: Order Completed}"
            ],
        ),
        (
            OK + "    match: {SuppliedEmail: properties.email}\n",
            [
                "actions.yaml:8: action 'ok': operation create takes no match; remove match: a create always "
                "makes a new record (use upsert to update a matching one)"
            ],
        ),
        (
            OK.replace("operation: create", "operation: upsert"),
            [
                "actions.yaml:6: action 'ok': operation upsert needs match; add match rules saying which "
                "records to update, e.g. match: {Email: traits.email}"
            ],
        ),
        (
            OK.replace("operation: create", "operation: delete")
            + "    match: {SuppliedEmail: properties.email}\n",
            ["actions.yaml:7: action 'ok': operation delete writes no fields; remove fields"],
        ),
        (
            OK.replace("operation: create", "operation: read")
            + "    match: {SuppliedEmail: properties.email}\n",
            [
                "actions.yaml:6: action 'ok': operation read needs read_fields; add read_fields: [Id, ...] "
                "listing the fields to read",
                "actions.yaml:7: action 'ok': operation read writes no fields; remove fields (read_fields "
                "lists the fields to read)",
            ],
        ),
        (
            OK + "    read_fields: [Id]\n",
            ["actions.yaml:8: action 'ok': read_fields only applies to operation read; remove read_fields"],
        ),
        (
            OK.replace("operation: create", "operation: update")
            + "    match: {SuppliedEmail: properties.email}\n    idempotency_field: Message__c\n",
            [
                "actions.yaml:9: action 'ok': idempotency_field only applies to operation create; remove it: "
                "a retried update finds its records by match"
            ],
        ),
        (
            # Found by a hostile review: the mapping was silently replaced by the messageId.
            OK.replace("{Subject: properties.title}", "{Subject: properties.title, message__c: messageId}")
            + "    idempotency_field: Message__c\n",
            [
                "actions.yaml:8: action 'ok': Message__c is the idempotency_field, which the writer fills "
                "with the event's messageId, and fields also sets it; remove Message__c from fields, or "
                "name another idempotency_field"
            ],
        ),
        (
            OK.replace("operation: create", "operation: update")
            + "    match: {SuppliedEmail: properties.email}\n    create_defaults: {Origin: Web}\n",
            [
                "actions.yaml:9: action 'ok': create_defaults only applies to operations create and upsert; "
                "remove create_defaults: operation update never creates a record"
            ],
        ),
        (
            OK + "    on_multiple: all\n",
            [
                "actions.yaml:8: action 'ok': on_multiple does not apply to operation create; remove "
                "on_multiple: a create matches no records"
            ],
        ),
        (
            OK + "    preset: segment_lead\n",
            [
                "actions.yaml:8: action 'ok': preset segment_lead maps identify events to Lead, not track "
                "'Issue Submitted' to Case; use object: Lead and trigger: identify, or remove preset"
            ],
        ),
        (
            OK.replace("{track: Issue Submitted}", "group").replace("properties.title", "traits.name")
            + "    preset: segment_lead\n",
            [
                "actions.yaml:8: action 'ok': preset segment_lead maps identify events to Lead, not group to "
                "Case; use object: Lead and trigger: identify, or remove preset"
            ],
        ),
        (
            "  - name: gone\n    trigger: group\n    object: account\n    operation: delete\n    match: "
            "{AccountNumber: groupId}\n    preset: segment_account\n",
            [
                "actions.yaml:8: action 'gone': preset segment_account writes fields, which operation delete "
                "does not; remove preset"
            ],
        ),
        (
            OK.replace(
                "fields: {Subject: properties.title}",
                "fields:\n      Subject: properties.title\n      SUBJECT: properties.name\n      Subject: "
                "properties.x",
            ),
            [
                "actions.yaml:9: action 'ok': field 'SUBJECT': named twice in fields (also on line 8); keep "
                "one: Salesforce field names ignore case",
                "actions.yaml:10: action 'ok': field 'Subject': named twice in fields (also on line 8); keep "
                "one: Salesforce field names ignore case",
            ],
        ),
        (
            OK.replace("operation: create", "operation: read").replace(
                "fields: {Subject: properties.title}", "match: {Email: properties.email}"
            )
            + "    read_fields:\n      - Id\n      - Status\n      - ID\n",
            [
                "actions.yaml:11: action 'ok': field 'ID': named twice in read_fields (also on line 9); keep "
                "one: Salesforce field names ignore case"
            ],
        ),
        (
            OK + "    object: Contact\n",
            ["actions.yaml:8: action 'ok': key 'object' appears twice (also on line 5); keep one"],
        ),
        (
            OK.replace("properties.title", "{literal: .inf}"),
            [
                "actions.yaml:7: action 'ok': field 'Subject': literal inf is not a finite number, which "
                "Salesforce cannot store; give a number, or quote it to write it as text"
            ],
        ),
    ],
)
def test_semantic_problems(action, expected):
    assert problems(HEAD + action) == expected


def test_file_problems_leave_the_actions_checked():
    text = "version: 2\nactions:\n" + OK.replace("properties.title", "traits.title") + "extra: true\n"
    assert problems(text) == [
        "actions.yaml:1: version must be 1, not 2; set version: 1",
        "actions.yaml:7: action 'ok': field 'Subject': path 'traits.title' can never be set on a track "
        f"event; use one of: {TRACK_ROOTS}",
        "actions.yaml:8: unknown key 'extra'; use one of: actions, version",
    ]


def test_all_problems_come_at_once_in_line_order():
    text = HEAD + (
        "  - name: a\n"  # 3
        "    trigger: identify\n    object: Lead\n"
        "    operation: update\n"  # 6: no match
        "    fields:\n"
        "      Title: properties.title\n"  # 8: never on identify
        "      LeadSource: {literal: Web}\n"
        "    on_multiple: al\n"  # 10: schema
        "  - name: a\n"  # 11: duplicate name
        "    trigger: identify\n    object: Lead\n    operation: create\n"
        "    fields: {Title: contxt.title}\n"  # 15
        "    on_multiple: all\n"  # 16
    )
    assert problems(text) == [
        "actions.yaml:10: action 'a': unknown on_multiple 'al'; use one of: update_latest, all, dead_letter",
        "actions.yaml:11: action 'a': the name is also used by the action on line 3; give each action its "
        "own name",
        "actions.yaml:15: action 'a': field 'Title': path 'contxt.title' does not start with an event key; "
        "use "
        f"one of: {IDENTIFY_ROOTS}",
        "actions.yaml:16: action 'a': on_multiple does not apply to operation create; remove on_multiple: a "
        "create matches no records",
    ]


# --- loading a file ---


def test_load_actions_reads_the_file(tmp_path):
    path = tmp_path / "actions.yaml"
    path.write_text(FULL, encoding="utf-8")
    assert load_actions(str(path)) == ActionsConfig((ISSUE, FIND, LEAD, CLOSE, FORGET, ALSO), str(path))


def test_load_actions_names_the_path_in_problems(tmp_path):
    path = tmp_path / "actions.yaml"
    path.write_text("version: 1\nactions: []\n", encoding="utf-8")
    with pytest.raises(ActionsConfigError) as info:
        load_actions(str(path))
    assert info.value.problems == (
        f"{path}:2: actions is empty; add at least one action (see --print_default_actions)",
    )


def test_load_actions_missing_file(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(ActionsConfigError) as info:
        load_actions(str(path))
    assert info.value.problems == (
        f"{path}: no such file; check --actions_config, or start from the built-in actions: beamforce "
        f"--print_default_actions > {path}",
    )


def test_load_actions_directory(tmp_path):
    with pytest.raises(ActionsConfigError) as info:
        load_actions(str(tmp_path))
    assert str(info.value) == f"{tmp_path}: is a directory; give --actions_config the path of the YAML file"


def test_load_actions_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\n# café\n".encode("latin-1"))
    with pytest.raises(ActionsConfigError) as info:
        load_actions(str(path))
    assert str(info.value) == f"{path}: is not UTF-8 text (byte 16 is not); save the file as UTF-8"


# --- the schema file ---


def _properties(node):
    if isinstance(node, dict):
        yield from (node.get("properties") or {}).items()
        for value in node.values():
            yield from _properties(value)
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value)


def _objects(node):
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_schema_is_draft_2020_12_with_descriptions_and_closed_objects():
    schema = json.loads(
        resources.files("schemas").joinpath("actions.schema.json").read_text(encoding="utf-8")
    )
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["version"]["const"] == 1 and "version" in schema["required"]
    undescribed = [name for name, prop in _properties(schema) if "description" not in prop]
    assert undescribed == []
    assert all(obj.get("additionalProperties") is not True for obj in _objects(schema))
    assert all("additionalProperties" in obj for obj in _objects(schema))
    action = schema["$defs"]["action"]["properties"]
    assert action["operation"]["enum"] == ["create", "read", "update", "upsert", "delete"]
    assert action["on_multiple"]["enum"] == ["update_latest", "all", "dead_letter"]
    assert action["preset"]["enum"] == ["segment_lead", "segment_account"]


def test_load_actions_names_a_filesystem_this_install_lacks():
    with pytest.raises(ActionsConfigError) as info:
        load_actions("gs://bucket/actions.yaml")
    [problem] = info.value.problems
    assert problem.startswith("gs://bucket/actions.yaml: cannot be read (no filesystem reads gs:// here (")
    assert problem.endswith(
        "pip install apache-beam[gcp]. Path specified: gs://bucket/actions.yaml)); check "
        "the path given to --actions_config"
    )


@pytest.mark.parametrize("depth", [20, 600])
def test_deep_nesting_is_a_problem_not_a_crash(depth):
    # 600 levels exhaust PyYAML's own recursion; 20 pass it and are refused by the walk.
    nested = "[" * depth + "x" + "]" * depth
    text = f"version: 1\nactions:\n  - name: a\n    match: {{Email: {nested}}}\n"
    [problem] = problems(text)
    assert problem in (
        "actions.yaml:4: values are nested more than 16 levels deep; an action's values are text, numbers or "
        "lists of paths; start from --print_default_actions",
        "actions.yaml:1: the file nests its values too deeply to be read; an action's values are text, "
        "numbers or lists of paths; start from --print_default_actions",
    )
    assert ("too deeply" in problem) == (depth == 600)


def test_two_creates_keyed_by_one_field_are_refused():
    # Both would hold the event's messageId in the same field: the second would update the first's record.
    case = (
        "  - name: {name}\n    trigger: {{track: Issue Submitted}}\n    object: {obj}\n"
        "    operation: create\n    fields: {{Subject: properties.title}}\n"
        "    idempotency_field: Beamforce_Message_Id__c\n"
    )
    text = "version: 1\nactions:\n" + case.format(name="a", obj="Case") + case.format(name="b", obj="case")
    assert problems(text) == [
        "actions.yaml:14: action 'b': field 'Beamforce_Message_Id__c': action 'a' (line 3) also creates case "
        "records for this trigger keyed by the event's messageId in Beamforce_Message_Id__c: the two would "
        "write one record; give each action its own idempotency_field"
    ]
    # On another object, or for another trigger, each keeps its own records.
    other = case.format(name="b", obj="Contact")
    assert (
        len(
            parse_actions(
                "version: 1\nactions:\n" + case.format(name="a", obj="Case") + other, "a.yaml"
            ).actions
        )
        == 2
    )


def test_replay_actions_are_those_sharing_a_trigger_and_a_replay_takes_the_named_one():
    text = "version: 1\nactions:\n" + "".join(
        f"  - name: {name}\n    trigger: {trigger}\n    object: Case\n    operation: create\n"
        "    fields: {Subject: properties.title}\n"
        for name, trigger in (("a", "{track: T}"), ("b", "{track: T}"), ("c", "{track: U}"))
    )
    config = parse_actions(text, "a.yaml")
    assert config.replay_actions() == {"a", "b"}
    assert [a.name for a in config.for_replay("track", "T", "b")] == ["b"]
    assert [a.name for a in config.for_replay("track", "T", None)] == ["a", "b"]
    assert [a.name for a in config.for_replay("track", "T", "gone")] == ["a", "b"]  # no longer in the file


def test_a_repeated_section_is_reported_once_and_its_last_value_counts():
    text = (
        "version: 1\nactions:\n  - name: a\n    trigger: identify\n    object: Lead\n    operation: update\n"
        "    match: {Email: traits.email}\n    match: {Email: traits.other}\n"
        "    fields: {Title: traits.title}\n"
    )
    # Before, the two mappings' fields were pooled: "field 'Email': named twice in match" as well.
    assert problems(text) == [
        "actions.yaml:8: action 'a': key 'match' appears twice (also on line 7); keep one"
    ]
