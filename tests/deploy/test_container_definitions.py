"""The image definitions, checked where no image can be built: Dockerfile syntax and structure, pinned bases,
sources that exist, the production extras only, and the Cloud Build and launch scripts that use them."""

import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
WORKER = DEPLOY / "container" / "Dockerfile"
TEMPLATE = DEPLOY / "flex-template" / "Dockerfile"
# Every instruction Docker's reference defines.
INSTRUCTIONS = {
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NOT_IN_PRODUCTION = ("emulator", "tests", "bench", "examples")


def parse(path: Path) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) as Docker's parser reads them: parser directives and comments
    dropped, a trailing backslash joining lines (comment lines inside a continuation are skipped)."""
    result: list[tuple[int, str, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    directives = True
    pending, start = "", 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if directives and re.match(r"^#\s*\w+\s*=", stripped):
            continue
        directives = False
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        word, _, args = text.partition(" ")
        result.append((start, word, args.strip()))
    assert not pending, f"{path}: the last instruction ends in a line continuation"
    return result


def substitute(text: str, args: dict[str, str]) -> str:
    def value(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        assert name in args, f"${name} has no default"
        return args[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def arg_defaults(instructions) -> dict[str, str]:
    defaults = {}
    for _, word, args in instructions:
        if word == "ARG" and "=" in args:
            name, _, default = args.partition("=")
            defaults[name] = default
    return defaults


def base_image(instructions) -> str:
    before_from = []
    for _, word, args in instructions:
        if word == "FROM":
            return substitute(args.split()[0], arg_defaults(before_from))
        before_from.append((0, word, args))
    raise AssertionError("no FROM")


def copies(instructions) -> list[tuple[list[str], str]]:
    out = []
    for _, word, args in instructions:
        if word in ("COPY", "ADD"):
            tokens = [t for t in shlex.split(args) if not t.startswith("--")]
            if not args.startswith("--from"):
                out.append((tokens[:-1], tokens[-1]))
    return out


def pip_installs(instructions) -> list[str]:
    return [args for _, word, args in instructions if word == "RUN" and "pip install" in args]


@pytest.mark.parametrize("path", [WORKER, TEMPLATE], ids=["worker", "template"])
def test_dockerfile_syntax(path):
    instructions = parse(path)
    assert instructions, path
    for line, word, args in instructions:
        assert word in INSTRUCTIONS, f"{path.name}:{line}: unknown instruction {word!r}"
        assert args, f"{path.name}:{line}: {word} without arguments"
        if word in ("ENTRYPOINT", "CMD") and args.startswith("["):
            assert isinstance(json.loads(args), list), f"{path.name}:{line}: {word} is not a JSON array"
    words = [w for _, w, _ in instructions]
    assert set(words[: words.index("FROM")]) <= {"ARG"}, "only ARG may come before FROM"
    assert words.count("FROM") == 1


@pytest.mark.parametrize("path", [WORKER, TEMPLATE], ids=["worker", "template"])
def test_base_images_are_pinned(path):
    image = base_image(parse(path))
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{image} has no tag"
    assert tag != "latest"


def test_worker_image_is_beams_python_311_sdk_at_the_projects_beam_version():
    instructions = parse(WORKER)
    assert base_image(instructions) == "apache/beam_python3.11_sdk:2.77.0"
    beam = next(Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("apache-beam"))
    assert beam.specifier.contains(arg_defaults(instructions)["BEAM_VERSION"])
    assert ("ENTRYPOINT", '["/opt/apache/beam/boot"]') in [(w, a) for _, w, a in instructions]


def test_template_image_is_googles_python_311_launcher_with_the_same_beam():
    instructions = parse(TEMPLATE)
    image = base_image(instructions)
    assert re.fullmatch(
        r"gcr\.io/dataflow-templates-base/python311-template-launcher-base:\d{8}_RC\d{2}", image
    ), image
    assert arg_defaults(instructions)["BEAM_VERSION"] == arg_defaults(parse(WORKER))["BEAM_VERSION"]
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains("3.11")


@pytest.mark.parametrize("path", [WORKER, TEMPLATE], ids=["worker", "template"])
def test_copied_sources_exist_and_are_the_production_packages(path):
    sources = [s for srcs, _ in copies(parse(path)) for s in srcs]
    for source in sources:
        assert (ROOT / source).exists(), f"{path.name} copies {source}, which is not in the repository"
        assert source not in (".", "./") and source.split("/")[0] not in NOT_IN_PRODUCTION, source
    packaged = [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"]} | {p for p in packaged if p != "emulator"}
    assert needed <= set(sources), f"{path.name} does not copy {sorted(needed - set(sources))}"


@pytest.mark.parametrize("path", [WORKER, TEMPLATE], ids=["worker", "template"])
def test_images_install_the_production_extras_only(path):
    instructions = parse(path)
    extras = arg_defaults(instructions)["EXTRAS"].split(",")
    assert extras == ["gcp", "kafka", "pubsub", "secretmanager"]
    assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"])
    (install,) = pip_installs(instructions)
    assert "[${EXTRAS}]" in install and '"apache-beam[gcp]==${BEAM_VERSION}"' in install
    assert not re.search(r"\b(emulator|test|demo)\b", substitute(install, arg_defaults(instructions)))
    assert "beamforce --help" in install


def test_template_image_runs_the_entry_file_and_names_the_worker_image():
    instructions = parse(TEMPLATE)
    env = dict(a.split("=", 1) for _, w, a in instructions if w == "ENV")
    assert env["FLEX_TEMPLATE_PYTHON_PY_FILE"] == "/template/main.py"
    assert env["BEAMFORCE_WORKER_IMAGE"] == "${WORKER_IMAGE}"
    assert (
        "FLEX_TEMPLATE_PYTHON_SETUP_FILE" not in env and "FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE" not in env
    )
    workdir = next(a for _, w, a in instructions if w == "WORKDIR")
    targets = {os.path.normpath(os.path.join(workdir, dest)): srcs for srcs, dest in copies(instructions)}
    assert targets["/template/main.py"] == ["deploy/flex-template/main.py"]
    entry = (DEPLOY / "flex-template" / "main.py").read_text(encoding="utf-8")
    assert 'WORKER_IMAGE_VAR = "BEAMFORCE_WORKER_IMAGE"' in entry
    assert "from pipeline.main import submit" in entry
    # An empty WORKER_IMAGE must stop the build, not give workers without the package.
    assert any(w == "RUN" and a.startswith('test -n "${WORKER_IMAGE}"') for _, w, a in instructions)


def test_cloud_build_builds_both_images_from_their_dockerfiles():
    config = yaml.safe_load((DEPLOY / "flex-template" / "cloudbuild.yaml").read_text(encoding="utf-8"))
    steps = config["steps"]
    dockerfiles = [s["args"][s["args"].index("-f") + 1] for s in steps]
    assert dockerfiles == ["deploy/container/Dockerfile", "deploy/flex-template/Dockerfile"]
    assert all((ROOT / d).is_file() for d in dockerfiles)
    assert all(s["name"] == "gcr.io/cloud-builders/docker" and s["args"][-1] == "." for s in steps)
    assert "WORKER_IMAGE=${_WORKER_IMAGE}" in steps[1]["args"]
    assert config["images"] == ["${_WORKER_IMAGE}", "${_TEMPLATE_IMAGE}"]


def test_upload_leaves_out_what_images_do_not_use_and_keeps_what_they_copy():
    ignored = {
        line.strip().rstrip("/")
        for line in (DEPLOY / ".gcloudignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "emulator"} <= ignored
    for path in (WORKER, TEMPLATE):
        for sources, _ in copies(parse(path)):
            for source in sources:
                assert source.split("/")[0] not in ignored, f"{source} is copied but not uploaded"


def test_build_and_launch_script():
    script = DEPLOY / "flex-template" / "build_and_launch.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, timeout=30).returncode == 0
    text = script.read_text(encoding="utf-8")
    for path in re.findall(r"\bdeploy/[\w./-]+", text):
        assert (ROOT / path).exists(), f"build_and_launch.sh names {path}, which does not exist"
    assert "-m tools.flex_metadata --check" in text
    for command in (
        "gcloud builds submit",
        "gcloud dataflow flex-template build",
        "gcloud dataflow flex-template run",
    ):
        assert command in text
    # Without its variables it stops before any gcloud call, naming the one missing.
    done = subprocess.run(
        ["bash", str(script), "build"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert "PROJECT: set PROJECT to the Google Cloud project id" in done.stderr
