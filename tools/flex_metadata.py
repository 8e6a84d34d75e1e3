"""Generates the Dataflow Flex Template's metadata.json from the pipeline's own PipelineOptions classes.

    python -m tools.flex_metadata             rewrite deploy/flex-template/metadata.json
    python -m tools.flex_metadata --check     exit 1, naming each option missing or stale, when it is not
                                              what this would write (the suite runs the same check)

The options are found, not listed: every PipelineOptions subclass defined under pipeline/, transforms/ or
salesforce/ gives one template parameter per flag, described by its own help. Secrets are never template
parameters (Dataflow shows parameters in the job's page): an option whose name says password, secret or
token must name where the secret is (a file, an environment variable, a Secret Manager version).

The same module turns a template's parameters back into the pipeline's flags (launcher_argv), so that
what metadata.json promises (true/false for flags, several values separated by ';') is what runs.
"""

import argparse
import ast
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

PACKAGES = ("pipeline", "transforms", "salesforce")
METADATA_PATH = Path(__file__).resolve().parent.parent / "deploy" / "flex-template" / "metadata.json"
REGENERATE = "python -m tools.flex_metadata"
TEMPLATE = {
    "name": "beamforce",
    "description": "Segment identify and group events (files, Segment archives, Pub/Sub or Kafka) written to "
    "Salesforce as Leads and Accounts, with dead letters for what could not be delivered. Salesforce "
    "credentials are never parameters: workers read them from their environment, a file or Secret Manager.",
    # Streaming sources (Pub/Sub, Kafka) make the job a streaming one; a write is a lookup then an upsert
    # by key and a messageId seen again is dropped, so a redelivered event never duplicates a record.
    "streaming": True,
    "supportsAtLeastOnce": True,
    "supportsExactlyOnce": True,
}
# Words that make a parameter name look like a secret value. Such a parameter must be a reference: a
# file or an environment variable by its name's ending, else a Secret Manager version by its metavar
# (and then its value must look like one, so that a secret pasted in its place is refused at launch).
SECRET_WORDS = ("password", "secret", "token")
REFERENCE_SUFFIXES = ("_file", "_env", "_var")
REFERENCE_METAVAR = re.compile(r"^(REFERENCE|projects/[^/]+/secrets/.*)$")
SECRET_VERSION = r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$"
# In a template one parameter carries one string: a repeatable flag takes its values separated by this.
LIST_SEPARATOR = ";"
TRUE, FALSE = "true", "false"

# What a flag's metavar says of its value's shape: (regex, Dataflow parameter type).
_METAVAR_RULES: dict[str, tuple[str, str]] = {
    "projects/P/subscriptions/S": (r"^projects/[^/]+/subscriptions/[^/]+$", "PUBSUB_SUBSCRIPTION"),
    "projects/P/topics/T": (r"^projects/[^/]+/topics/[^/]+$", "PUBSUB_TOPIC"),
    "projects/P/secrets/S/versions/V": (SECRET_VERSION, "TEXT"),
    "YYYY-MM-DD": (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "TEXT"),
    "URL": (r"^https://\S+$", "TEXT"),
    "VERSION": (r"^[0-9]+\.0$", "TEXT"),
}
_POSITIVE_INT = r"^[1-9][0-9]*$"
_NATURAL = r"^[0-9]+$"
_INTEGER = r"^-?[0-9]+$"
_NUMBER = r"^[0-9]+(\.[0-9]+)?$"
_SIGNED_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
# Label words spelled as their owners spell them.
_WORDS = {
    "api": "API",
    "url": "URL",
    "ca": "CA",
    "id": "ID",
    "ttl": "TTL",
    "oauth": "OAuth",
    "jwt": "JWT",
    "pubsub": "Pub/Sub",
    "kafka": "Kafka",
    "salesforce": "Salesforce",
}


class SecretParameterError(ValueError):
    """An option would put a secret value among the template's parameters."""


def _module_names(package: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    names = []
    for root in spec.submodule_search_locations:
        for path in sorted(Path(root).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join((package, *parts)))
    return names


def _defines_options(path: Path) -> bool:
    """Whether a module defines a class on PipelineOptions (read, not imported: most modules need not be)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if name.endswith("Options"):
                    return True
    return False


def option_classes(packages: Sequence[str] = PACKAGES) -> list[type]:
    """The project's PipelineOptions subclasses, in module then definition order."""
    for package in packages:
        for name in _module_names(package):
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.origin and _defines_options(Path(spec.origin)):
                importlib.import_module(name)
    found: list[type] = []
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        if (
            cls.__module__.split(".")[0] in packages
            and "_add_argparse_args" in vars(cls)
            and cls not in found
        ):
            found.append(cls)
    order = {name: i for i, name in enumerate(n for p in packages for n in _module_names(p))}

    def line(cls: type) -> int:
        code = getattr(vars(cls)["_add_argparse_args"], "__func__", None)
        return code.__code__.co_firstlineno if code else 0

    return sorted(found, key=lambda c: (order.get(c.__module__, len(order)), line(c)))


def _actions(classes: Iterable[type]) -> list[tuple[type, argparse.Action]]:
    actions: list[tuple[type, argparse.Action]] = []
    seen: dict[str, type] = {}
    for cls in classes:
        parser = argparse.ArgumentParser(add_help=False)
        cls._add_argparse_args(parser)
        for action in parser._actions:
            name = _name(action)
            if name in seen:
                raise ValueError(
                    f"--{name} is defined by both {seen[name].__qualname__} and {cls.__qualname__}"
                )
            seen[name] = cls
            actions.append((cls, action))
    return actions


def _name(action: argparse.Action) -> str:
    longs = [s for s in action.option_strings if s.startswith("--")]
    return (longs[0] if longs else action.option_strings[0]).lstrip("-")


def _label(name: str) -> str:
    words = [_WORDS.get(w, w) for w in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    # argparse's own expansion: %(default)s and friends, and %% for a percent sign.
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params["prog"] = "beamforce"
    text = text % params
    return " ".join(text.split())


def _is_flag(action: argparse.Action) -> bool:
    return isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)


def _is_list(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction)


def _accepts(kind: Any, text: str) -> bool:
    try:
        kind(text)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return False
    return True


def _number_regex(kind: Any) -> str | None:
    """The regex of a numeric flag's values, found by asking its type (int, float, or the project's own
    checked converters) what it accepts; None for a flag that is not a number."""
    if kind is None or kind is str or not callable(kind):
        return None
    try:
        one = kind("1")
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return None
    if isinstance(one, bool) or not isinstance(one, int | float):
        return None
    if isinstance(one, int):
        return _INTEGER if _accepts(kind, "-1") else _NATURAL if _accepts(kind, "0") else _POSITIVE_INT
    return _SIGNED_NUMBER if _accepts(kind, "-1") else _NUMBER


def is_secret_reference(name: str, metavar: str | None) -> bool:
    """Whether a parameter named like a secret names where the secret is rather than holding it."""
    return name.endswith(REFERENCE_SUFFIXES) or bool(REFERENCE_METAVAR.match(metavar or ""))


def looks_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def _parameter(cls: type, action: argparse.Action) -> dict[str, Any]:
    name = _name(action)
    metavar = action.metavar if isinstance(action.metavar, str) else None
    if looks_secret(name) and not is_secret_reference(name, metavar):
        raise SecretParameterError(
            f"--{name} ({cls.__qualname__}) looks like a secret value: secrets must never be template "
            "parameters (Dataflow shows them on the job's page). Read it from the environment, a file "
            "(name the option ..._file) or a Secret Manager version (metavar REFERENCE)"
        )
    help_text = _help(action)
    if not help_text:
        raise ValueError(f"--{name} ({cls.__qualname__}) has no help: describe it with help=")
    parameter: dict[str, Any] = {
        "name": name,
        "label": _label(name),
        "helpText": help_text,
        "isOptional": not action.required,
    }
    if _is_flag(action):
        parameter["helpText"] += f" In a template: {TRUE} or {FALSE}."
        parameter["paramType"] = "BOOLEAN"
        parameter["regexes"] = [f"^({TRUE}|{FALSE})$"]
    elif action.choices is not None:
        choices = [str(c) for c in action.choices]
        parameter["paramType"] = "ENUM"
        parameter["enumOptions"] = [{"value": c, "label": c} for c in choices]
        parameter["regexes"] = ["^(" + "|".join(re.escape(c) for c in choices) + ")$"]
    elif metavar in _METAVAR_RULES:
        regex, param_type = _METAVAR_RULES[metavar]
        parameter["paramType"] = param_type
        parameter["regexes"] = [regex]
    elif (number := _number_regex(action.type)) is not None:
        parameter["paramType"] = "NUMBER"
        parameter["regexes"] = [number]
    else:
        parameter["paramType"] = "TEXT"
    if looks_secret(name) and not name.endswith(REFERENCE_SUFFIXES):
        parameter["paramType"] = "TEXT"
        parameter["regexes"] = [SECRET_VERSION]
    if _is_list(action):
        parameter["helpText"] += f" In a template: several values separated by '{LIST_SEPARATOR}'."
        parameter.pop("regexes", None)
    return parameter


def generate(classes: Iterable[type] | None = None) -> dict[str, Any]:
    """The metadata.json document for these option classes (default: the project's)."""
    found = option_classes() if classes is None else list(classes)
    return {**TEMPLATE, "parameters": [_parameter(cls, a) for cls, a in _actions(found)]}


def render(metadata: Mapping[str, Any]) -> str:
    return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"


def differences(committed: Mapping[str, Any], generated: Mapping[str, Any]) -> list[str]:
    """What in the committed metadata is not what would be generated, one line per option or field."""
    problems = []
    old = {p.get("name"): p for p in committed.get("parameters", ())}
    new = {p["name"]: p for p in generated["parameters"]}
    for name in new:
        if name not in old:
            problems.append(f"missing: --{name} is a pipeline option but not a template parameter")
        elif old[name] != new[name]:
            fields = sorted(
                k for k in old[name].keys() | new[name].keys() if old[name].get(k) != new[name].get(k)
            )
            problems.append(f"stale: --{name} differs from its option in {', '.join(fields)}")
    for name in old:
        if name not in new:
            problems.append(f"stale: --{name} is a template parameter but no pipeline option")
    if not problems and list(old) != list(new):
        problems.append("stale: the parameters are not in the options' order")
    for key in sorted(committed.keys() | generated.keys()):
        if key != "parameters" and committed.get(key) != generated.get(key):
            problems.append(f"stale: the template's {key!r} differs")
    return problems


def launcher_argv(argv: Sequence[str], classes: Iterable[type] | None = None) -> list[str]:
    """The pipeline's flags for the arguments a Flex Template launcher gives (--name=value each):
    --flag=true gives the flag and --flag=false leaves it out; --list=a;b becomes --list=a --list=b.
    Anything else (Beam's own options, the runner's) passes unchanged."""
    actions = [a for _, a in _actions(option_classes() if classes is None else classes)]
    flags = {f"--{_name(a)}": a for a in actions if _is_flag(a)}
    lists = {f"--{_name(a)}" for a in actions if _is_list(a)}
    out: list[str] = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and key in flags:
            if value.strip().lower() not in (TRUE, FALSE):
                raise ValueError(f"{key} takes {TRUE} or {FALSE} in a template, not {value!r}")
            if value.strip().lower() == TRUE:
                out.append(key)
        elif eq and key in lists:
            out.extend(f"{key}={v.strip()}" for v in value.split(LIST_SEPARATOR) if v.strip())
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.flex_metadata",
        description="Write the Flex Template's metadata.json from the pipeline's options, or check it.",
    )
    parser.add_argument("--check", action="store_true", help="Only compare; exit 1 naming what differs.")
    parser.add_argument("--path", type=Path, default=METADATA_PATH, help=f"Default {METADATA_PATH}.")
    args = parser.parse_args(argv)
    try:
        generated = generate()
    except ValueError as e:
        print(f"flex_metadata: {e}", file=sys.stderr)
        return 2
    if not args.check:
        args.path.write_text(render(generated), encoding="utf-8")
        print(f"{len(generated['parameters'])} parameters written to {args.path}")
        return 0
    try:
        committed = json.loads(args.path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"flex_metadata: {args.path} cannot be read ({e}); run: {REGENERATE}", file=sys.stderr)
        return 1
    problems = differences(committed, generated)
    if not problems and args.path.read_text(encoding="utf-8") != render(generated):
        problems.append("stale: the file's layout differs from the generated one")
    for problem in problems:
        print(f"{args.path}: {problem}", file=sys.stderr)
    if problems:
        print(f"Regenerate it with: {REGENERATE} (and commit {args.path.name})", file=sys.stderr)
        return 1
    print(f"{args.path}: up to date ({len(generated['parameters'])} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
