"""The ``perron`` command: says what it did, refuses bad input in words and changes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from perron.cli import main
from perron.db import migrate
from tests.conftest import POSTGRES, ROOT, settings_env


@pytest.fixture
def run(settings):
    env = settings_env(settings)

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return invoke


def test_create_list_show_and_lifecycle(run) -> None:
    created = run(
        "tenants",
        "create",
        "hannut",
        "--nis",
        "64034",
        "--name",
        "fr=Hannut",
        "--name",
        "nl=Hannuit",
        "--language",
        "fr",
        "--language",
        "nl",
        "--domain",
        "hannut.test",
        "--domain",
        "www.hannut.test",
    )
    assert created.exit_code == 0, created.output
    assert "Created commune hannut (provisioning), answering at hannut.test." in created.output

    listed = json.loads(run("tenants", "list", "--json").output)
    assert listed == [
        {
            "slug": "hannut",
            "nis_code": "64034",
            "name": "Hannut",
            "status": "provisioning",
            "languages": ["fr", "nl"],
            "primary_domain": "hannut.test",
        }
    ]

    assert "Activated hannut" in run("tenants", "activate", "hannut").output
    assert "Suspended hannut" in run("tenants", "suspend", "hannut", "--notice", "fr=Travaux").output
    assert "already suspended" in run("tenants", "suspend", "hannut").output
    assert "Resumed hannut" in run("tenants", "resume", "hannut").output

    shown = json.loads(run("tenants", "show", "hannut", "--json").output)
    assert shown["status"] == "active"
    assert shown["domains"] == [
        {"host": "hannut.test", "primary": True},
        {"host": "www.hannut.test", "primary": False},
    ]
    assert [entry["action"] for entry in shown["audit"]][:4] == [
        "commune.activate",
        "commune.suspend",
        "commune.activate",
        "commune.create",
    ]
    assert all(entry["who"].startswith("cli:") for entry in shown["audit"])

    refused = run("tenants", "archive", "hannut", input="n\n")
    assert refused.exit_code == 1
    assert "Archived" in run("tenants", "archive", "hannut", "--yes").output
    late = run("tenants", "resume", "hannut")
    assert late.exit_code == 1
    assert "archived is final" in late.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--nis", "6403"), "exactly five digits"),
        (("--nis", "64034", "--domain", "hannut"), "at least two parts"),
        (("--nis", "64034", "--language", "it"), "'it' is not offered"),
        (("--nis", "64034", "--name", "Hannut"), "write it as language=text"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(run, args: tuple[str, ...], says: str) -> None:
    base = {"--name": "fr=Hannut", "--language": "fr", "--domain": "hannut.test"}
    options: list[str] = list(args)
    for option, value in base.items():
        if option not in args:
            options += [option, value]
    result = run("tenants", "create", "hannut", *options)
    assert result.exit_code in (1, 2)
    assert says in result.output
    assert json.loads(run("tenants", "list", "--json").output) == []


def test_domains_commands(run) -> None:
    run(
        "tenants",
        "create",
        "andenne",
        "--nis",
        "92003",
        "--name",
        "fr=Andenne",
        "--language",
        "fr",
        "--domain",
        "andenne.test",
        "--active",
    )
    assert "as alias" in run("domains", "add", "andenne", "Www.Andenne.test.").output
    clash = run("domains", "add", "andenne", "console.test")
    assert clash.exit_code == 1
    assert "console" in clash.output
    assert "now the primary domain" in run("domains", "primary", "andenne", "www.andenne.test").output
    assert "Removed andenne.test" in run("domains", "remove", "andenne", "andenne.test").output
    listing = run("domains", "list", "andenne").output
    assert "www.andenne.test  primary" in listing
    assert "andenne.test  alias" not in listing
    missing = run("domains", "add", "nowhere", "x.test")
    assert missing.exit_code == 1
    assert "no commune has the slug 'nowhere'" in missing.output


def test_branding_refuses_unreadable_colours(run) -> None:
    run(
        "tenants",
        "create",
        "ciney",
        "--nis",
        "91030",
        "--name",
        "fr=Ciney",
        "--language",
        "fr",
        "--domain",
        "ciney.test",
        "--active",
    )
    refused = run("tenants", "branding", "ciney", "--primary-color", "#eeeeee")
    assert refused.exit_code == 1
    assert "below the 4.5:1 WCAG AA needs" in refused.output
    assert (
        "Updated the branding of ciney."
        in run("tenants", "branding", "ciney", "--primary-color", "#003366").output
    )


def test_apply_reports_and_is_idempotent(run, tmp_path: Path, settings) -> None:
    folder = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants", folder)
    first = run("tenants", "apply", str(folder))
    assert first.exit_code == 0, first.output
    assert "created  commune hannut" in first.output
    assert "6 created." in first.output
    assert first.output.count("module news demo content") == 3
    listed = run("modules", "list", "--json")
    (news,) = [module for module in json.loads(listed.output)["installed"] if module["name"] == "news"]
    assert news["enabled_in"] == ["andenne", "hannut", "la-louviere"]
    engine = create_engine(migrate.sync_url(settings.database_owner))
    with engine.begin() as connection:
        if POSTGRES:  # row-level security applies to the owner too: read as the platform
            connection.execute(text("SELECT set_config('perron.scope', 'platform', true)"))
        per_commune = connection.execute(
            text(
                "SELECT c.slug, count(*) FROM news_articles a"
                " JOIN communes c ON c.id = a.tenant_id GROUP BY c.slug"
            )
        ).all()
    engine.dispose()
    assert dict(per_commune) == {"andenne": 3, "hannut": 3, "la-louviere": 3}  # each seeded in its own scope
    again = run("tenants", "apply", str(folder))
    assert "module news" not in again.output  # already on: no second batch of demo news
    dry = run("tenants", "apply", str(folder), "--dry-run")
    assert "6 unchanged." in dry.output
    (folder / "andenne" / "tenant.toml").write_text(
        (folder / "andenne" / "tenant.toml").read_text().replace('nis_code = "92003"', "nis_code = 92003")
    )
    broken = run("tenants", "apply", str(folder))
    assert broken.exit_code == 1
    assert "nothing was changed" in broken.output
    assert 'nis_code: must be text: write it in quotes, "92003"' in broken.output


def test_intercommunales(run) -> None:
    assert "Created intercommunale bep." in run("intercommunales", "create", "bep", "--name", "fr=BEP").output
    assert "bep" in run("intercommunales", "list").output
    again = run("intercommunales", "create", "bep", "--name", "fr=BEP")
    assert again.exit_code == 1
    assert "already has the slug 'bep'" in again.output


def test_database_commands(run) -> None:
    assert "Already up to date" in run("db", "upgrade").output
    assert "up to date" in run("db", "current").output
    checked = run("db", "check")
    assert checked.exit_code == 0
    assert "Schema matches the models" in checked.output


def test_a_bad_setting_stops_the_command_naming_the_variable(settings) -> None:
    env = settings_env(settings) | {"PERRON_DATABASE_URL": "mysql://x/y"}
    result = CliRunner().invoke(main, ["tenants", "list"], env=env)
    assert result.exit_code == 2
    assert "PERRON_DATABASE_URL: only sqlite and postgresql databases are supported" in result.output


def test_worker_needs_a_broker_in_the_embedded_mode(run, settings) -> None:
    if settings.redis_url:
        pytest.skip("a broker is configured")
    result = run("worker")
    assert result.exit_code == 2
    assert "set PERRON_REDIS_URL" in result.output


def test_the_installed_entry_point_runs(settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "perron", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("perron, version ")
    helped = subprocess.run(
        [sys.executable, "-m", "perron", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**settings_env(settings), "PATH": "/usr/bin:/bin"},
    )
    for command in ("serve", "dev", "worker", "db", "tenants", "domains", "intercommunales"):
        assert command in helped.stdout
