"""docs/modules.md, followed to the letter: every console command and every file change of the
tutorial, in order, from ``perron modules new`` to the built package installed on a fresh
deployment. If the page and Perron drift apart, this fails.

How the page is read (the page explains it to its readers too):

- ```` ```console ```` blocks: lines starting with ``$ `` are commands, run in a shell; the
  lines after a command are what its output must show, in order (``...`` stands for any text;
  a line that is only ``...`` stands for any lines). ``cd`` changes the folder of the commands
  that follow.
- A block whose first line is ``# file: <path>`` (``{# file: <path> #}`` in a template) is a
  change to that file, relative to the current folder: in a ``diff`` block, ``+`` lines are
  added, ``-`` lines removed, lines starting with a space must already be there (``@@``
  separates changes); any other such block is a whole new file, its first line left out.
- ``<!-- tutorial: not run (...) -->`` just before a block: shown, not run (a server, publishing).
- ``<!-- tutorial: deployment (...) -->`` just before a block: run in a fresh environment and
  database, where ``pip install`` installs from the ``dist/`` folder the tutorial built
  instead of from a package index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.test_scaffold import Sandbox, make_sandbox, uv_or_skip

DOC = ROOT / "docs" / "modules.md"
FILE_MARKER = re.compile(r"^(?:# file: (?P<python>\S+)|\{# file: (?P<template>\S+) #\})$")
DIRECTIVE = re.compile(r"^<!-- tutorial: (?P<what>not run|deployment)\b.*-->$")


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)
    deployment: bool = False


@dataclass
class Edit:
    path: str
    lines: list[str]
    diff: bool


Step = Command | Edit


def parse(text: str) -> list[Step]:
    steps: list[Step] = []
    lines = text.splitlines()
    index = 0
    directive = ""
    while index < len(lines):
        line = lines[index]
        if not line.startswith("```"):
            matched = DIRECTIVE.match(line.strip())
            if matched:
                directive = matched.group("what")
            elif line.strip():
                directive = ""
            index += 1
            continue
        kind = line[3:].strip()
        end = index + 1
        while not lines[end].startswith("```"):
            end += 1
        body = lines[index + 1 : end]
        index = end + 1
        if directive == "not run":
            directive = ""
            continue
        if kind == "console":
            for content in body:
                if content.startswith("$ "):
                    steps.append(Command(content[2:], deployment=directive == "deployment"))
                elif steps and isinstance(steps[-1], Command) and content.strip():
                    steps[-1].expected.append(content.strip())
        elif body and (marker := FILE_MARKER.match(body[0])):
            path = marker.group("python") or marker.group("template")
            steps.append(Edit(path, body[1:], diff=kind == "diff"))
        directive = ""
    return steps


def apply_diff(text: str, hunks_lines: list[str], where: str) -> str:
    """Apply the page's change: each hunk's context and removed lines must be in the file."""
    lines = text.split("\n")
    hunks: list[list[str]] = [[]]
    for line in hunks_lines:
        if line == "@@":
            hunks.append([])
        else:
            hunks[-1].append(line)
    for number, hunk in enumerate(hunks, 1):
        old: list[str] = []
        new: list[str] = []
        for line in hunk:
            sign, content = (line[:1], line[1:]) if line else (" ", "")
            if sign not in " +-":
                raise AssertionError(
                    f"{where}, change {number}: {line!r} starts with neither ' ', '+' nor '-'"
                )
            if sign in " -":
                old.append(content)
            if sign in " +":
                new.append(content)
        found = [
            start for start in range(len(lines) - len(old) + 1) if lines[start : start + len(old)] == old
        ]
        if len(found) != 1:
            problem = "is not in the file" if not found else f"is in the file {len(found)} times"
            raise AssertionError(
                f"{where}, change {number}: the text it changes {problem}:\n" + "\n".join(old)
            )
        start = found[0]
        lines[start : start + len(old)] = new
    return "\n".join(lines)


def expect(output: str, patterns: list[str], command: str) -> None:
    """Each pattern matches a whole line of the output, in order (``...``: any text)."""
    lines = [line.strip() for line in output.splitlines()]
    position = 0
    for pattern in patterns:
        if pattern == "...":
            continue
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("...")))
        for offset, line in enumerate(lines[position:]):
            if regex.fullmatch(line):
                position += offset + 1
                break
        else:
            raise AssertionError(f"`{command}` did not show {pattern!r} (in order). It said:\n{output}")


def test_the_change_blocks_refuse_a_file_that_does_not_match() -> None:
    text = "a\nb\nc\n"
    assert apply_diff(text, [" a", "-b", "+B", "+b2", " c"], "x") == "a\nB\nb2\nc\n"
    with pytest.raises(AssertionError, match="is not in the file"):
        apply_diff(text, [" a", "-z", "+Z"], "x")
    with pytest.raises(AssertionError, match="2 times"):
        apply_diff("a\na\n", ["-a", "+b"], "x")
    expect("one\n  two 2 passed in 1.2s\nthree", ["...", "...2 passed in ...", "three"], "x")
    with pytest.raises(AssertionError, match="did not show"):
        expect("one\ntwo", ["two", "one"], "x")


def test_the_tutorial_is_read_as_commands_and_changes_in_order() -> None:
    steps = parse(DOC.read_text(encoding="utf-8"))
    commands = [step.line for step in steps if isinstance(step, Command)]
    assert commands[0].startswith("perron modules new parking")
    order = ["perron db revision", "perron i18n extract", "perron i18n check", "uv build", "pip install"]
    positions = [next(i for i, line in enumerate(commands) if line.startswith(start)) for start in order]
    assert positions == sorted(positions)
    assert "perron serve" not in commands and "uv publish" not in commands  # shown, not run
    assert sum(isinstance(step, Edit) for step in steps) >= 10


@pytest.fixture
def uv() -> list[str]:
    return uv_or_skip()


@pytest.mark.slow
def test_the_module_tutorial_works_from_new_to_a_package_installed_on_a_deployment(
    tmp_path: Path, uv: list[str]
) -> None:
    developer = make_sandbox(tmp_path / "developer", uv)
    deployment: Sandbox | None = None
    deployment_folder = tmp_path / "deployment"
    folder = tmp_path / "work"
    folder.mkdir()
    built: Path | None = None

    for step in parse(DOC.read_text(encoding="utf-8")):
        if isinstance(step, Edit):
            target = folder / step.path
            where = f"docs/modules.md, the change to {step.path}"
            if step.diff:
                assert target.is_file(), f"{where}: there is no such file"
                target.write_text(apply_diff(target.read_text(encoding="utf-8"), step.lines, where))
            else:
                assert not target.exists(), f"{where}: it is shown as a new file, but it exists"
                target.write_text("\n".join(step.lines) + "\n", encoding="utf-8")
            continue
        if step.deployment:
            if deployment is None:
                assert built is not None, "the tutorial installs its package before building it"
                deployment_folder.mkdir()
                deployment = make_sandbox(deployment_folder, uv)
                pip = deployment.venv / "bin" / "pip"
                pip.write_text(
                    '#!/bin/sh\n[ "$1" = install ] || { echo "only pip install here" >&2; exit 2; }\n'
                    f'shift\nexec uv pip install --no-index --find-links "{built}" "$@"\n'
                )
                pip.chmod(0o755)
            result = deployment.run(step.line, deployment_folder)
        elif step.line.startswith("cd "):
            folder = (folder / step.line[3:].strip()).resolve()
            assert folder.is_dir(), f"`{step.line}`: there is no such folder"
            continue
        else:
            result = developer.run(step.line, folder)
        expect(result.stdout, step.expected, step.line)
        if step.line.startswith("uv build"):
            built = folder / "dist"

    # The published package: a wheel, installed on a deployment that lists it.
    assert built is not None
    assert [wheel.name for wheel in built.glob("*.whl")] == ["perron_parking-0.1.0-py3-none-any.whl"]
    assert deployment is not None, "the tutorial never installs its package on a deployment"
    listed = deployment.perron_json(deployment_folder, "modules", "list")
    modules = {module["name"]: module for module in listed["installed"]}  # type: ignore[union-attr]
    assert modules["parking"]["version"] == "0.1.0"
    assert modules["parking"]["distribution"] == "perron-parking"
    assert listed["refused"] == []
    site_packages = next((deployment.venv / "lib").glob("python*/site-packages"))
    assert (site_packages / "perron_parking" / "templates" / "parking" / "widget.html").is_file()
    assert list((site_packages / "perron_parking" / "migrations").glob("*_parking_0002_car_park_address.py"))
