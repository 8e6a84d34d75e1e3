"""Installable: the beamforce command, the package data, and the local Salesforce's stack kept out of the
production install (an optional extra that tests, demos and ./run_local.sh install)."""

import ast
import fnmatch
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PRODUCTION_PACKAGES = ("pipeline", "transforms", "salesforce", "schemas", "tools")


def _names(requirements) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _imports(package: str) -> dict[str, list[str]]:
    """Top-level module -> the files of the package importing it (at any depth, lazy imports too)."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                found.setdefault(module.split(".")[0], []).append(str(path.relative_to(ROOT)))
    return found


def test_the_beamforce_command_is_python_m_pipeline():
    assert PYPROJECT["project"]["scripts"] == {"beamforce": "pipeline.__main__:main"}
    (entry,) = [
        e for e in importlib.metadata.distribution("beamforce").entry_points if e.group == "console_scripts"
    ]
    assert (entry.name, entry.value) == ("beamforce", "pipeline.__main__:main"), (
        "the installed beamforce is not this pyproject's: reinstall (./run_local.sh test does it)"
    )
    from pipeline.__main__ import main  # the collector's policy, then pipeline.main's main

    assert entry.load() is main


def test_beamforce_and_python_m_pipeline_print_the_same_help():
    script = Path(sys.executable).parent / "beamforce"
    assert script.is_file(), f"{script} is missing: reinstall the package (./run_local.sh test does it)"
    command = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    module = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert command.returncode == 0 and module.returncode == 0
    assert command.stdout.startswith("usage: beamforce ")
    assert module.stdout.startswith("usage: python -m pipeline ")
    # The usage lines wrap by the program's name; everything after them is the same.
    assert command.stdout.split("\n\n", 1)[1] == module.stdout.split("\n\n", 1)[1]
    assert "Failed to import" not in command.stderr + module.stderr
    assert "--salesforce_login_url URL" in command.stdout
    assert "--kafka_reader {python,xlang}" in command.stdout


def test_every_data_file_of_the_packages_is_package_data():
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package in PRODUCTION_PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT / package).as_posix()
            assert any(fnmatch.fnmatch(relative, g) for g in globs.get(package, ())), (
                f"{package}/{relative} is not in the wheel: add it to [tool.setuptools.package-data]"
            )
    assert "*.avsc" in globs["schemas"]


def test_the_emulator_stack_is_an_extra_and_production_code_does_not_import_it():
    base = _names(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    emulator_only = _names(extras["emulator"]) - base
    # (pyyaml is a base dependency: --actions_config files are YAML.)
    assert emulator_only == {"starlette", "uvicorn", "lark"}
    distributions = importlib.metadata.packages_distributions()
    for package in PRODUCTION_PACKAGES:
        for module, files in _imports(package).items():
            provided_by = {canonicalize_name(d) for d in distributions.get(module, ())}
            assert not provided_by & emulator_only, (
                f"{files[0]} imports {module}, which only the emulator extra installs: add "
                f"{sorted(provided_by & emulator_only)} to [project] dependencies"
            )
    # And the extra is what the local Salesforce needs: each of its distributions is imported there.
    emulator_imports = {canonicalize_name(d) for m in _imports("emulator") for d in distributions.get(m, ())}
    assert emulator_only <= emulator_imports


def test_tests_demos_and_the_local_run_get_the_emulator():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "beamforce[emulator]" in extras["test"]
    assert "beamforce[emulator]" in extras["demo"]
    script = (ROOT / "run_local.sh").read_text(encoding="utf-8")
    # The plain run starts the local Salesforce; `test` and `stream` install extras that include it.
    assert re.findall(r"^\s*ensure_venv (\S+)$", script, re.M) == ["test", "demo", "emulator"]


def test_setuptools_is_new_enough_for_the_license_expression():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    (setuptools,) = [
        Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")
    ]
    # PEP 639 license expressions: setuptools 77.0 and later.
    assert not setuptools.specifier.contains("76.1") and setuptools.specifier.contains("77.0")
