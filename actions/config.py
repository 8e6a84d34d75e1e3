"""The custom-actions file (--actions_config): its format, parsing and checks, and the built-in defaults.

Each action takes the Segment events of one trigger and does one operation on one sObject::

    version: 1
    actions:
      - name: issue_submitted_case        # required, unique, [A-Za-z][A-Za-z0-9_]*
        trigger: {track: Issue Submitted} # or: trigger: identify   or: trigger: group
        object: Case                      # sObject API name
        operation: create                 # create | read | update | upsert | delete
        idempotency_field: Beamforce_Message_Id__c  # optional, create only: External ID field given
                                          # the messageId
        match:                            # required for read/update/upsert/delete; forbidden for create
          UserId__c: userId               # Salesforce field <- source; ALL rules must match
        fields:                           # Salesforce field <- source (not allowed for read/delete)
          Subject: properties.title
          Description: [properties.description, properties.body]  # fallbacks: first present, not null
          Origin: {literal: Web}
        create_defaults: {LastName: n/a}  # literals written only when a record is created (create/upsert)
        on_multiple: update_latest        # update_latest (default) | all | dead_letter
                                          # (read/update/upsert/delete)
        read_fields: [Id, Status]         # read only, required there
        preset: segment_lead              # optional: segment_lead (object Lead, trigger identify) or
                                          # segment_account (object Account, trigger group): start from the
                                          # built-in mapping of those events; own fields add to it

A source is an event path (dotted, starting at a top-level key of the event: `traits.email`,
`properties.title`, `context.ip`, `timestamp`, `messageId`, `userId`, `anonymousId`, `groupId`, `event`,
`context.traits.email`, `properties.products.0.sku`), a list of such paths (fallbacks: the first present and
not null wins), or `{literal: <text, number or true/false>}`.

The file is checked in three steps, and every problem found is reported at once, as
`<file>:<line>: action '<name>': field '<Field>': <problem>; <fix>`: the YAML itself, then
schemas/actions.schema.json, then the rules the schema cannot express (paths an event of the trigger can
carry, which keys go with which operation, names used twice). actions/check.py then checks the objects and
fields against the org's describe.
"""

import difflib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from functools import cache
from importlib import resources
from typing import Any, NoReturn

import yaml
from jsonschema import Draft202012Validator, ValidationError

from actions.paths import check_path, roots_for
from salesforce.actions_write import ON_MULTIPLE, OPERATIONS
from salesforce.errors import ConfigurationError

TRIGGERS = ("identify", "group")  # and {track: <event name>}
# preset -> (object, trigger) of the built-in mapping it starts from
PRESETS: dict[str, tuple[str, str]] = {
    "segment_lead": ("Lead", "identify"),
    "segment_account": ("Account", "group"),
}
DEFAULTS_NAME = "actions/defaults.yaml"  # how messages name the built-in file
MAX_NODES = 100_000  # aliases of aliases can make a short file expand without bound
# No action nests deeper than a few levels (actions, one action, fields, a fallback list).
MAX_DEPTH = 16
_NESTING_FIX = "an action's values are text, numbers or lists of paths; start from --print_default_actions"

_SECTIONS = ("match", "fields", "create_defaults")  # Salesforce field -> source (or literal)
_ACTION_KEYS = (
    "name",
    "trigger",
    "object",
    "operation",
    "idempotency_field",
    "match",
    "fields",
    "create_defaults",
    "on_multiple",
    "read_fields",
    "preset",
)
_REQUIRED_FIXES = {
    "name": "add name: <a unique name, e.g. issue_submitted_case>",
    "trigger": "add trigger: identify, group or {track: <event name>}",
    "object": "add object: <the sObject's API name, e.g. Case>",
    "operation": "add operation: " + ", ".join(OPERATIONS),
}
_SECTION_EXAMPLES = {
    "match": "match: {Email: traits.email}",
    "fields": "fields: {Subject: properties.title}",
    "create_defaults": "create_defaults: {LastName: n/a}",
}
_NAME_FIX = "use a letter, then letters, digits and _, e.g. issue_submitted_case"
_FIELD_NAME_FIX = "use the field's API name: a letter, then letters, digits and _ (custom fields end in __c)"
_SCALAR_FIX = "write text, a number or true/false (quote dates and other text YAML reads otherwise)"
_VERBS = {"read": "read", "update": "update", "upsert": "update", "delete": "delete"}


class ActionsConfigError(ConfigurationError):
    """The actions file has problems: `problems` holds each one's message, the str all of them, one a line."""

    def __init__(self, problems: Iterable[str]):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self):
        return type(self), (self.problems,)


def format_problem(
    path: str, line: int, problem: str, fix: str, action: str | None = None, field: str | None = None
) -> str:
    """`<path>:<line>: action '<action>': field '<field>': <problem>; <fix>`, without the parts not given."""
    where = f"action '{action}': " if action is not None else ""
    if field is not None:
        where += f"field '{field}': "
    return f"{path}:{line}: {where}{problem}; {fix}"


@dataclass(frozen=True)
class Source:
    """Where a value comes from: event paths tried in order (first present and not null), or a literal."""

    paths: tuple[str, ...] = ()
    literal: Any = None  # the value when `paths` is empty

    def describe(self) -> str:
        """The source as messages name it: `traits.email or properties.email`, `literal 'Web'`."""
        if self.paths:
            return " or ".join(self.paths)
        return f"literal {self.literal!r}"


@dataclass(frozen=True)
class Action:
    """One parsed action. `lines` gives the line of each field it names (key "fields.Subject",
    "match.Email", "create_defaults.LastName", "read_fields.Status", "idempotency_field")."""

    name: str
    event_type: str  # identify | group | track
    event: str | None  # the track event's name; None for identify and group
    object: str
    operation: str
    match: tuple[tuple[str, Source], ...] = ()
    fields: tuple[tuple[str, Source], ...] = ()
    create_defaults: tuple[tuple[str, Any], ...] = ()
    on_multiple: str = "update_latest"
    idempotency_field: str | None = None
    read_fields: tuple[str, ...] = ()
    preset: str | None = None
    line: int = 0  # the action's first line in the file
    lines: tuple[tuple[str, int], ...] = ()

    @property
    def trigger(self) -> str:
        """identify, group, or track 'Event Name'."""
        if self.event_type == "track":
            return f"track {self.event!r}"
        return self.event_type

    def line_of(self, key: str) -> int:
        """The line of `key` (e.g. "fields.Subject"), else the action's line."""
        for k, line in self.lines:
            if k == key:
                return line
        return self.line


@dataclass(frozen=True)
class ActionsConfig:
    """The parsed actions of one file, looked up by event (type, track name)."""

    actions: tuple[Action, ...]
    path: str
    is_default: bool = False  # the built-in actions (no --actions_config)
    _by_event: dict[tuple[str, str | None], tuple[Action, ...]] = dc_field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_event: dict[tuple[str, str | None], list[Action]] = {}
        for action in self.actions:
            by_event.setdefault((action.event_type, action.event), []).append(action)
        object.__setattr__(self, "_by_event", {k: tuple(v) for k, v in by_event.items()})

    def for_event(self, event_type: str, event_name: str | None) -> tuple[Action, ...]:
        """The actions an event takes, in file order: track ones by name, the others by type alone."""
        return self._by_event.get((event_type, event_name if event_type == "track" else None), ())

    def replay_actions(self) -> frozenset[str]:
        """The actions whose trigger has others: their dead letters name them, so that a replay redoes
        only the failed one (DeadLetter.action)."""
        return frozenset(a.name for actions in self._by_event.values() if len(actions) > 1 for a in actions)

    def for_replay(self, event_type: str, event_name: str | None, only: str | None) -> tuple[Action, ...]:
        """The actions an event takes, or only the one its dead letter names (all of them when the file
        has no such action any more)."""
        actions = self.for_event(event_type, event_name)
        chosen = tuple(a for a in actions if a.name == only) if only else ()
        return chosen or actions

    def objects(self) -> tuple[str, ...]:
        """The sObjects the actions name, sorted, each once."""
        return tuple(sorted({a.object for a in self.actions}))


def load_actions(path: str) -> ActionsConfig:
    """Reads and parses the actions file at `path`; ActionsConfigError when it cannot or has problems."""
    try:
        text = _read_remote(path) if "://" in path else _read_local(path)
    except FileNotFoundError:
        problem = f"{path}: no such file; check --actions_config, or start from the built-in actions: "
        raise ActionsConfigError([problem + f"beamforce --print_default_actions > {path}"]) from None
    except IsADirectoryError:
        raise ActionsConfigError(
            [f"{path}: is a directory; give --actions_config the path of the YAML file"]
        ) from None
    except PermissionError:
        raise ActionsConfigError(
            [f"{path}: cannot be read (permission denied); let the user running the pipeline read it"]
        ) from None
    except UnicodeDecodeError as exc:
        raise ActionsConfigError(
            [f"{path}: is not UTF-8 text (byte {exc.start} is not); save the file as UTF-8"]
        ) from None
    except OSError as exc:
        raise ActionsConfigError(
            [f"{path}: cannot be read ({exc.strerror or exc}); check the path given to --actions_config"]
        ) from None
    return parse_actions(text, path)


def _read_local(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _read_remote(path: str) -> str:
    """A file on one of Beam's filesystems (gs://, s3://, ...), where a deployment keeps its config."""
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(path) as f:
            return f.read().decode("utf-8")
    except ValueError as exc:  # no filesystem for the scheme (its extra is not installed)
        raise OSError(f"no filesystem reads {path.split('://', 1)[0]}:// here ({exc})") from None
    except UnicodeDecodeError:
        raise
    except Exception as exc:  # Beam's BeamIOError and the cloud clients' own errors
        if "not found" in str(exc).lower() or "no such" in str(exc).lower():
            raise FileNotFoundError(path) from None
        raise OSError(str(exc)) from None


def default_actions_text() -> str:
    """The built-in actions file, with its comments: what --print_default_actions prints."""
    return resources.files("actions").joinpath("defaults.yaml").read_text(encoding="utf-8")


@cache
def default_actions() -> ActionsConfig:
    """The built-in actions (identify -> Lead, group -> Account), used when --actions_config is not given."""
    return replace(parse_actions(default_actions_text(), DEFAULTS_NAME), is_default=True)


def parse_actions(text: str, path: str = "<string>") -> ActionsConfig:
    """Parses and checks an actions file's text; ActionsConfigError with every problem found."""
    doc = _Document.load(text, path)
    problems = _Problems(path)
    bad = _schema_problems(doc, problems)
    actions = doc.data.get("actions") if isinstance(doc.data, dict) else None
    _duplicate_problems(doc, actions if isinstance(actions, list) else [], problems)
    if "file" not in bad and isinstance(actions, list):
        for i, action in enumerate(actions):
            if i not in bad:
                _action_problems(doc, i, action, problems)
    if problems:
        raise ActionsConfigError(problems.sorted())
    built = tuple(_build(doc, i, a) for i, a in enumerate(actions))
    shared = list(_shared_idempotency(built, path))
    if shared:
        raise ActionsConfigError(shared)
    return ActionsConfig(built, path)


def _shared_idempotency(actions: tuple[Action, ...], path: str) -> Iterator[str]:
    """Creates of one trigger that key the same object's records by the same field: both would hold the
    event's messageId there, so the second would update the first's record instead of making its own."""
    first: dict[tuple, Action] = {}
    for action in actions:
        if action.operation != "create" or action.idempotency_field is None:
            continue
        key = (action.event_type, action.event, action.object.lower(), action.idempotency_field.lower())
        if key not in first:
            first[key] = action
            continue
        other = first[key]
        yield format_problem(
            path,
            action.line_of("idempotency_field"),
            f"action '{other.name}' (line {other.line}) also creates {action.object} records for this "
            f"trigger keyed by the event's messageId in {action.idempotency_field}: the two would write one "
            "record",
            "give each action its own idempotency_field",
            action.name,
            action.idempotency_field,
        )


# --- the YAML, with the line of every node -------------------------------------------------------------


@dataclass
class _Document:
    """The file's data, and the 1-based line of each key and value by its path (("actions", 0, "name"))."""

    data: Any
    key_lines: dict[tuple, int]
    value_lines: dict[tuple, int]
    keys: dict[tuple, list[tuple[Any, int]]]  # mapping path -> its keys in file order, repeats included
    _walked: set[int] = dc_field(default_factory=set)  # ids of the nodes seen: a second visit is an alias
    _nodes: int = 0

    @classmethod
    def load(cls, text: str, path: str) -> "_Document":
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ActionsConfigError(
                    [f"{path}:1: the file is empty; start from the output of --print_default_actions"]
                )
            doc = cls(None, {}, {}, {})
            doc._walk(loader, node, (), [], path)
            doc.data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ActionsConfigError([_yaml_problem(exc, text, path)]) from None
        except RecursionError:  # nesting deep enough to exhaust the YAML reader's own recursion
            raise ActionsConfigError(
                [format_problem(path, 1, "the file nests its values too deeply to be read", _NESTING_FIX)]
            ) from None
        finally:
            loader.dispose()
        return doc

    def _walk(
        self, loader: yaml.SafeLoader, node: yaml.Node, at: tuple, stack: list, path: str, alias_line: int = 0
    ) -> None:
        """Records the lines under `node`; under an alias (a node seen before), the alias's line."""
        if any(node is n for n in stack):
            self._fail(
                path, node, "an alias refers to a node that contains it", "write the value out instead"
            )
        if len(at) > MAX_DEPTH:
            self._fail(path, node, f"values are nested more than {MAX_DEPTH} levels deep", _NESTING_FIX)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            self._fail(
                path,
                node,
                f"the file holds more than {MAX_NODES} values (an alias counts its values each time it is "
                "used)",
                "keep it to the actions the run needs, and do not nest aliases in aliases",
            )
        if not alias_line and id(node) in self._walked:
            alias_line = self.key_lines.get(at) or self.value_lines.get(at) or node.start_mark.line + 1
        self._walked.add(id(node))
        self.value_lines.setdefault(at, alias_line or node.start_mark.line + 1)
        stack.append(node)
        if isinstance(node, yaml.MappingNode):
            keys = self.keys.setdefault(at, [])
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue  # merged keys keep the merge's line; non-text keys fail the schema
                key = loader.construct_object(key_node)
                line = alias_line or key_node.start_mark.line + 1
                if any(k == key for k, _ in keys):
                    self._forget(at + (key,))  # a repeated key: its last value counts
                keys.append((key, line))
                self.key_lines[at + (key,)] = line
                self._walk(loader, value_node, at + (key,), stack, path, alias_line)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(loader, item, at + (i,), stack, path, alias_line)
        stack.pop()

    def _forget(self, at: tuple) -> None:
        """Drops what was recorded under `at` (a key's earlier value), so that only its last value counts."""
        n = len(at)
        for table in (self.key_lines, self.value_lines, self.keys):
            for path in [p for p in table if p[:n] == at]:
                del table[path]

    @staticmethod
    def _fail(path: str, node: yaml.Node, problem: str, fix: str) -> NoReturn:
        raise ActionsConfigError([format_problem(path, node.start_mark.line + 1, problem, fix)])

    def line(self, at: tuple) -> int:
        """The line of the key at `at`, else of its value, else of the nearest enclosing node."""
        while at:
            line = self.key_lines.get(at) or self.value_lines.get(at)
            if line:
                return line
            at = at[:-1]
        return self.value_lines.get((), 1)


def _yaml_problem(exc: yaml.YAMLError, text: str, path: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        line = mark.line + 1
    else:
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 1
    context = getattr(exc, "context", None)
    problem = getattr(exc, "problem", None) or str(exc)
    what = f"{context}, {problem}" if context else problem
    if isinstance(exc, yaml.constructor.ConstructorError):
        fix = "write plain text, numbers, lists and mappings there (no tags, no lists as keys)"
    else:
        fix = "fix the indentation, colons or quotes there"
    return format_problem(path, line, f"the file is not valid YAML ({what})", fix)


# --- problems ---------------------------------------------------------------------------------------------


class _Problems:
    """Messages of one file, kept with their lines (the report is in line order) and without repeats."""

    def __init__(self, path: str):
        self.path = path
        self._items: list[tuple[int, str]] = []
        self._seen: set[str] = set()

    def add(self, line: int, problem: str, fix: str, action: str | None = None, field: Any = None) -> None:
        text = format_problem(self.path, line, problem, fix, action, None if field is None else str(field))
        if text not in self._seen:
            self._seen.add(text)
            self._items.append((line, text))

    def __bool__(self) -> bool:
        return bool(self._items)

    def sorted(self) -> list[str]:
        return [text for _, text in sorted(self._items, key=lambda item: item[0])]


def _label(actions: Any, i: int) -> str:
    """How messages name action `i`: its name, or #<position> when it has none."""
    action = actions[i] if isinstance(actions, list) and i < len(actions) else None
    name = action.get("name") if isinstance(action, dict) else None
    return name if isinstance(name, str) and name else f"#{i + 1}"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    kinds = {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }
    return kinds.get(type(value), f"a {type(value).__name__}")


def _unknown_key_fix(key: Any, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), allowed, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "use one of: " + ", ".join(allowed)


def _schema_problems(doc: _Document, problems: _Problems) -> set:
    """Adds a message per schema error; returns the failing actions' indexes ("file": the file's keys)."""
    bad: set = set()
    actions = doc.data.get("actions") if isinstance(doc.data, dict) else None
    for error in _validator().iter_errors(doc.data):
        at = tuple(error.absolute_path)
        if len(at) < 2 or at[0] != "actions":
            if at == ("actions",) or not isinstance(doc.data, dict):
                bad.add("file")  # no list of actions to check further
            _file_error(doc, at, error, problems)
        else:
            bad.add(at[1])
            _action_error(doc, at, error, _label(actions, at[1]), problems)
    return bad


def _file_error(doc: _Document, at: tuple, error: ValidationError, problems: _Problems) -> None:
    v = error.instance
    if at == ():
        if error.validator == "type":
            problems.add(
                1,
                f"the file holds {_kind(v)}, not a mapping with the keys version and actions",
                "start from the output of --print_default_actions",
            )
        elif error.validator == "required":
            if "version" not in v:
                problems.add(doc.line(()), "missing key 'version'", "add version: 1 at the top")
            if "actions" not in v:
                problems.add(
                    doc.line(()),
                    "missing key 'actions'",
                    "add actions: with a list of actions, one a '-' item",
                )
        elif error.validator == "additionalProperties":
            for key in v:
                if key not in ("version", "actions"):
                    problems.add(
                        doc.line((key,)),
                        f"unknown key {key!r}",
                        _unknown_key_fix(key, ["actions", "version"]),
                    )
        else:
            problems.add(1, error.message, "see schemas/actions.schema.json")
    elif at == ("version",):
        problems.add(doc.line(at), f"version must be 1, not {v!r}", "set version: 1")
    elif at == ("actions",) and error.validator == "minItems":
        problems.add(
            doc.line(at), "actions is empty", "add at least one action (see --print_default_actions)"
        )
    elif at == ("actions",):
        problems.add(
            doc.line(at),
            f"actions must be a list of actions, not {_kind(v)}",
            "write each action as a '-' item under actions:",
        )
    else:
        problems.add(
            doc.line(at), f"{'.'.join(map(str, at))}: {error.message}", "see schemas/actions.schema.json"
        )


def _action_error(doc: _Document, at: tuple, error: ValidationError, label: str, problems: _Problems) -> None:
    """One schema error inside action at[1], in the words of the file's format."""
    action = doc.data["actions"][at[1]]
    v = error.instance

    def add(problem: str, fix: str, line_at: tuple = at, field: Any = None) -> None:
        problems.add(doc.line(line_at), problem, fix, label, field)

    if len(at) == 2:
        if error.validator == "type":
            add(
                f"the action is {_kind(v)}, not a mapping", "write its keys: name, trigger, object, operation"
            )
        elif error.validator == "required":
            for key in _REQUIRED_FIXES:
                if key not in v:
                    add(f"missing key {key!r}", _REQUIRED_FIXES[key])
        elif error.validator == "additionalProperties":
            for key in v:
                if key not in _ACTION_KEYS:
                    add(f"unknown key {key!r}", _unknown_key_fix(key, _ACTION_KEYS), at + (key,))
        else:
            add(error.message, "see schemas/actions.schema.json")
        return
    key = at[2]
    value = action[key]
    if key == "name":
        add(f"name {value!r} is not a valid action name", _NAME_FIX)
    elif key == "trigger":
        track = value.get("track") if isinstance(value, dict) else None
        if isinstance(value, dict) and list(value) == ["track"] and not isinstance(track, str):
            add(f"the track event name {track!r} is not text", "quote it, e.g. trigger: {track: 'Order 66'}")
        else:
            add(
                f"trigger {value!r} is not identify, group or {{track: <event name>}}",
                "e.g. trigger: identify, or trigger: {track: Order Completed}",
                at[:3],
            )
    elif key == "object":
        add(f"object {value!r} is not an sObject API name", "use the API name, e.g. Case or Invoice__c")
    elif key in ("operation", "on_multiple", "preset"):
        options = {"operation": OPERATIONS, "on_multiple": ON_MULTIPLE, "preset": tuple(PRESETS)}[key]
        add(f"unknown {key} {value!r}", "use one of: " + ", ".join(options))
    elif key == "idempotency_field":
        add(
            f"idempotency_field {value!r} is not a field API name",
            "name an External ID field, e.g. Beamforce_Message_Id__c",
        )
    elif key in _SECTIONS:
        _section_error(at, error, value, add)
    elif key == "read_fields":
        if len(at) == 3 and error.validator == "minItems":
            add("read_fields is empty", "list the fields to read, e.g. read_fields: [Id, Status]")
        elif len(at) == 3:
            add(
                f"read_fields must be a list of field names, not {_kind(value)}",
                "e.g. read_fields: [Id, Status]",
            )
        elif isinstance(value[at[3]], str):
            add("not a field API name", _FIELD_NAME_FIX, field=value[at[3]])
        else:
            add(f"read_fields item {value[at[3]]!r} is not a field name", _FIELD_NAME_FIX)
    else:
        add(f"{'.'.join(map(str, at[2:]))}: {error.message}", "see schemas/actions.schema.json")


def _section_error(at: tuple, error: ValidationError, value: Any, add) -> None:
    key = at[2]
    example = _SECTION_EXAMPLES[key]
    if len(at) == 3:
        if "propertyNames" in error.schema_path:
            add("not a field API name", _FIELD_NAME_FIX, at + (error.instance,), field=error.instance)
        elif error.validator == "minProperties":
            add(f"{key} has no rules", f"add at least one, e.g. {example}")
        else:
            target = "value" if key == "create_defaults" else "source"
            add(
                f"{key} must be a mapping of Salesforce field to {target}, not {_kind(value)}",
                f"e.g. {example}",
            )
        return
    name, source = at[3], value[at[3]]
    if key == "create_defaults":
        add(f"create default {source!r} is not text, a number or true/false", _SCALAR_FIX, at[:4], name)
    elif isinstance(source, dict) and list(source) == ["literal"]:
        add(f"literal {source['literal']!r} is not text, a number or true/false", _SCALAR_FIX, at[:4], name)
    else:
        add(
            f"source {source!r} is not an event path, a list of paths or {{literal: <value>}}",
            "e.g. properties.title, [properties.title, properties.name] or {literal: Web}",
            at[:4],
            name,
        )


@cache
def _validator() -> Draft202012Validator:
    text = resources.files("schemas").joinpath("actions.schema.json").read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text))


# --- the rules the schema cannot express -------------------------------------------------------------------


def _duplicate_problems(doc: _Document, actions: list, problems: _Problems) -> None:
    """Names used twice, keys repeated in one mapping, fields named twice in one section (any case)."""
    first: dict[str, int] = {}
    for i, action in enumerate(actions):
        name = action.get("name") if isinstance(action, dict) else None
        if not isinstance(name, str):
            continue
        at = ("actions", i, "name")
        if name in first:
            problems.add(
                doc.line(at),
                f"the name is also used by the action on line {first[name]}",
                "give each action its own name",
                name,
            )
        else:
            first[name] = doc.line(("actions", i))
    for at, keys in doc.keys.items():
        section = len(at) == 3 and at[0] == "actions" and at[2] in _SECTIONS
        label = (
            _label(actions, at[1]) if len(at) >= 2 and at[0] == "actions" and isinstance(at[1], int) else None
        )
        seen: dict[str, int] = {}
        for key, line in keys:
            norm = str(key).lower() if section else key
            if norm not in seen:
                seen[norm] = line
            elif section:
                problems.add(
                    line,
                    f"named twice in {at[2]} (also on line {seen[norm]})",
                    "keep one: Salesforce field names ignore case",
                    label,
                    key,
                )
            else:
                problems.add(
                    line, f"key {key!r} appears twice (also on line {seen[norm]})", "keep one", label
                )
    for i, action in enumerate(actions):
        read_fields = action.get("read_fields") if isinstance(action, dict) else None
        if not isinstance(read_fields, list):
            continue
        seen = {}
        for j, name in enumerate(read_fields):
            line = doc.line(("actions", i, "read_fields", j))
            if not isinstance(name, str):
                continue
            if name.lower() in seen:
                problems.add(
                    line,
                    f"named twice in read_fields (also on line {seen[name.lower()]})",
                    "keep one: Salesforce field names ignore case",
                    _label(actions, i),
                    name,
                )
            else:
                seen[name.lower()] = line


def _event_type(trigger: Any) -> tuple[str, str | None]:
    if isinstance(trigger, dict):
        return "track", trigger["track"]
    return trigger, None


def _sources(action: dict) -> Iterator[tuple[str, str, list[str]]]:
    """(section, Salesforce field, paths) of every match and fields rule."""
    for section in ("match", "fields"):
        for name, source in (action.get(section) or {}).items():
            if isinstance(source, str):
                yield section, name, [source]
            elif isinstance(source, list):
                yield section, name, source


def _action_problems(doc: _Document, i: int, a: dict, problems: _Problems) -> None:
    """The checks of one schema-valid action that the schema cannot make."""
    name = a["name"]
    op = a["operation"]
    event_type, event = _event_type(a["trigger"])
    base = ("actions", i)

    def add(key: str | tuple, problem: str, fix: str, field: str | None = None) -> None:
        at = base + (key if isinstance(key, tuple) else (key,))
        problems.add(doc.line(at), problem, fix, name, field)

    if event is not None and not event.strip():
        add(
            "trigger",
            "the track event name is empty",
            "write it as Segment sends it, e.g. {track: Order Completed}",
        )
    roots = roots_for(event_type)
    use_roots = "use one of: " + ", ".join(sorted(roots))
    example = "properties.title" if event_type == "track" else "traits.email"
    article = "an" if event_type[0] in "aeiou" else "a"
    for section, field, paths in _sources(a):
        for path in paths:
            problem = check_path(path)
            if problem is not None:
                if problem.endswith("does not start with an event key"):
                    fix = use_roots
                else:
                    fix = f"write event keys joined by single dots, e.g. {example}"
                add((section, field), problem, fix, field)
            elif path.split(".", 1)[0] not in roots:
                add(
                    (section, field),
                    f"path {path!r} can never be set on {article} {event_type} event",
                    use_roots,
                    field,
                )
    for section in _SECTIONS:
        for field, value in (a.get(section) or {}).items():
            literal = value.get("literal") if isinstance(value, dict) else value
            if section != "create_defaults" and not isinstance(value, dict):
                continue
            if isinstance(literal, float) and not math.isfinite(literal):
                add(
                    (section, field),
                    f"literal {literal!r} is not a finite number, which Salesforce cannot store",
                    "give a number, or quote it to write it as text",
                    field,
                )
    verb = _VERBS.get(op)
    if op == "create" and "match" in a:
        add(
            "match",
            "operation create takes no match",
            "remove match: a create always makes a new record (use upsert to update a matching one)",
        )
    if verb is not None and "match" not in a:
        add(
            "operation",
            f"operation {op} needs match",
            f"add match rules saying which records to {verb}, e.g. {_SECTION_EXAMPLES['match']}",
        )
    if op in ("read", "delete") and "fields" in a:
        fix = "remove fields (read_fields lists the fields to read)" if op == "read" else "remove fields"
        add("fields", f"operation {op} writes no fields", fix)
    if op == "read" and "read_fields" not in a:
        add(
            "operation",
            "operation read needs read_fields",
            "add read_fields: [Id, ...] listing the fields to read",
        )
    if op != "read" and "read_fields" in a:
        add("read_fields", "read_fields only applies to operation read", "remove read_fields")
    if op != "create" and "idempotency_field" in a:
        add(
            "idempotency_field",
            "idempotency_field only applies to operation create",
            f"remove it: a retried {op} finds its records by match",
        )
    key_field = a.get("idempotency_field")
    if op == "create" and isinstance(key_field, str):
        for section in ("fields", "create_defaults"):
            mapped = a.get(section)
            if isinstance(mapped, dict) and any(str(k).lower() == key_field.lower() for k in mapped):
                add(
                    "idempotency_field",
                    f"{key_field} is the idempotency_field, which the writer fills with the event's "
                    f"messageId, and {section} also sets it",
                    f"remove {key_field} from {section}, or name another idempotency_field",
                )
    if op not in ("create", "upsert") and "create_defaults" in a:
        add(
            "create_defaults",
            "create_defaults only applies to operations create and upsert",
            f"remove create_defaults: operation {op} never creates a record",
        )
    if op == "create" and "on_multiple" in a:
        add(
            "on_multiple",
            "on_multiple does not apply to operation create",
            "remove on_multiple: a create matches no records",
        )
    preset = a.get("preset")
    if preset is not None:
        obj, trigger = PRESETS[preset]
        if a["object"].lower() != obj.lower() or event_type != trigger:
            this = event_type if event_type != "track" else f"track {event!r}"
            add(
                "preset",
                f"preset {preset} maps {trigger} events to {obj}, not {this} to {a['object']}",
                f"use object: {obj} and trigger: {trigger}, or remove preset",
            )
        if op in ("read", "delete"):
            add("preset", f"preset {preset} writes fields, which operation {op} does not", "remove preset")


def _build(doc: _Document, i: int, a: dict) -> Action:
    event_type, event = _event_type(a["trigger"])
    lines: list[tuple[str, int]] = []

    def rules(section: str) -> tuple[tuple[str, Source], ...]:
        out = []
        for name, source in (a.get(section) or {}).items():
            lines.append((f"{section}.{name}", doc.line(("actions", i, section, name))))
            if isinstance(source, dict):
                out.append((name, Source(literal=source["literal"])))
            else:
                out.append((name, Source(tuple(source) if isinstance(source, list) else (source,))))
        return tuple(out)

    match = rules("match")
    fields = rules("fields")
    create_defaults = tuple((a.get("create_defaults") or {}).items())
    for name in a.get("create_defaults") or {}:
        lines.append((f"create_defaults.{name}", doc.line(("actions", i, "create_defaults", name))))
    read_fields = tuple(a.get("read_fields") or ())
    for j, name in enumerate(read_fields):
        lines.append((f"read_fields.{name}", doc.line(("actions", i, "read_fields", j))))
    if "idempotency_field" in a:
        lines.append(("idempotency_field", doc.line(("actions", i, "idempotency_field"))))
    return Action(
        name=a["name"],
        event_type=event_type,
        event=event,
        object=a["object"],
        operation=a["operation"],
        match=match,
        fields=fields,
        create_defaults=create_defaults,
        on_multiple=a.get("on_multiple", "update_latest"),
        idempotency_field=a.get("idempotency_field"),
        read_fields=read_fields,
        preset=a.get("preset"),
        line=doc.line(("actions", i)),
        lines=tuple(lines),
    )
