"""``perron modules new``: the package it writes installs, migrates, is listed, can be switched
on for one demo commune and not another, and passes its own tests, as a third party's module
would, in a throwaway environment (the project's ``.venv`` is never touched).

The throwaway environment is a virtualenv that sees the packages installed here (a ``.pth``
file adds this interpreter's site-packages, and copies of their ``*.dist-info`` folders let
installers see them as installed too, so a package's dependency on Perron is checked for
real); ``perron``, ``pytest`` and ``uv`` are small scripts in its ``bin``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from perron.cli import main
from perron.cli.scaffold import NewModule, in_perron_workspace, parse_titles, render
from perron.db import migrate
from tests.conftest import POSTGRES, ROOT, base_settings, settings_env

TIMEOUT = 300


def find_uv() -> list[str] | None:
    """How to run uv here: the ``uv`` command, else ``python3 -m uv`` (how Perron installs it)."""
    found = shutil.which("uv")
    if found:
        return [found]
    for python in (shutil.which("python3"), sys.executable):
        if python and subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "uv"]
    return None


@dataclass
class Sandbox:
    """A throwaway virtualenv and the environment its commands run with."""

    venv: Path
    env: dict[str, str]

    def run(
        self, command: str, cwd: Path, *, check: bool = True, timeout: int = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command line in the sandbox; its output is stdout and stderr together."""
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"`{command}` (in {cwd}) exited with {result.returncode}:\n{result.stdout}")
        return result

    def perron_json(self, cwd: Path, *args: str) -> dict[str, object]:
        output = self.run(f"perron {' '.join(args)} --json", cwd).stdout
        return json.loads(output[output.index("{") :])


def make_sandbox(folder: Path, uv: list[str], **extra_env: str) -> Sandbox:
    """A virtualenv in ``folder`` that sees this interpreter's packages (Perron among them)."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = venv / "lib" / version / "site-packages"
    ours = Path(sysconfig.get_paths()["purelib"])
    (site_packages / "_perron_project.pth").write_text(f"import site; site.addsitedir({str(ours)!r})\n")
    for metadata in ours.glob("*.dist-info"):
        shutil.copytree(metadata, site_packages / metadata.name)
    python = venv / "bin" / "python"
    uv_command = " ".join(f'"{part}"' for part in uv)
    scripts = {
        "perron": f'exec "{python}" -m perron "$@"',
        "pytest": f'exec "{python}" -m pytest "$@"',
        "uv": f'exec {uv_command} "$@"',
    }
    for name, line in scripts.items():
        script = venv / "bin" / name
        script.write_text(f"#!/bin/sh\n{line}\n")
        script.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PERRON_", "VIRTUAL_ENV", "PYTHON", "UV_", "PYTEST_"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        UV_PYTHON_DOWNLOADS="never",
        COLUMNS="200",
        NO_COLOR="1",
        TERM="dumb",
        PERRON_LOG_LEVEL="WARNING",
        **extra_env,
    )
    return Sandbox(venv, env)


def uv_or_skip() -> list[str]:
    if POSTGRES:
        pytest.skip("runs its own SQLite deployments: the SQLite pass covers it")
    command = find_uv()
    if command is None:
        pytest.skip("uv is not installed (infra/dev/bootstrap.sh installs it)")
    return command


@pytest.fixture
def uv() -> list[str]:
    return uv_or_skip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(sandbox: Sandbox, cwd: Path) -> Iterator[int]:
    """``perron serve`` from the sandbox, until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [str(sandbox.venv / "bin" / "perron"), "serve", "--port", str(port)],
        cwd=cwd,
        env=sandbox.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        started = time.monotonic()
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"perron serve exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > 60:
                raise AssertionError("perron serve did not become ready within 60 seconds")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- The generated package, end to end ---------------------------------------------------------


@pytest.mark.slow
def test_a_new_module_installs_migrates_is_listed_switches_on_per_commune_and_passes_its_tests(
    tmp_path: Path, uv: list[str]
) -> None:
    sandbox = make_sandbox(tmp_path, uv, PERRON_DATA_DIR=str(tmp_path / "data"))
    sources = tmp_path / "src"
    made = sandbox.run(
        f"perron modules new notices --directory {sources} --title fr=Avis --title nl=Berichten "
        "--title de=Mitteilungen --title en=Notices",
        tmp_path,
    )
    folder = sources / "perron_notices"
    assert "Created module notices" in made.stdout
    assert (folder / "tests" / "test_notices.py").is_file()
    assert (folder / "pyproject.toml").read_text().count('notices = "perron_notices:manifest"') == 1

    # The code reads like Perron's: the repository's lint and format rules pass on it.
    ruff = [str(Path(sys.executable).parent / "ruff")]
    for check in (["check"], ["format", "--check"]):
        linted = subprocess.run(
            [*ruff, *check, "--config", str(ROOT / "pyproject.toml"), str(folder)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr

    # A separate distribution: installed as any package is (its dependency on Perron is met).
    installed = sandbox.run(f"uv pip install -e {folder}", tmp_path)
    assert "+ perron-notices==0.1.0" in installed.stdout

    upgraded = sandbox.run("perron db upgrade", tmp_path).stdout
    assert "applied notices_0001" in upgraded
    checked = sandbox.run("perron db check", tmp_path).stdout
    assert "Schema matches the models" in checked  # the generated migration builds the model's table
    i18n = sandbox.run(f"perron i18n check --strict --module {folder / 'perron_notices'}", tmp_path).stdout
    assert "complete in fr, nl, de, en" in i18n

    sandbox.run(f"perron tenants apply {ROOT / 'tenants'}", tmp_path)
    listed = sandbox.perron_json(tmp_path, "modules", "list")
    modules = {module["name"]: module for module in listed["installed"]}  # type: ignore[union-attr]
    assert modules["notices"]["version"] == "0.1.0"
    assert modules["notices"]["distribution"] == "perron-notices"
    assert modules["notices"]["enabled_in"] == []
    assert listed["refused"] == []

    enabled = sandbox.run("perron modules enable notices --commune hannut", tmp_path).stdout
    assert "notices is now on for hannut." in enabled
    listed = sandbox.perron_json(tmp_path, "modules", "list")
    modules = {module["name"]: module for module in listed["installed"]}  # type: ignore[union-attr]
    assert modules["notices"]["enabled_in"] == ["hannut"]

    with server(sandbox, tmp_path) as port:
        base = f"http://127.0.0.1:{port}"
        page = httpx.get(f"{base}/notices", headers={"Host": "hannut.localhost"}, timeout=10)
        assert page.status_code == 200
        assert "<h1>Avis</h1>" in page.text  # the title in the commune's first language
        assert "Cette liste est encore vide." in page.text
        dutch = httpx.get(f"{base}/notices?lang=nl", headers={"Host": "hannut.localhost"}, timeout=10)
        assert "<h1>Berichten</h1>" in dutch.text
        admin = httpx.get(f"{base}/admin/notices", headers={"Host": "hannut.localhost"})
        assert admin.status_code == 303  # staff are sent to log in, then back
        assert admin.headers["location"] == "/login/staff?next=%2Fadmin%2Fnotices"
        elsewhere = httpx.get(f"{base}/notices", headers={"Host": "la-louviere.localhost"}, timeout=10)
        assert elsewhere.status_code == 404

    tested = sandbox.run("pytest -q -p no:cacheprovider", folder)
    assert "5 passed" in tested.stdout


# --- Refusals, in words, changing nothing ------------------------------------------------------


@pytest.fixture
def new_module(tmp_path: Path):
    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["modules", "new", *args, "--directory", str(tmp_path / "out")])
        return result.exit_code, result.output

    return invoke


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Parking", "cannot name a module"),
        ("p", "cannot name a module"),
        ("9lives", "cannot name a module"),
        ("car-park", "cannot name a module"),
        ("a" * 31, "keep it to 30 at most"),
        ("car_", "may not end with '_'"),
        ("car__park", "hold '__'"),
        ("admin", "reserved by the platform"),
        ("news", "a module named 'news' is already installed (perron-news)"),
    ],
)
def test_a_name_the_platform_would_refuse_is_refused_first(
    new_module, tmp_path: Path, name: str, message: str
) -> None:
    code, output = new_module(name)
    assert code == 1
    assert message in output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("titles", "message"),
    [
        (["fr"], "write it as LANG=TITLE"),
        (["xx=Parking"], "'xx' is not one of fr, nl, de, en"),
        (["fr=  "], "the fr title is empty"),
        (["fr=Stationnement", "fr=Parking"], "the fr title is given twice"),
        (['fr=Le "parking"'], "the fr title may not contain '\"'"),
        (["nl=Parkeren {x}"], "the nl title may not contain '{' '}'"),
        (["de=" + "P" * 61], "keep it to 60"),
    ],
)
def test_a_title_that_cannot_be_written_safely_is_refused(
    new_module, tmp_path: Path, titles: list[str], message: str
) -> None:
    code, output = new_module("parking", *[part for title in titles for part in ("--title", title)])
    assert code == 1
    assert message in output
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_left_alone(new_module, tmp_path: Path) -> None:
    folder = tmp_path / "out" / "perron_parking"
    folder.mkdir(parents=True)
    (folder / "mine.txt").write_text("keep me")
    code, output = new_module("parking")
    assert code == 1
    assert "already exists: nothing was written" in output
    assert [path.name for path in folder.iterdir()] == ["mine.txt"]


def test_titles_left_out_fall_back_to_english_then_to_the_name() -> None:
    assert parse_titles(["fr=Stationnement"], "car_parks") == {
        "fr": "Stationnement",
        "nl": "Car parks",
        "de": "Car parks",
        "en": "Car parks",
    }
    assert parse_titles(["en=Parking", "nl=Parkeren"], "parking")["de"] == "Parking"


def test_inside_perron_s_uv_workspace_the_module_takes_perron_from_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "perron"\n\n[tool.uv.workspace]\nmembers = ["modules/*"]\n'
    )
    inside = NewModule("parking", parse_titles([], "parking"), tmp_path / "modules")
    elsewhere = NewModule("parking", parse_titles([], "parking"), tmp_path / "other")
    assert in_perron_workspace(inside.folder) == tmp_path
    assert in_perron_workspace(elsewhere.folder) is None
    now = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert "perron = { workspace = true }" in render(inside, now=now)[Path("pyproject.toml")]
    assert "tool.uv.sources" not in render(elsewhere, now=now)[Path("pyproject.toml")]
    assert Path("perron_parking/migrations/20260102_parking_0001_initial.py") in render(inside, now=now)


# --- perron db revision: a module's branch, started and continued ------------------------------


def test_revision_starts_a_module_branch_then_continues_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "_extra_version_locations", [])
    settings = base_settings(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'branch.sqlite3'}", database_owner_url=None
    )
    versions = tmp_path / "probe_migrations"
    with pytest.raises(migrate.RevisionRefused, match="give --version-path"):
        migrate.branch_revision(settings, "first", branch="probe", autogenerate=False)
    with pytest.raises(migrate.RevisionRefused, match="cannot start one"):
        migrate.branch_revision(settings, "first", branch="Probe!", version_path=versions, autogenerate=False)
    assert not versions.exists()

    [first] = migrate.branch_revision(
        settings, "first", branch="probe", version_path=versions, autogenerate=False
    )
    assert first.revision == "probe_0001"
    assert first.down_revision is None
    assert first.branch_labels == {"probe"}
    assert first.dependencies == "0001"  # the platform's revision that creates communes
    [second] = migrate.branch_revision(
        settings, "second", branch="probe", version_path=versions, autogenerate=False
    )
    assert second.revision == "probe_0002"
    assert second.down_revision == "probe_0001"
    assert sorted(path.name.split("_", 1)[1] for path in versions.glob("*.py")) == [
        "probe_0001_first.py",
        "probe_0002_second.py",
    ]

    migrate.add_version_location(versions)
    applied = [step.split()[0] for step in migrate.upgrade(settings)]
    assert applied[0] == "0001"
    assert applied.index("probe_0001") < applied.index("probe_0002")


def test_revision_refuses_when_models_and_schema_agree(settings, tmp_path: Path) -> None:
    arguments = ["db", "revision", "-m", "nothing", "--branch", "probe", "--version-path", str(tmp_path)]
    result = CliRunner().invoke(main, arguments, env=settings_env(settings))
    assert result.exit_code == 1
    assert "the models and the schema agree: there is nothing to migrate" in result.output
    assert list(tmp_path.iterdir()) == []
